"""`DaemonServer`: serves a `Service` on a Unix socket (protocol in `rnix_actors.ipc.protocol`).

One thread accepts; each connection has a reader thread that answers requests in order, and
each open stream has a writer thread, so one connection may run streams and requests at
once (``cancel {"stream": id}`` ends a stream early). Writes on a connection are serialised.
The socket file is created with mode 0600, and peers of another user are refused (checked
with ``SO_PEERCRED`` where the platform has it). Runs on threads, so tests can serve a real
socket without forking; `rnix_actors.ipc.daemon` wraps it into the background process.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import socket
import struct
import threading
from pathlib import Path
from typing import Any

from rnix_actors.ipc.protocol import (
    MAX_LINE_BYTES,
    STREAMING,
    ApiError,
    Code,
    encode,
    parse_request,
    response_error,
    response_ok,
)
from rnix_actors.ipc.service import Service
from rnix_actors.ipc.streams import EventStream
from rnix_actors.privatefs import owned_private_dir

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 10.0


class DaemonRunning(Exception):
    """Another daemon already answers on this socket."""


def prepare_socket_path(path: Path) -> None:
    """Create the socket's directory and remove a stale socket file.

    Raises `DaemonRunning` if something still accepts connections there, and `OSError` if
    the path exists and is not a socket.
    """
    if path.parent.name == "rnix" and path.parent.parent.name.startswith("rnix-"):
        owned_private_dir(path.parent.parent)  # the /tmp/rnix-<uid> fallback: ours alone
    owned_private_dir(path.parent)  # nobody else may replace or reach the socket
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_socket():
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket; remove it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # stale: left behind by a daemon that died
        return
    finally:
        probe.close()
    raise DaemonRunning(f"a daemon is already listening on {path}")


def peer_uid(sock: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class _Connection:
    def __init__(self, sock: socket.socket, service: Service, server: DaemonServer) -> None:
        self.sock = sock
        self.service = service
        self.server = server
        # Whole lines only: the reader thread's responses and every stream's pump thread
        # write to the same socket.
        self._write_lock = threading.Lock()
        # The streams and their threads: the reader thread opens and cancels them, each pump
        # thread removes its own, and the server's close joins them.
        self._lock = threading.Lock()
        self._streams: dict[Any, EventStream] = {}
        self._threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._serve, name="rnix-ipc-conn", daemon=True)

    # -- writing -------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> bool:
        """Write one line; False once the peer is gone."""
        data = encode(message)
        with self._write_lock:
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                return False

    # -- reading -------------------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            with self.sock.makefile("rb") as reader:
                while True:
                    line = reader.readline(MAX_LINE_BYTES + 1)
                    if not line:
                        return
                    if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                        self._skip_rest(reader)
                        too_long = ApiError(
                            Code.MALFORMED, f"request line longer than {MAX_LINE_BYTES} bytes"
                        )
                        self.send(response_error(None, too_long))
                        continue
                    if line.strip():
                        self._handle(line)
        except OSError:
            return  # the peer reset the connection, or the server is closing
        finally:
            self._finish()

    @staticmethod
    def _skip_rest(reader: Any) -> None:
        while True:
            chunk = reader.readline(MAX_LINE_BYTES)
            if not chunk or chunk.endswith(b"\n"):
                return

    def _handle(self, line: bytes) -> None:
        request_id: Any = None
        try:
            request_id, method, params = parse_request(line)
            if method in STREAMING:
                self._open_stream(request_id, method, params)
                return
            if method == "cancel":
                result = self._cancel(params)
            else:
                result = self.service.call(method, params)
            self.send(response_ok(request_id, result))
        except ApiError as exc:
            self.send(response_error(exc.request_id or request_id, exc))
        except Exception as exc:  # never let one request end the connection
            log.exception("request failed")
            error = ApiError(Code.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
            self.send(response_error(request_id, error))

    def _cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        stream_id = params.get("stream")
        with self._lock:
            stream = self._streams.get(stream_id)
        if stream is None:
            raise ApiError(Code.BAD_PARAMS, f"no open stream with id {stream_id!r}")
        stream.cancel()
        return {"stream": stream_id, "cancelled": True}

    def _open_stream(self, request_id: Any, method: str, params: dict[str, Any]) -> None:
        if request_id is None:
            raise ApiError(Code.MALFORMED, "malformed request: a stream needs an 'id'")
        with self._lock:
            if request_id in self._streams:
                raise ApiError(Code.BAD_PARAMS, f"a stream with id {request_id!r} is open")
        stream, result = self.service.open_stream(method, params)
        with self._lock:
            self._streams[request_id] = stream
        thread = threading.Thread(
            target=self._pump, args=(request_id, stream, result), name="rnix-ipc-stream"
        )
        thread.daemon = True
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _pump(self, request_id: Any, stream: EventStream, result: dict[str, Any]) -> None:
        try:
            if not self.send(response_ok(request_id, {"stream": request_id, **result})):
                return
            for frame in stream.frames():
                if not self.send({"id": request_id, **frame}):
                    return
        except Exception:
            log.exception("stream %r failed", request_id)
            self.send({"id": request_id, "frame": "end", "data": {"reason": "error"}})
        finally:
            with self._lock:
                self._streams.pop(request_id, None)
            self.service.release(stream)

    # -- closing ---------------------------------------------------------------------------------
    def _finish(self) -> None:
        """The peer went away (or we are closing): end its streams and release the socket."""
        with self._lock:
            streams = list(self._streams.values())
            threads = list(self._threads)
        for stream in streams:
            stream.cancel()
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server.forget(self)

    def join_streams(self) -> None:
        """Wait until every stream of this connection has sent its last frame."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(JOIN_TIMEOUT)

    def shutdown(self) -> None:
        """Unblock the reader (it then finishes as if the peer had left)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class DaemonServer:
    """Serve ``service`` on the Unix socket ``path`` until `close`.

    `start` binds (mode 0600) and returns once connections are accepted; it raises
    `DaemonRunning` when another daemon answers there and `OSError` when the path cannot be
    bound. `close` stops accepting, unblocks and joins every connection, removes the socket.
    """

    def __init__(self, path: Path, service: Service) -> None:
        self.path = path
        self.service = service
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = -1, -1
        # The connections and the closing flag: the accept thread adds, each connection's
        # thread forgets itself, and `stop_accepting`/`close` run on the daemon's thread.
        self._lock = threading.Lock()
        self._conns: set[_Connection] = set()
        self._accept_thread: threading.Thread | None = None
        self._closing = False

    def start(self) -> DaemonServer:
        prepare_socket_path(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            old_umask = os.umask(0o177)  # never world-connectable, not even for an instant
            try:
                listener.bind(str(self.path))
            finally:
                os.umask(old_umask)
            os.chmod(self.path, 0o600)
            listener.listen(64)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._wake_r, self._wake_w = os.pipe()
        self._accept_thread = threading.Thread(target=self._accept, name="rnix-ipc-accept")
        self._accept_thread.daemon = True
        self._accept_thread.start()
        return self

    def _accept(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closing:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready or self._closing:
                    return
                try:
                    sock, _ = self._listener.accept()
                except OSError:
                    continue
                uid = peer_uid(sock)
                if uid is not None and uid not in (os.getuid(), 0):
                    log.warning("refused a connection from uid %d", uid)
                    sock.close()
                    continue
                if not self._adopt(_Connection(sock, self.service, self)):
                    sock.close()
                    return

    def _adopt(self, conn: _Connection) -> bool:
        with self._lock:
            if self._closing:
                return False
            self._conns.add(conn)
        conn.thread.start()
        return True

    def forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def stop_accepting(self) -> None:
        """Stop taking connections and remove the socket file (idempotent)."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(JOIN_TIMEOUT)
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def close(self) -> None:
        """Stop accepting, end every stream and connection, and join their threads."""
        self.stop_accepting()
        self.service.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.join_streams()  # their "shutdown" end frames go out before we hang up
            conn.shutdown()
        for conn in conns:
            conn.thread.join(JOIN_TIMEOUT)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> DaemonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
