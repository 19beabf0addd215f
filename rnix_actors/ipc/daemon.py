"""The daemon process: one `System` for a project, served on its Unix socket.

    python -m rnix_actors.ipc.daemon --project-dir P [--state-dir S] [--ready-fd N]

Startup: lock ``<state>/daemon.pid`` (``flock``: a second daemon for the same state dir exits
with status 3 naming the running one), start the system and immune monitoring, remove a stale
socket, listen, write ``ready <pid>`` to the ready fd. It stops on SIGTERM, SIGINT or a
``shutdown`` request: no new connections, the system stops (followers see their processes'
exits), remaining streams end with ``shutdown``, connections close, the socket and pid file are
removed. Errors go to ``<state>/daemon.log`` (``rnix daemon start`` shows its tail); secrets
are never logged. Exit status: 0 clean stop, 1 startup failure, 3 already running.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rnix_actors.errors import ConfigError
from rnix_actors.ipc.protocol import pid_path, socket_path
from rnix_actors.ipc.server import DaemonRunning, DaemonServer
from rnix_actors.ipc.service import Service, attach_immune_if_available
from rnix_actors.privatefs import private_dir, private_open
from rnix_actors.redact import install_log_filter
from rnix_actors.system import System, resolve_state_dir

log = logging.getLogger("rnix_actors.daemon")

EXIT_ALREADY_RUNNING = 3


class PidFile:
    """``<state>/daemon.pid``, locked with ``flock`` for as long as the daemon lives.

    The lock, not the file's existence, says a daemon runs: a file left by a killed daemon is
    unlocked, so it is simply taken over.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Lock and write our PID; raises `DaemonRunning` naming the holder's PID."""
        private_dir(self.path.parent)
        handle = private_open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            message = f"a daemon (pid {holder}) already runs for this state dir"
            raise DaemonRunning(message) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            handle.close()  # closing drops the lock


def read_pid(state_dir: Path) -> int | None:
    """The PID in the pid file if a live daemon holds its lock, else None."""
    path = pid_path(state_dir)
    try:
        handle = path.open("r")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else None
        return None  # unlocked: nobody holds it


def serve(project_dir: Path, state_dir: Path | None, ready_fd: int | None = None) -> int:
    """Run a daemon in this process until it is told to stop; returns the exit status."""
    state = resolve_state_dir(project_dir, state_dir)
    system = System(project_dir, state_dir=state)
    pidfile = PidFile(pid_path(state))
    try:
        pidfile.acquire()
    except DaemonRunning as exc:
        log.error("%s", exc)
        return EXIT_ALREADY_RUNNING
    stop = threading.Event()
    server: DaemonServer | None = None
    immune = None
    try:
        system.start()
        immune = attach_immune_if_available(system)
        # Before serving: the immune guard is installed, no client sees a half-started tree.
        # A bad supervisors.yaml stops the daemon here (ConfigError: file, field, fix).
        started = system.autostart()
        if started:
            log.info("autostarted supervision trees %s", ", ".join(started))
        path = socket_path(state)
        service = Service(system, immune=immune, socket=path)
        service.on_shutdown = stop.set
        server = DaemonServer(path, service).start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _setter(stop))
        log.info("rnix daemon pid %d serving %s on %s", os.getpid(), project_dir, path)
        if ready_fd is not None:
            os.write(ready_fd, f"ready {os.getpid()}\n".encode())
            os.close(ready_fd)
        stop.wait()
        log.info("stopping")
        return 0
    except ConfigError as exc:  # a bad project file: its message names file, field and fix
        log.error("daemon not started: %s", exc)
        return 1
    except Exception:
        log.exception("daemon failed")
        return 1
    finally:
        _shut_down(system, server, immune, pidfile)


def _shut_down(system: System, server: DaemonServer | None, immune: Any, pidfile: PidFile) -> None:
    """Stop taking clients, stop the immune monitor and the system, then close the server's
    connections and release the pid-file lock (`stop_daemon` waits for that)."""
    if server is not None:
        server.stop_accepting()
    with contextlib.suppress(Exception):
        if immune is not None and hasattr(immune, "stop"):
            immune.stop()
    system.stop(checkpoint=True)  # running processes suspend, to resume after a restart
    if server is not None:
        server.close()
    pidfile.release()
    log.info("stopped")


def _setter(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnix_actors.ipc.daemon")
    parser.add_argument("--project-dir", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--ready-fd", type=int, help="write 'ready <pid>' here once serving")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_log_filter()  # daemon.log: no secret, nor any fragment of one
    # Pykka reports every exception an ask returns to its caller at INFO; the caller
    # (a client) already gets it as an error response.
    logging.getLogger("pykka").setLevel(logging.WARNING)
    return serve(args.project_dir, args.state_dir, args.ready_fd)


if __name__ == "__main__":
    sys.exit(main())
