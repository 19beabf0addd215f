"""Start, stop and find the daemon of a state dir (what ``rnix daemon …`` does).

`start_daemon` forks ``python -m rnix_actors.ipc.daemon`` into its own session and returns
once it answers a ping; `stop_daemon` asks it to shut down and returns once its system has
stopped and its pid-file lock is released; `find_daemon` connects if one runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

import attrs

from rnix_actors.ipc.client import Client, DaemonUnavailable
from rnix_actors.ipc.protocol import log_path, pid_path, socket_path
from rnix_actors.privatefs import private_dir, private_open

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class DaemonError(Exception):
    """The daemon could not be started or stopped; the message says why and what to do."""


@attrs.frozen
class DaemonInfo:
    pid: int
    socket: Path
    already_running: bool = False


def find_daemon(state_dir: Path, timeout: float = 60.0) -> Client | None:
    """A connected client if a daemon answers a ping for ``state_dir``, else None."""
    path = socket_path(state_dir)
    if not path.exists():
        return None
    try:
        client = Client.connect(path, timeout)
    except DaemonUnavailable:
        return None
    try:
        client.call("ping")
    except Exception:
        client.close()
        return None
    return client


def _log_tail(state_dir: Path, lines: int = 15) -> str:
    try:
        text = log_path(state_dir).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_daemon(project_dir: Path, state_dir: Path, timeout: float = START_TIMEOUT) -> DaemonInfo:
    """Start a daemon (or find the running one). Raises `DaemonError` with the tail of
    ``daemon.log`` if it exits or stays silent for ``timeout`` seconds."""
    running = find_daemon(state_dir)
    if running is not None:
        with running:
            pid = int(running.call("ping")["pid"])
        return DaemonInfo(pid, socket_path(state_dir), already_running=True)
    private_dir(state_dir)
    ready_r, ready_w = os.pipe()
    command = [
        sys.executable,
        "-m",
        "rnix_actors.ipc.daemon",
        "--project-dir",
        str(project_dir),
        "--state-dir",
        str(state_dir),
        "--ready-fd",
        str(ready_w),
    ]
    try:
        with private_open(log_path(state_dir), "ab") as log:
            subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(ready_w,),
                start_new_session=True,
                cwd=project_dir,
            )
    finally:
        os.close(ready_w)
    try:
        ready, _, _ = select.select([ready_r], [], [], timeout)
        answer = os.read(ready_r, 64).decode(errors="replace") if ready else ""
    finally:
        os.close(ready_r)
    client = find_daemon(state_dir)
    if client is None:
        why = "did not get ready in time" if not ready else "exited during startup"
        tail = _log_tail(state_dir)
        raise DaemonError(
            f"the daemon {why}; see {log_path(state_dir)}" + (f":\n{tail}" if tail else "")
        )
    with client:
        pid = int(client.call("ping")["pid"])
    return DaemonInfo(pid, socket_path(state_dir), already_running=not answer.startswith("ready"))


def stop_daemon(state_dir: Path, timeout: float = STOP_TIMEOUT) -> int | None:
    """Shut the daemon down; returns its PID, or None if none was running. Raises
    `DaemonError` if it has not released its pid file after ``timeout`` seconds."""
    client = find_daemon(state_dir, timeout)
    if client is None:
        return None
    with client:
        pid = int(client.call("ping")["pid"])
        with contextlib.suppress(DaemonUnavailable):
            client.call("shutdown")
    if not _wait_unlocked(pid_path(state_dir), timeout):
        raise DaemonError(f"daemon pid {pid} is still stopping after {timeout:.0f}s")
    return pid


def _wait_unlocked(path: Path, timeout: float) -> bool:
    """Block until nobody holds ``path``'s lock. The daemon holds it until its very end, so
    this is exact even when the daemon is our own (not yet reaped) child process."""
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return True  # already released and removed
    done = threading.Event()

    def lock() -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(handle, fcntl.LOCK_SH)
        done.set()

    threading.Thread(target=lock, name="rnix-daemon-stop-wait", daemon=True).start()
    if done.wait(timeout):
        handle.close()
        return True
    return False  # the waiting thread stays blocked; this process is about to report and exit
