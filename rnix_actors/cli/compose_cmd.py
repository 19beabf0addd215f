"""``rnix compose up FILE``: run a compose workflow with live progress and a summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rnix_actors.cli.common import fail
from rnix_actors.compose import Progress, load_workflow
from rnix_actors.errors import RnixError
from rnix_actors.system import System, resolve_state_dir


@click.group("compose")
def compose() -> None:
    """Run multi-agent workflows (a DAG of supervised agents)."""


@compose.command("up")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds before running nodes are killed and reported failed.",
)
@click.pass_context
def up(ctx: click.Context, file: Path, as_json: bool, timeout: float) -> None:
    """Run the workflow in FILE; exit 1 unless every node completed (or migrated)."""
    obj = ctx.find_root().obj
    project = Path(getattr(obj, "project_dir", None) or Path.cwd()).resolve()
    state = resolve_state_dir(project, getattr(obj, "state_dir", None))
    system = System(project, state_dir=state)
    try:  # validated before anything starts
        workflow = load_workflow(file, lambda name: name in system.templates)
    except RnixError as exc:
        fail(str(exc), as_json)
    progress: list[Progress] = []

    def show(item: Progress) -> None:  # in this thread: the engine reports from its caller
        progress.append(item)
        if not as_json:
            click.echo(f"  {item.text()}")

    if not as_json:
        click.echo(f"Workflow {workflow.name}: {len(workflow.nodes)} nodes")
    try:
        with system:
            result = system.compose.run(workflow, show, timeout)
    except RnixError as exc:
        fail(str(exc), as_json)
    if as_json:
        data = {"ok": result.ok, "progress": [p.to_dict() for p in progress], **result.to_dict()}
        click.echo(json.dumps(data))
    else:
        click.echo("")
        click.echo(result.summary())
    if not result.ok:
        sys.exit(1)
