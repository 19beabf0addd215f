"""``rnix kill|pause|resume|watch|logs``: signals and events of one process.

Signals and ``watch`` need the daemon (a live process exists only inside the system that runs
it); ``logs`` reads ``<state>/proc/<pid>/events.jsonl`` and works without one.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import click

from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.cli.render import end_line, event_line
from rnix_actors.errors import RnixError
from rnix_actors.ipc.protocol import ApiError, event_from_wire
from rnix_actors.kernel.process import Signal

SIGNAL_NAMES = [s.value for s in Signal]


def _signal(obj: Context, pid: int, signal: str, as_json: bool) -> None:
    client = obj.require_daemon(as_json, f"cannot signal PID {pid}")
    try:
        with client:
            result = client.call("kill", pid=pid, signal=signal)
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    if as_json:
        emit_json({"ok": True, **result})
    else:
        out(f"[kernel] PID {pid}: signal sent ({result['signal']}): {result['outcome']}")


@click.command()
@click.argument("pid", type=click.IntRange(min=1))
@click.option(
    "--signal",
    "-s",
    "signal",
    default="SIGTERM",
    show_default=True,
    type=click.Choice(SIGNAL_NAMES + [n.removeprefix("SIG") for n in SIGNAL_NAMES], False),
    help="Signal to send (SIGTERM ends at the next step, SIGKILL at once).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def kill(obj: Context, pid: int, signal: str, as_json: bool) -> None:
    """Send a signal to PID and its subtree (default SIGTERM)."""
    _signal(obj, pid, signal, as_json)


@click.command()
@click.argument("pid", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def pause(obj: Context, pid: int, as_json: bool) -> None:
    """Suspend PID and its running subtree (SIGPAUSE)."""
    _signal(obj, pid, "SIGPAUSE", as_json)


@click.command()
@click.argument("pid", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def resume(obj: Context, pid: int, as_json: bool) -> None:
    """Resume a suspended PID and its subtree (SIGRESUME)."""
    _signal(obj, pid, "SIGRESUME", as_json)


@click.command()
@click.argument("pid", type=click.IntRange(min=1), required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON frame per line.")
@click.pass_obj
def watch(obj: Context, pid: int | None, as_json: bool) -> None:
    """Stream live events: of every process, or of PID and its children until PID ends.
    Ctrl-C stops watching (the processes keep running)."""
    what = "cannot watch" + (f" PID {pid}" if pid else "")
    client = obj.require_daemon(as_json, what)
    with client:
        try:
            stream = client.stream("watch", pid=pid)
        except ApiError as exc:
            fail(exc.message, as_json, exc.code)
        frames: list[dict[str, Any]] = []
        done = threading.Event()

        def pump() -> None:
            try:
                for frame in stream:
                    frames.append(frame)
                    _print_frame(frame, pid, as_json)
            finally:
                done.set()

        threading.Thread(target=pump, name="rnix-watch", daemon=True).start()
        try:
            done.wait()
        except KeyboardInterrupt:
            stream.cancel()
            done.wait(5.0)
    last = frames[-1] if frames else {}
    if (last.get("data") or {}).get("reason") == "disconnected":
        fail("the daemon went away", as_json)


def _print_frame(frame: dict[str, Any], pid: int | None, as_json: bool) -> None:
    if as_json:
        emit_json(frame)
    elif frame["frame"] == "event":
        line = event_line(event_from_wire(frame["data"]))
        if line:
            out(line)
    else:
        out(end_line(frame["data"], pid))


@click.command()
@click.argument("pid", type=click.IntRange(min=1))
@click.option("--tail", "-n", type=click.IntRange(min=1), help="Only the last N events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def logs(obj: Context, pid: int, tail: int | None, as_json: bool) -> None:
    """Print the recorded events of PID (from its events.jsonl; no daemon needed)."""
    try:
        path = obj.system().events_file(pid)
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        fail(
            f"no event log for PID {pid} at {obj.state / 'proc' / str(pid) / 'events.jsonl'} "
            "(unknown PID, or kernel.event_log is off)",
            as_json,
        )
    except (RnixError, OSError) as exc:
        fail(str(exc), as_json)
    events = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            events.append(event_from_wire(json.loads(raw)))
        except (ValueError, ApiError) as exc:
            fail(f"{path}:{number}: unreadable event line ({exc})", as_json)
    if tail is not None:
        events = events[-tail:]
    if as_json:
        emit_json({"pid": pid, "events": [e.to_dict() for e in events]})
        return
    for event in events:
        if event.syscall == "Exit":
            out(f"[kernel] PID {pid} exited({event.args.get('code')}) {event.args.get('reason')}")
            continue
        line = event_line(event)
        if line:
            out(line)
