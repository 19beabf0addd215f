"""``rnix kill|pause|resume|watch|logs|inspect``: signals, events and details of a process.

Signals and ``watch`` need the daemon (a live process exists only inside the system that runs
it); ``logs`` reads ``<state>/proc/<pid>/events.jsonl`` and works without one.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any

import click

from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.cli.render import end_line, event_text, inspect_text
from rnix_actors.cli.text import wrap
from rnix_actors.errors import NoSuchProcess, RnixError
from rnix_actors.ipc.client import Client, RemoteStream
from rnix_actors.ipc.protocol import ApiError, event_from_wire
from rnix_actors.kernel.process import Signal
from rnix_actors.messages.events import Event

SIGNAL_NAMES = [s.value for s in Signal]


def _signal(obj: Context, pid: int, signal: str, as_json: bool, retry: bool = False) -> None:
    client = obj.require_daemon(as_json, f"cannot signal PID {pid}")
    try:
        with client:
            if retry:
                result = client.call("resume", pid=pid, retry=True)
            else:
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
@click.option(
    "--retry",
    is_flag=True,
    help="Run again the call a guard refused when it suspended PID (default: the agent goes "
    "on with the refusal).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def resume(obj: Context, pid: int, retry: bool, as_json: bool) -> None:
    """Resume a suspended PID and its subtree (SIGRESUME); a lost or suspended process of a
    previous daemon continues from its last checkpoint."""
    _signal(obj, pid, "SIGRESUME", as_json, retry)


@click.command()
@click.argument("pid", type=click.IntRange(min=1), required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON frame per line.")
@click.option("--verbose", "-v", is_flag=True, help="The model's whole text and full results.")
@click.option("--timestamps", "-t", is_flag=True, help="Prefix each line with its time.")
@click.pass_obj
def watch(obj: Context, pid: int | None, as_json: bool, verbose: bool, timestamps: bool) -> None:
    """Stream live events: of every process, or of PID and its children until PID ends.
    Ctrl-C stops watching (the processes keep running)."""
    what = "cannot watch" + (f" PID {pid}" if pid else "")
    client = obj.require_daemon(as_json, what)
    with client:
        try:
            stream = client.stream("watch", pid=pid)
        except ApiError as exc:
            fail(exc.message, as_json, exc.code)
        printer = Printer(as_json, verbose, timestamps)
        last = _pump(stream, lambda frame: printer.frame(frame, pid))
    if (last.get("data") or {}).get("reason") == "disconnected":
        fail("the daemon went away", as_json)


def _pump(stream: Any, on_frame: Any) -> dict[str, Any]:
    """Hand every frame of ``stream`` to ``on_frame`` (Ctrl-C cancels); returns the last."""
    frames: list[dict[str, Any]] = []
    done = threading.Event()

    def pump() -> None:
        try:
            for frame in stream:
                frames.append(frame)
                on_frame(frame)
        finally:
            done.set()

    threading.Thread(target=pump, name="rnix-watch", daemon=True).start()
    try:
        done.wait()
    except KeyboardInterrupt:
        stream.cancel()
        done.wait(5.0)
    return frames[-1] if frames else {}


class Printer:
    """Prints events (and ``end`` frames) for people or as JSON lines."""

    def __init__(self, as_json: bool, verbose: bool = False, timestamps: bool = False) -> None:
        self.as_json = as_json
        self.verbose = verbose
        self.timestamps = timestamps

    def event(self, event: Event) -> None:
        if self.as_json:
            emit_json(event.to_dict())
            return
        if event.syscall == "Exit":
            text = f"[kernel] PID {event.pid} exited({event.args.get('code')}) "
            text += str(event.args.get("reason"))
        else:
            text = event_text(event, self.verbose)
        if not text:
            return
        if self.timestamps:
            stamp = datetime.fromtimestamp(event.ts).strftime("%H:%M:%S.%f")[:-3]
            out(wrap(f"{stamp} {text}", hang=" " * 17))
        else:
            out(wrap(text, hang="    "))

    def frame(self, frame: dict[str, Any], pid: int | None) -> None:
        if self.as_json:  # `watch --json` prints the protocol's frames as they are
            emit_json(frame)
        elif frame["frame"] == "event":
            self.event(event_from_wire(frame["data"]))
        else:
            out(end_line(frame["data"], pid))


def parse_since(text: str, now: float) -> float:
    """``--since``: a duration back from now (``90s``, ``10m``, ``2h``, ``1d``) or a local
    ISO time (``2026-12-03T14:05``); returns a Unix time. Raises click.BadParameter."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip()
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return now - float(value[:-1]) * units[value[-1]]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (90s, 10m, 2h, 1d) nor a time (2026-12-03T14:05)",
            param_hint="--since",
        ) from None


def _read_log(obj: Context, pid: int, as_json: bool) -> list[Event]:
    try:
        path = obj.system().events_file(pid)
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
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
    return events


def _key(event: Event) -> tuple[Any, ...]:
    return (event.ts, event.pid, event.step, event.syscall, event.device)


@click.command()
@click.argument("pid", type=click.IntRange(min=1))
@click.option("--tail", "-n", type=click.IntRange(min=1), help="Only the last N events.")
@click.option("--follow", "-f", is_flag=True, help="Then print new events live until PID ends.")
@click.option("--since", help="Only events since a time or duration (10m, 2h, 2026-12-03T14:05).")
@click.option("--timestamps", "-t", is_flag=True, help="Prefix each line with its time.")
@click.option("--verbose", "-v", is_flag=True, help="The model's whole text and full results.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one event a line with -f).")
@click.pass_obj
def logs(
    obj: Context,
    pid: int,
    tail: int | None,
    follow: bool,
    since: str | None,
    timestamps: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Print the recorded events of PID (from its events.jsonl; no daemon needed). With
    ``-f``, keep printing its new events through the daemon until it exits."""
    start = None if since is None else parse_since(since, time.time())
    live = _subscribe(obj, pid, as_json) if follow else None
    events = _read_log(obj, pid, as_json)
    if not events and live is None:
        fail(
            f"no event log for PID {pid} at {obj.state / 'proc' / str(pid) / 'events.jsonl'} "
            "(unknown PID, or kernel.event_log is off)",
            as_json,
        )
    if start is not None:
        events = [e for e in events if e.ts >= start]
    if tail is not None:
        events = events[-tail:]
    printer = Printer(as_json, verbose, timestamps)
    if as_json and not follow:
        emit_json({"pid": pid, "events": [e.to_dict() for e in events]})
        return
    for event in events:
        printer.event(event)
    if not follow:
        return
    if live is None:
        if not as_json:
            out(f"[logs] PID {pid} is not running in a daemon: nothing more to follow")
        return
    _follow_live(live, pid, {_key(e) for e in events}, start, printer)


def _subscribe(obj: Context, pid: int, as_json: bool) -> tuple[Client, RemoteStream] | None:
    """The daemon and its stream of PID's events, or None when no daemon runs PID. Opened
    before the log is read, so that no event falls in between."""
    client = obj.daemon()
    if client is None:
        return None
    try:
        return client, client.stream("watch", pid=pid)
    except ApiError as exc:
        client.close()
        if exc.code != "NO_SUCH_PROCESS":
            fail(exc.message, as_json, exc.code)
        return None


def _follow_live(
    live: tuple[Client, RemoteStream],
    pid: int,
    seen: set[tuple[Any, ...]],
    start: float | None,
    printer: Printer,
) -> None:
    """Print PID's new events (not those ``seen``, nor any before ``start``) until it ends."""
    client, stream = live

    def on_frame(frame: dict[str, Any]) -> None:
        if frame["frame"] == "event":
            event = event_from_wire(frame["data"])
            if _key(event) not in seen and (start is None or event.ts >= start):
                printer.event(event)
        else:
            printer.frame(frame, pid)

    with client:
        _pump(stream, on_frame)


@click.command()
@click.argument("pid", type=click.IntRange(min=1))
@click.option(
    "--tail",
    "-n",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many of the last context messages to show.",
)
@click.option("--verbose", "-v", is_flag=True, help="Whole messages, not their first lines.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def inspect(obj: Context, pid: int, tail: int, verbose: bool, as_json: bool) -> None:
    """Everything about PID: template, state, parent and children, devices, limits and
    budget, breaker counts, supervisor, the last context messages and the immune view. Live
    from the daemon when one runs it, else from the store and its event log."""
    client = obj.daemon()
    try:
        if client is not None:
            with client:
                detail = client.call("inspect", pid=pid, tail=tail)
        else:
            detail = obj.system().inspect(pid, tail).to_dict()
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    except NoSuchProcess as exc:
        fail(str(exc), as_json, "NO_SUCH_PROCESS")
    except RnixError as exc:
        fail(str(exc), as_json)
    if as_json:
        emit_json(detail)
    else:
        out(inspect_text(detail, verbose))


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between refreshes.",
)
@click.pass_obj
def top(obj: Context, interval: float) -> None:
    """A full-screen live view of the daemon's processes: tree, state, step, tokens/budget,
    cost, subtree totals, alerts and supervisors; keys signal the selected process (k TERM,
    K KILL, p pause, r resume), Enter inspects it, / filters, q quits. (Inside
    `rnix shell`, `top` also shows the shell's own processes when no daemon runs.)"""
    from rnix_actors.cli.top import Top

    client = obj.require_daemon(False, "nothing to show")
    with client:
        Top(client, interval).run()
