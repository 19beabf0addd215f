"""The ``rnix`` command line (click): run agents, list processes, run the demo.

Exit codes: 0 ok, 1 failure (including an agent that did not complete), 2 usage error.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from rnix_actors import __version__
from rnix_actors.cli.render import event_line, process_table, result_block, supervision_tree
from rnix_actors.errors import RnixError
from rnix_actors.messages.events import Event
from rnix_actors.system import System


class Context:
    def __init__(self, project_dir: Path | None, state_dir: Path | None) -> None:
        self.project_dir = project_dir
        self.state_dir = state_dir

    def system(self) -> System:
        return System(self.project_dir, state_dir=self.state_dir)


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Project directory (agents in .rnix/agents, config in .rnix/config.yaml). "
    "Default: the current directory.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="RNIX_STATE_DIR",
    help="Where the process store and event logs live. Default: <project>/.rnix.",
)
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, state_dir: Path | None) -> None:
    """rnix: LLM agents as supervised, immune-monitored processes."""
    ctx.obj = Context(project_dir, state_dir)


@cli.command()
@click.argument("agent")
@click.argument("intent")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--max-steps", type=click.IntRange(min=0), help="Override the step limit.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Sandbox root for /dev/fs and /dev/shell. Default: the project dir.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds to wait for the agent.",
)
@click.option("--provider", help="LLM provider (providers.yaml) instead of the template's.")
@click.option("--model", help="Model (or replay script) instead of the template's.")
@click.pass_obj
def run(
    obj: Context,
    agent: str,
    intent: str,
    as_json: bool,
    max_steps: int | None,
    workdir: Path | None,
    timeout: float,
    provider: str | None,
    model: str | None,
) -> None:
    """Run one AGENT on INTENT in an embedded system and print its result."""
    try:
        system = obj.system()
    except RnixError as exc:
        _fail(str(exc), as_json)
        return
    started = time.monotonic()
    with system:
        pids: set[int] = set()

        def show(event: Event) -> None:
            if event.pid in pids or event.syscall == "Start":
                line = event_line(event)
                if line:
                    click.echo(line)

        try:
            subscription = None if as_json else system.subscribe(show)
            pid = system.spawn(
                agent,
                intent,
                max_steps=max_steps,
                workdir=workdir,
                origin="cli",
                driver=provider,
                model=model,
            )
            pids.add(pid)
            info = system.wait(pid, timeout=timeout)
            system.sync_events()
        except (RnixError, TimeoutError) as exc:
            _fail(str(exc), as_json)
            return
        if subscription is not None:
            subscription.cancel()
    elapsed = time.monotonic() - started
    if as_json:
        click.echo(
            json.dumps(
                {
                    "pid": info.pid,
                    "exit_code": info.exit_code,
                    "exit_reason": info.exit_reason,
                    "result": info.result,
                    "tokens_used": info.tokens_used,
                    "steps": info.steps,
                }
            )
        )
    else:
        click.echo(result_block(info, elapsed))
    sys.exit(0 if info.exit_code == 0 else 1)


@cli.command()
@click.option("--all", "-a", "show_all", is_flag=True, help="Include finished processes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def ps(obj: Context, show_all: bool, as_json: bool) -> None:
    """List processes recorded in the state dir (without a daemon, only history is known)."""
    try:
        system = obj.system()
        procs = system.ps(all=True)
    except RnixError as exc:
        _fail(str(exc), as_json)
        return
    if not show_all:
        procs = [p for p in procs if not p.finished]
    if as_json:
        click.echo(json.dumps({"processes": [p.to_dict() for p in procs]}, default=str))
        return
    if not procs:
        click.echo(
            "No processes."
            if show_all
            else "No active processes. (no daemon is running; use --all for history)"
        )
        return
    click.echo(process_table(procs))


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the final tree as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True)
@click.pass_obj
def supervise(obj: Context, file: Path | None, as_json: bool, timeout: float) -> None:
    """Run the supervision trees of FILE (default .rnix/supervisors.yaml) until they finish."""
    try:
        system = obj.system()
        specs = system.load_supervisors(file)
    except RnixError as exc:
        _fail(str(exc), as_json)
        return
    if not specs:
        _fail(f"no supervisors declared in {file or '.rnix/supervisors.yaml'}", as_json)
    with system:
        handles = [system.supervise(spec) for spec in specs]
        deadline = time.monotonic() + timeout
        waiter = threading.Event()
        while any(h.status == "running" for h in handles) and time.monotonic() < deadline:
            waiter.wait(0.1)
        views = system.tree()
        live = system.ps()
    if as_json:
        click.echo(json.dumps({"supervisors": [v.to_dict() for v in views]}))
    else:
        click.echo(supervision_tree(views, live))
    sys.exit(0 if all(h.status == "completed" for h in handles) else 1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def tree(obj: Context, as_json: bool) -> None:
    """Show the process tree recorded in the state dir (parents and the children they spawned).

    Live supervision trees are shown by the system that runs them (`System.tree()`,
    `rnix supervise`); without a daemon this command can only read the history.
    """
    try:
        procs = obj.system().ps(all=True)
    except RnixError as exc:
        _fail(str(exc), as_json)
        return
    if as_json:
        click.echo(json.dumps({"processes": [p.to_dict() for p in procs]}, default=str))
        return
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    by_pid = {p.pid: p for p in procs}

    def walk(pid: int, prefix: str) -> None:
        kids = children.get(pid, [])
        for index, kid in enumerate(kids):
            p = by_pid[kid]
            last = index == len(kids) - 1
            exit_text = "" if p.exit_code is None else f" exit {p.exit_code} {p.exit_reason}"
            click.echo(
                f"{prefix}{'└── ' if last else '├── '}PID {p.pid} {p.template} {p.state}{exit_text}"
            )
            walk(kid, prefix + ("    " if last else "│   "))

    if not procs:
        click.echo("No processes recorded.")
    walk(0, "")
    click.echo("(no daemon is running: history only)")


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(f"rnix-actors {__version__}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def demo(as_json: bool) -> None:
    """Run the offline demo on the embedded defaults (no network, no API key)."""
    from rnix_actors.cli.demo import run_demo

    summary: dict[str, Any] = run_demo(echo=None if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(summary))
    sys.exit(0 if summary["ok"] else 1)


def main() -> None:
    cli(prog_name="rnix")
