"""``rnix agents``, ``rnix prune`` and ``rnix completion``: what templates exist, keeping the
state dir small, and shell completion."""

from __future__ import annotations

import shutil
import time

import click

from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.cli.proc_cmd import parse_since
from rnix_actors.cli.text import Column, table
from rnix_actors.errors import RnixError
from rnix_actors.ipc.protocol import ApiError
from rnix_actors.ipc.service import template_summary
from rnix_actors.store.checkpoints import CheckpointStore
from rnix_actors.store.db import Store


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--wide", "--no-trunc", "wide", is_flag=True, help="Never shorten a cell.")
@click.pass_obj
def agents(obj: Context, as_json: bool, wide: bool) -> None:
    """List the agent templates: skills, devices, driver and model, where each comes from."""
    client = obj.daemon()
    try:
        if client is not None:
            with client:
                rows = client.call("templates")["templates"]
        else:
            system = obj.system()
            skills = system.skills
            rows = [template_summary(t, skills) for _, t in sorted(system.templates.items())]
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    except RnixError as exc:
        fail(str(exc), as_json, "CONFIG_ERROR")
    if as_json:
        emit_json({"templates": rows})
        return
    columns = (
        Column("AGENT"),
        Column("DRIVER"),
        Column("SKILLS", flex=True),
        Column("DEVICES", flex=True),
        Column("DESCRIPTION", flex=True, one_line=True),
    )
    cells = [
        (
            r["name"],
            r["driver"],
            ", ".join(r["skills"]) or "-",
            ", ".join(r["devices"]) or "-",
            r["description"],
        )
        for r in rows
    ]
    out(table(columns, cells, wide=wide) if cells else "No agent templates.")


@click.command()
@click.option(
    "--older-than",
    default="7d",
    show_default=True,
    help="Remove processes that ended before this (a duration: 90s, 10m, 2h, 7d; or a time).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def prune(obj: Context, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Remove the store rows and proc/ folders (event logs) of dead processes that ended
    before a bound, with their checkpoints. Live, suspended and lost processes are never
    touched."""
    before = parse_since(older_than, time.time())
    db = obj.state / "rnix.db"
    checkpoints = 0
    if not db.exists():
        pids: list[int] = []
    else:
        try:
            store = Store(db)
        except (OSError, RuntimeError) as exc:
            fail(f"{db}: {exc}", as_json)
        try:
            pids = store.dead_before(before) if dry_run else store.prune_dead(before)
            if not dry_run:
                checkpoints = CheckpointStore(store).forget_dead(before)
        finally:
            store.close()
    freed = 0
    for pid in pids:
        folder = obj.state / "proc" / str(pid)
        if folder.is_dir():
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
    if as_json:
        emit_json(
            {"ok": True, "dry_run": dry_run, "pids": pids, "bytes": freed,
             "checkpoints": checkpoints}
        )  # fmt: skip
        return
    verb = "would remove" if dry_run else "removed"
    out(
        f"{verb} {len(pids)} dead process(es) that ended before "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(before))} ({freed:,} bytes of logs)"
        + (f" and {checkpoints:,} checkpoint(s) of dead processes" if checkpoints else "")
    )


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL; e.g. add `eval "$(rnix completion bash)"` to
    ~/.bashrc (zsh: ~/.zshrc; fish: `rnix completion fish | source`)."""
    from click.shell_completion import get_completion_class

    from rnix_actors.cli.main import cli

    cls = get_completion_class(shell)
    assert cls is not None  # the choices are click's own shells
    out(cls(cli, {}, "rnix", "_RNIX_COMPLETE").source())
