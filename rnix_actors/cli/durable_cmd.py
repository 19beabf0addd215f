"""``rnix checkpoints PID``: the checkpoints a process wrote (when, which step, size)."""

from __future__ import annotations

import time

import click

from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.cli.text import Column, table
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.store.checkpoints import CheckpointRow, CheckpointStore
from rnix_actors.store.db import Store


@click.command()
@click.argument("pid", type=click.IntRange(min=1))
@click.option("--limit", default=20, show_default=True, help="Show the newest N (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def checkpoints(obj: Context, pid: int, limit: int, as_json: bool) -> None:
    """List the checkpoints of PID: when, at which step, what kind, how many context
    messages and how many bytes each wrote. A lost or suspended process resumes from the
    newest (`rnix resume PID`)."""
    rows, process = _read(obj, pid, as_json)
    shown = rows[-limit:] if limit else rows
    if as_json:
        emit_json(
            {
                "pid": pid,
                "state": None if process is None else str(process.state),
                "total": len(rows),
                "bytes": sum(r.bytes for r in rows),
                "checkpoints": [r.to_dict() for r in shown],
            }
        )
        return
    if not rows:
        out(f"PID {pid} has no checkpoints (kernel.checkpoints was off, or pruned).")
        return
    state = "" if process is None else f", {process.state}"
    out(
        f"PID {pid}{state}: {len(rows)} checkpoint(s), {sum(r.bytes for r in rows):,} bytes"
        + (f" (the newest {len(shown)})" if len(shown) < len(rows) else "")
    )
    out(_table(shown))


def _read(obj: Context, pid: int, as_json: bool) -> tuple[list[CheckpointRow], ProcessInfo | None]:
    """The checkpoints and the stored row of ``pid``; fails when neither exists."""
    db = obj.state / "rnix.db"
    if not db.exists():
        fail(f"no state in {obj.state}: nothing has run here yet", as_json)
    try:
        store = Store(db)
    except (OSError, RuntimeError) as exc:
        fail(f"{db}: {exc}", as_json)
    try:
        rows = CheckpointStore(store).rows(pid)
        process = store.get_process(pid)
    finally:
        store.close()
    if process is None and not rows:
        fail(f"no such process: PID {pid}", as_json, "NO_SUCH_PROCESS")
    return rows, process


def _table(rows: list[CheckpointRow]) -> str:
    right = "right"
    columns = [
        Column("SEQ", right),
        Column("WHEN"),
        Column("STEP", right),
        Column("KIND"),
        Column("MESSAGES", right),
        Column("BYTES", right),
    ]
    cells = [
        (
            str(r.seq),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at)),
            str(r.step),
            r.kind,
            str(r.messages),
            f"{r.bytes:,}",
        )
        for r in rows
    ]
    return table(columns, cells)
