"""The daemon's socket server, in-process on threads with a real Unix socket: round trips,
malformed input, permission bits, two clients at once, streams that end cleanly."""

from __future__ import annotations

import json
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, System
from rnix_actors.ipc.client import Client, DaemonUnavailable
from rnix_actors.ipc.protocol import MAX_LINE_BYTES, ApiError, socket_path
from rnix_actors.ipc.server import DaemonRunning, DaemonServer
from rnix_actors.ipc.service import Service


@pytest.fixture
def server(system: System) -> Iterator[DaemonServer]:
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, socket=path)) as served:
        yield served


def gated(gate: threading.Event) -> Callable[[LLMRequest], LLMResponse | str]:
    """Step 1 waits for ``gate`` (so the process is surely running), then it finishes."""

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            assert gate.wait(10), "test gate never opened"
            return respond(call("list_files"))
        return "gated done"

    return brain


class Raw:
    """A bare socket speaking lines, to send what a well-behaved client never would."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> dict[str, Any]:
        data = self.reader.readline()
        assert data, "connection closed"
        value: dict[str, Any] = json.loads(data)
        return value

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def test_round_trips_ping_spawn_info_ps(server: DaemonServer) -> None:
    with Client.connect(server.path) as client:
        assert client.call("ping")["version"]
        pid = client.call("spawn", agent="doc-writer", intent="document")["pid"]
        stream = client.stream("follow", pid=pid)
        frames = list(stream)
        assert frames[-1]["frame"] == "end" and frames[-1]["data"]["reason"] == "exited"
        assert frames[-1]["data"]["process"]["exit_code"] == 0
        assert client.call("wait", pid=pid, timeout=10)["process"]["state"] == "dead"
        info = client.call("info", pid=pid)["process"]
        assert (info["pid"], info["state"], info["exit_reason"]) == (pid, "dead", "completed")
        assert [p["pid"] for p in client.call("ps", all=True)["processes"]] == [pid]
        assert client.call("ps")["processes"] == []
        names = [t["name"] for t in client.call("templates")["templates"]]
        assert {"code-analyst", "doc-writer", "security-scanner"} <= set(names)


def test_errors_carry_codes(server: DaemonServer) -> None:
    with Client.connect(server.path) as client:
        cases = [
            (("info",), {"pid": 99}, "NO_SUCH_PROCESS"),
            (("info",), {"pid": "x"}, "BAD_PARAMS"),
            (("spawn",), {"agent": "nobody", "intent": "x"}, "NO_SUCH_AGENT"),
            (("kill",), {"pid": 1, "signal": "SIGFOO"}, "BAD_PARAMS"),
            (("nope",), {}, "UNKNOWN_METHOD"),
            (("shutdown",), {}, "UNAVAILABLE"),  # no daemon process behind this server
            (("immune_status",), {}, "UNAVAILABLE"),
        ]
        for (method,), params, code in cases:
            with pytest.raises(ApiError) as caught:
                client.call(method, **params)
            assert caught.value.code == code, (method, caught.value.message)
        assert client.call("ping")  # the connection survived every error


def test_malformed_lines_get_errors_and_the_connection_survives(server: DaemonServer) -> None:
    raw = Raw(server.path)
    try:
        for data, request_id, fragment in [
            (b"not json\n", None, "malformed request: not valid JSON"),
            (b"[1, 2]\n", None, "expected a JSON object"),
            (b'{"id": 5}\n', 5, "'method' must be a non-empty string"),
            (b'{"id": 6, "method": "ps", "params": [1]}\n', 6, "'params' must be an object"),
            (b'{"id": {"x": 1}, "method": "ps"}\n', None, "'id' must be"),
            (b"\xff\xfe\n", None, "not valid JSON"),
            (b"x" * (MAX_LINE_BYTES + 10) + b"\n", None, "longer than"),
        ]:
            raw.send(data)
            answer = raw.line()
            assert answer["ok"] is False and answer["id"] == request_id, answer
            assert answer["error"]["code"] == "MALFORMED"
            assert fragment in answer["error"]["message"]
        raw.send(b'\n{"id": 7, "method": "ping"}\n')  # blank lines are ignored
        assert raw.line()["id"] == 7
    finally:
        raw.close()
    with Client.connect(server.path) as client:  # and the daemon still serves others
        assert client.call("ping")


def test_socket_is_owner_only(server: DaemonServer) -> None:
    mode = stat.S_IMODE(server.path.stat().st_mode)
    assert stat.S_ISSOCK(server.path.stat().st_mode) and mode == 0o600


def test_two_clients_at_once_one_watching(system: System, server: DaemonServer) -> None:
    gate = threading.Event()
    agent(system, "gated", gated(gate))
    with Client.connect(server.path) as watcher, Client.connect(server.path) as actor:
        stream = watcher.stream("watch")
        seen: list[dict[str, Any]] = []
        started = threading.Event()

        def read() -> None:
            for frame in stream:
                seen.append(frame)
                if frame["frame"] == "event" and frame["data"]["syscall"] == "Start":
                    started.set()

        reader = threading.Thread(target=read)
        reader.start()
        pid = actor.call("spawn", agent="gated", intent="x")["pid"]
        assert started.wait(10)
        assert actor.call("info", pid=pid)["process"]["state"] == "running"
        assert watcher.call("ps")["processes"][0]["pid"] == pid  # the watcher's own calls too
        gate.set()
        assert list(actor.stream("follow", pid=pid))[-1]["data"]["reason"] == "exited"
        stream.cancel()
        reader.join(10)
        assert not reader.is_alive()
        assert seen[-1] == {"frame": "end", "data": {"reason": "cancelled"}}
        assert {f["data"]["syscall"] for f in seen[:-1]} >= {"Start"}


def test_watch_pid_stays_through_a_pause_and_ends_at_exit(
    system: System, server: DaemonServer
) -> None:
    gate = threading.Event()
    agent(system, "gated", gated(gate))
    with Client.connect(server.path) as client:
        pid = client.call("spawn", agent="gated", intent="x")["pid"]
        stream = client.stream("watch", pid=pid)
        frames = iter(stream)
        client.call("pause", pid=pid)
        gate.set()
        assert system.wait(pid, 10).state == "suspended"
        assert client.call("resume", pid=pid)["outcome"] == "resuming 1 process(es)"
        rest = list(frames)
        syscalls = [f["data"]["syscall"] for f in rest if f["frame"] == "event"]
        assert "Suspend" in syscalls and "Resume" in syscalls and syscalls[-1] == "Exit"
        assert rest[-1]["data"]["reason"] == "exited"
        assert rest[-1]["data"]["process"]["result"] == "gated done"


def test_run_streams_a_spawn_from_its_start(server: DaemonServer) -> None:
    with Client.connect(server.path) as client:
        stream = client.stream("run", agent="code-analyst", intent="review", max_steps=2)
        frames = list(stream)
        events = [f["data"] for f in frames if f["frame"] == "event"]
        assert events[0]["syscall"] == "Start" and events[0]["pid"] == stream.result["pid"]
        end = frames[-1]["data"]
        assert end["reason"] == "exited"
        assert end["process"]["exit_reason"] == "max steps exceeded"
        with pytest.raises(ApiError) as caught:
            client.stream("run", agent="nobody", intent="x")
        assert caught.value.code == "NO_SUCH_AGENT"


def test_closing_the_server_ends_open_streams_with_shutdown(system: System) -> None:
    path = socket_path(system.state_dir)
    server = DaemonServer(path, Service(system, socket=path)).start()
    client = Client.connect(path)
    stream = client.stream("watch")
    frames: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: frames.extend(stream))
    reader.start()
    server.close()
    reader.join(10)
    assert frames[-1] == {"frame": "end", "data": {"reason": "shutdown"}}
    assert not path.exists() and server.connections == 0
    with pytest.raises(DaemonUnavailable):
        client.call("ping")
    client.close()


def test_stale_socket_is_replaced_and_a_live_one_is_refused(system: System) -> None:
    path = socket_path(system.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a killed daemon leaves
    with DaemonServer(path, Service(system)) as first:
        with Client.connect(path) as client:
            assert client.call("ping")
        with pytest.raises(DaemonRunning):
            DaemonServer(path, Service(system)).start()
        assert first.path.exists()
    path.write_text("not a socket")
    with pytest.raises(OSError, match="not a socket"):
        DaemonServer(path, Service(system)).start()


def test_a_client_that_disconnects_mid_stream_releases_it(
    system: System, server: DaemonServer
) -> None:
    raw = Raw(server.path)
    raw.send(b'{"id": 1, "method": "watch"}\n')
    assert raw.line()["result"] == {"stream": 1, "pid": None}
    raw.send(b'{"id": 2, "method": "cancel", "params": {"stream": 9}}\n')
    assert raw.line()["error"]["code"] == "BAD_PARAMS"
    raw.close()
    with Client.connect(server.path) as client:
        client.call("spawn", agent="doc-writer", intent="x")  # publishing to a gone client
        assert client.call("ping")
