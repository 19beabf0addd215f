"""The live web dashboard: processes, supervision trees, topology and immune baselines.

    with System(".") as system:
        dashboard = system.serve_dashboard()      # or serve_dashboard(system, port=8765)
        print(dashboard.url)                      # http://127.0.0.1:PORT/?token=...
        ...
        dashboard.stop()

It serves server-rendered pages on 127.0.0.1 only, from the system's public API, with live
updates over Server-Sent Events pushed only when the system's events say something changed.
Each dashboard has its own random token; see ``docs/dashboard.md`` for how it is secured.
"""

from __future__ import annotations

import errno
import logging
import secrets
import threading

from rnix_actors.dashboard.app import DashboardApp
from rnix_actors.dashboard.server import DashboardServer
from rnix_actors.errors import RnixError
from rnix_actors.system import System

log = logging.getLogger(__name__)

__all__ = ["Dashboard", "DashboardError", "serve_dashboard"]


class DashboardError(RnixError):
    """The dashboard could not start (e.g. its port is taken)."""


class Dashboard:
    """A running dashboard: ``url`` (with the token), ``port``, ``stop()``. Thread-safe."""

    def __init__(self, app: DashboardApp, server: DashboardServer) -> None:
        self._app = app
        self._server = server
        self.port = server.port
        self.token = app.token
        self.url = f"http://127.0.0.1:{self.port}/?token={app.token}"
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"dashboard:{self.port}", daemon=True
        )
        self._stopped = threading.Event()

    def _start(self) -> Dashboard:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return not self._stopped.is_set()

    @property
    def streams(self) -> int:
        """Live pages open right now."""
        return self._server.streams

    @property
    def app(self) -> DashboardApp:
        return self._app

    def stop(self, timeout: float = 10.0) -> None:
        """Close every live stream, stop serving and join the server's threads. Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._app.hub.close()
        self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_dashboard(system: System, port: int = 0) -> Dashboard:
    """Serve ``system``'s dashboard on 127.0.0.1:``port`` (0: a free port) until `stop`.

    Raises `DashboardError` if the port is taken or not a valid port, `SystemStopped` if
    the system is not running; nothing is left started on failure.
    """
    if not 0 <= port <= 65535:
        raise DashboardError(f"port must be between 0 and 65535 (got {port}); 0 picks a free one")
    app = DashboardApp(system, secrets.token_urlsafe(24))
    app.hub.attach(system)  # raises SystemStopped before anything listens
    try:
        server = DashboardServer(app, port)
    except OSError as exc:
        app.hub.close()
        if exc.errno == errno.EADDRINUSE:
            raise DashboardError(
                f"port {port} on 127.0.0.1 is in use; choose another --port, or 0 for a free one"
            ) from None
        raise DashboardError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    dashboard = Dashboard(app, server)._start()
    log.info("dashboard serving on 127.0.0.1:%d", dashboard.port)
    return dashboard
