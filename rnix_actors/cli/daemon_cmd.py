"""``rnix daemon start|stop|status``: the background process hosting the project's system."""

from __future__ import annotations

import click

from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.cli.render import daemon_status
from rnix_actors.ipc.control import DaemonError, start_daemon, stop_daemon
from rnix_actors.ipc.daemon import read_pid
from rnix_actors.ipc.protocol import ApiError, log_path


@click.group("daemon")
def daemon() -> None:
    """Start, stop or inspect the project's daemon (one actor system, on a Unix socket)."""


@daemon.command("start")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def start(obj: Context, as_json: bool) -> None:
    """Start the daemon in the background; returns once it answers. Logs go to
    <state>/daemon.log."""
    try:
        info = start_daemon(obj.project, obj.state)
    except (DaemonError, OSError) as exc:
        fail(str(exc), as_json)
    if as_json:
        emit_json(
            {
                "ok": True,
                "pid": info.pid,
                "socket": str(info.socket),
                "already_running": info.already_running,
            }
        )
    elif info.already_running:
        out(f"daemon already running (pid {info.pid}, socket {info.socket})")
    else:
        out(f"daemon started (pid {info.pid}, socket {info.socket}, log {log_path(obj.state)})")


@daemon.command("stop")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stop(obj: Context, as_json: bool) -> None:
    """Stop the daemon: its processes are killed, its system stopped cleanly."""
    try:
        pid = stop_daemon(obj.state)
    except (DaemonError, ApiError, OSError) as exc:
        fail(str(exc), as_json)
    if as_json:
        emit_json({"ok": True, "was_running": pid is not None, "pid": pid})
    elif pid is None:
        out("daemon is not running")
    else:
        out(f"daemon stopped (pid {pid})")


@daemon.command("reload")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def reload(obj: Context, as_json: bool) -> None:
    """Make the daemon re-read agent templates and skills now (it also does on each spawn)."""
    client = obj.require_daemon(as_json, "cannot reload")
    try:
        with client:
            data = client.call("reload")
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    if as_json:
        emit_json({"ok": True, **data})
    else:
        out(f"reloaded: {data['text']}")


@daemon.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Show whether the daemon runs, with its PID, socket, process counts and immune mode."""
    client = obj.daemon()
    if client is None:
        holder = read_pid(obj.state)
        if as_json:
            emit_json({"running": False, "socket": str(obj.socket), "unresponsive_pid": holder})
        else:
            out(f"status: stopped\nsocket: {obj.socket}")
            if holder is not None:
                out(f"note: pid {holder} holds the daemon lock but does not answer", err=True)
        return
    try:
        with client:
            data = client.call("status")
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    if as_json:
        emit_json({"running": True, **data})
    else:
        out(daemon_status(data))
