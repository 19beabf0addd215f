"""`Client`: talks to a daemon over its Unix socket (protocol in `rnix_actors.ipc.protocol`).

``call`` runs one unary method on the client's connection (one at a time; thread-safe);
``stream`` opens its own connection per stream, so a shell can watch while it sends commands.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from rnix_actors.ipc.protocol import MAX_LINE_BYTES, ApiError, Code, decode, encode

CONNECT_TIMEOUT = 2.0
CALL_TIMEOUT = 60.0


class DaemonUnavailable(Exception):
    """No daemon answers on the socket (none runs, or it went away mid-request)."""


class UntrustedDaemon(Exception):
    """The process serving the socket is not run by this user: its answers are not trusted."""


def _connect(path: Path, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise DaemonUnavailable(f"no rnix daemon answers on {path} ({exc.strerror})") from None
    try:
        check_peer(sock, path)
    except BaseException:
        sock.close()
        raise
    return sock


def check_peer(sock: socket.socket, path: Path) -> None:
    """Raise `UntrustedDaemon` unless the server's process runs as this user (SO_PEERCRED).

    Anyone who can bind the socket path first could otherwise answer as the daemon: show a
    forged process list, or collect the intents and commands sent to it.
    """
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    if uid != os.getuid():
        raise UntrustedDaemon(
            f"the process serving {path} (pid {pid}) runs as uid {uid}, not as you "
            f"(uid {os.getuid()}): refusing to talk to it; remove the socket and start your "
            "own daemon with 'rnix daemon start'"
        )


class _Line:
    """One connection: write requests, read response lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: IO[bytes] = sock.makefile("rb")
        # One request line at a time on the socket: a stream's `cancel` may come from another
        # thread than the one that sent the request (client side: no actors here).
        self.write_lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self.write_lock:
            try:
                self.sock.sendall(encode(message))
            except OSError as exc:
                raise DaemonUnavailable(f"the daemon connection failed: {exc}") from None

    def receive(self) -> dict[str, Any] | None:
        """The next line as an object, or None at end of stream."""
        try:
            line = self.reader.readline(MAX_LINE_BYTES * 4)
        except TimeoutError:
            raise ApiError(Code.TIMEOUT, "the daemon did not answer in time") from None
        except OSError as exc:
            raise DaemonUnavailable(f"the daemon connection failed: {exc}") from None
        return decode(line) if line else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


def _result(response: dict[str, Any]) -> dict[str, Any]:
    if response.get("ok"):
        result = response.get("result")
        return result if isinstance(result, dict) else {}
    error = response.get("error") or {}
    raise ApiError(str(error.get("code", Code.INTERNAL)), str(error.get("message", "failed")))


class RemoteStream:
    """Frames of one streaming request; iterate once. `cancel` may be called from any
    thread; the daemon then sends the ``end`` frame. If the connection drops first, the
    last frame is a synthetic ``end`` with reason ``disconnected``."""

    def __init__(self, line: _Line, request_id: int, result: dict[str, Any]) -> None:
        self._line = line
        self._id = request_id
        self.result = result
        self._cancel_ids = itertools.count(request_id + 1)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            while True:
                try:
                    message = self._line.receive()
                except (DaemonUnavailable, ApiError):
                    message = None
                if message is None:
                    yield {"frame": "end", "data": {"reason": "disconnected"}}
                    return
                if message.get("id") != self._id or "frame" not in message:
                    continue  # e.g. the answer to our cancel request
                yield {"frame": message["frame"], "data": message.get("data")}
                if message["frame"] == "end":
                    return
        finally:
            self.close()

    def cancel(self) -> None:
        with contextlib.suppress(DaemonUnavailable):
            self._line.send(
                {"id": next(self._cancel_ids), "method": "cancel", "params": {"stream": self._id}}
            )

    def close(self) -> None:
        self._line.close()


class Client:
    """A connection to the daemon at ``path``; `connect` raises `DaemonUnavailable`."""

    kind = "daemon"

    def __init__(self, path: Path, line: _Line, timeout: float) -> None:
        self.path = path
        self._line = line
        self._timeout = timeout
        self._ids = itertools.count(1)
        # One call at a time on the connection: a client shared by threads must not read
        # another caller's response.
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, path: Path, timeout: float = CALL_TIMEOUT) -> Client:
        sock = _connect(path, min(timeout, CONNECT_TIMEOUT))
        sock.settimeout(timeout)
        return cls(path, _Line(sock), timeout)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Run ``method``; returns its result. Raises `ApiError` for a failed request and
        `DaemonUnavailable` when the connection is gone."""
        with self._lock:
            request_id = next(self._ids)
            self._line.send({"id": request_id, "method": method, "params": params})
            while True:
                response = self._line.receive()
                if response is None:
                    raise DaemonUnavailable("the daemon closed the connection")
                if response.get("id") == request_id:
                    return _result(response)

    def stream(self, method: str, **params: Any) -> RemoteStream:
        """Open a stream on a new connection; raises like `call` if it is refused."""
        sock = _connect(self.path, CONNECT_TIMEOUT)
        sock.settimeout(self._timeout)
        line = _Line(sock)
        try:
            line.send({"id": 1, "method": method, "params": params})
            response = line.receive()
            if response is None:
                raise DaemonUnavailable("the daemon closed the connection")
            result = _result(response)
        except BaseException:
            line.close()
            raise
        sock.settimeout(None)  # frames come when events happen
        return RemoteStream(line, 1, result)

    def close(self) -> None:
        self._line.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
