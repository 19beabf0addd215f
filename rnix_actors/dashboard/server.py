"""The dashboard's HTTP server: the standard library's `ThreadingHTTPServer` on 127.0.0.1.

Every request must carry the session token, in the URL (``?token=…``, the first visit) or in
the ``HttpOnly; SameSite=Strict`` cookie set on that visit; the comparison is constant-time
(`hmac.compare_digest`). Anything else is refused with 403, as is a ``Host`` header that is
not this loopback address and port (a DNS-rebinding page names its own host). Actions are
``POST /api/action`` and need the token in an ``X-Rnix-Token`` header (a cross-site page can
neither read it nor send that header without a CORS preflight we never grant) and, when the
browser sends an ``Origin``, our own. Pages carry a Content-Security-Policy that only runs
this response's own inline script (nonce) and may not be framed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import secrets
import socket
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rnix_actors.dashboard.app import DashboardApp
from rnix_actors.dashboard.html import Page, diff, document
from rnix_actors.errors import SystemStopped

log = logging.getLogger(__name__)

HEARTBEAT = 25.0
"""Seconds between keep-alive comments on an idle stream (they also notice a closed tab)."""
SETTLE = 1.0
"""After a change, one more render this long after the last one: what services record
right after an event (an alert, a restart, an edge) reaches the page too."""
MIN_INTERVAL = 0.25
"""At most four renders a second per stream, however busy the system is."""
MAX_STREAMS = 32
MAX_BODY = 4096


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close joins the request threads

    def __init__(self, app: DashboardApp, port: int) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        # The connections and the stream count: each request has its thread, and `stop`'s
        # thread drops the connections.
        self.lock = threading.Lock()
        self.streams = 0
        super().__init__(("127.0.0.1", port), Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints to stderr; a library logs.
        log.exception("dashboard: request from %s failed", client_address)

    def drop_connections(self) -> None:
        """Wake every request thread blocked on its socket (used by stop)."""
        with self.lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "rnix-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    timeout = 30.0

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        # Never the request line: its query may hold the token.
        log.debug("dashboard %s %s", self.command, urlsplit(self.path).path)

    # -- checks --------------------------------------------------------------------------------
    @property
    def app(self) -> DashboardApp:
        return self.server.app

    def _host_ok(self) -> bool:
        port = self.server.port
        return self.headers.get("Host", "") in (f"127.0.0.1:{port}", f"localhost:{port}")

    def _cookie_name(self) -> str:
        return f"rnix_dashboard_{self.server.port}"

    def _token_from(self, query: dict[str, list[str]]) -> tuple[str, bool]:
        """(the token presented, whether it came in the URL)."""
        given = query.get("token", [""])[0]
        if given:
            return given, True
        cookies = SimpleCookie()
        try:
            cookies.load(self.headers.get("Cookie", ""))
        except Exception:
            return "", False
        morsel = cookies.get(self._cookie_name())
        return ("" if morsel is None else morsel.value), False

    def _valid(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.app.token.encode())

    def _refuse(self, status: int, message: str) -> None:
        body = (message + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    # -- GET -----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        if not self._host_ok():
            self._refuse(403, "forbidden: unexpected Host header")
            return
        query = parse_qs(url.query)
        given, in_url = self._token_from(query)
        if not given or not self._valid(given):
            self._refuse(403, "forbidden: open the URL that `rnix dashboard` printed")
            return
        if url.path == "/stream":
            self._stream(query)
            return
        target = _target(url.path, query)
        version = self.app.hub.version
        page = self._render(target)
        if page is None:
            return
        nonce = secrets.token_urlsafe(16)
        html = document(page, token=self.app.token, nonce=nonce, stream=target, version=version)
        body = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self._security_headers(nonce)
        if in_url:
            self.send_header(
                "Set-Cookie",
                f"{self._cookie_name()}={self.app.token}; HttpOnly; SameSite=Strict; Path=/",
            )
        self.end_headers()
        self.wfile.write(body)

    def _render(self, target: str) -> Page | None:
        """The page, or None once an error response was sent (404, 503, 500)."""
        try:
            page = self.app.render(target)
        except SystemStopped as exc:
            self._refuse(503, f"unavailable: {exc}")
            return None
        except Exception:
            log.exception("dashboard: rendering %s failed", target)
            self._refuse(500, "internal error (the server's log has the details)")
            return None
        if page is None:
            self._refuse(404, f"not found: {urlsplit(target).path}")
        return page

    def _security_headers(self, nonce: str) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header(
            "Content-Security-Policy",
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'",
        )
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")

    def _stream(self, query: dict[str, list[str]]) -> None:
        target = query.get("page", ["/"])[0]
        since = query.get("since", [""])[0]
        with self.server.lock:
            if self.server.streams >= MAX_STREAMS:
                self._refuse(503, f"too many open dashboards (at most {MAX_STREAMS})")
                return
            self.server.streams += 1
        try:
            self._serve_stream(target, since)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass  # the tab went away
        finally:
            with self.server.lock:
                self.server.streams -= 1

    def _serve_stream(self, target: str, since: str) -> None:
        hub = self.app.hub
        seen = hub.version
        page = self._render(target)
        if page is None:
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        regions = page.regions()
        if since != str(seen):  # something changed between the page and its stream
            self._send({}, regions)
        self.wfile.flush()
        settle = False
        while True:
            changed = hub.wait(seen, SETTLE if settle else HEARTBEAT)
            if hub.closed:
                return
            if not changed and not settle:
                self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
                continue
            settle = changed
            seen = hub.version
            try:
                page = self.app.render(target)
            except Exception as exc:  # the system stopped under us: end the stream
                log.info("dashboard: stream of %s ended: %r", target, exc)
                return
            if page is None:
                return
            fresh = page.regions()
            self._send(regions, fresh)
            regions = fresh
            if changed and not hub.pause(MIN_INTERVAL):
                return

    def _send(self, old: Any, new: Any) -> None:
        changes = diff(old, new)
        if changes:
            data = json.dumps(changes, separators=(",", ":"), ensure_ascii=False)
            self.wfile.write(f"event: update\ndata: {data}\n\n".encode())
            self.wfile.flush()
            self.app.sent(len(data))

    # -- POST ----------------------------------------------------------------------------------
    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if not self._host_ok():
            self._refuse(403, "forbidden: unexpected Host header")
            return
        origin = self.headers.get("Origin")
        port = self.server.port
        if origin is not None and origin not in (
            f"http://127.0.0.1:{port}",
            f"http://localhost:{port}",
        ):
            self._refuse(403, "forbidden: cross-origin request")
            return
        if not self._valid(self.headers.get("X-Rnix-Token", "")):
            self._refuse(403, "forbidden: actions need the X-Rnix-Token header")
            return
        if url.path != "/api/action":
            self._refuse(404, f"not found: {url.path}")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._refuse(400, f"bad request: a JSON body of at most {MAX_BODY} bytes is needed")
            return
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            body = None
        status, answer = self.app.act(body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self._refuse(405, "method not allowed")

    do_DELETE = do_PATCH = do_PUT


def _target(path: str, query: dict[str, list[str]]) -> str:
    """The page a request names, as the stream will ask for it again."""
    run = query.get("run", [""])[0]
    if path == "/immune" and run.isdigit() and run.isascii():
        return f"/immune?run={int(run)}"
    return path
