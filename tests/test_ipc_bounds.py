"""A slow or never-reading stream client costs the daemon a bounded amount of memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import agent, call, respond, scripted
from test_ipc import Raw

from rnix_actors import System
from rnix_actors.ipc import streams
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.server import DaemonServer
from rnix_actors.ipc.service import Service

BIG = "x" * 200_000


@pytest.fixture
def served(system: System) -> Iterator[tuple[System, DaemonServer, Service]]:
    path = socket_path(system.state_dir)
    service = Service(system, socket=path)
    with DaemonServer(path, service) as server:
        yield system, server, service


def writers(system: System, count: int) -> None:
    writes = scripted([respond(call("write_file", path="big.txt", content=BIG)), "done"])
    agent(system, "writer", writes, devices=("/dev/fs",))
    pids = [system.spawn("writer", f"write {i}") for i in range(count)]
    for pid in pids:
        assert system.wait(pid, 60).exit_code == 0
    system.sync_events()


def open_watch(server: DaemonServer) -> Raw:
    raw = Raw(server.path)
    raw.send(b'{"id": 1, "method": "watch", "params": {}}\n')
    return raw


def test_a_never_reading_watch_client_holds_no_large_values(
    served: tuple[System, DaemonServer, Service],
) -> None:
    system, server, service = served
    raw = open_watch(server)
    raw.sock.setblocking(True)
    try:
        assert raw.line()["ok"]  # the stream is open; from here on nothing is read
        (stream,) = service._streams
        writers(system, 100)  # 20 MB of tool arguments pass through the bus
        events, size, _ = stream.buffered
        assert events > 0
        assert size <= streams.MAX_BUFFERED_BYTES
        assert size < 100 * 8_000  # wire form: each value clipped, no 200 KB argument kept
    finally:
        raw.close()


def test_a_client_that_falls_behind_gets_the_overflow_end(
    served: tuple[System, DaemonServer, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "MAX_BUFFERED_BYTES", 20_000)
    system, server, service = served
    raw = open_watch(server)
    raw.sock.setblocking(True)
    try:
        assert raw.line()["ok"]  # the stream is open; now stop reading for a while
        # Taken now: once it overflows, the server ends it and lets it go.
        (stream,) = service._streams
        writers(system, 30)
        assert stream.buffered[1] <= 20_000 and stream.buffered[2] > 0
        frames = []
        while True:
            frame = raw.line()
            frames.append(frame)
            if frame.get("frame") == "end":
                break
        end = frames[-1]["data"]
        assert end["reason"] == "overflow" and end["dropped"] == stream.buffered[2] > 0
        assert all(f["frame"] == "event" for f in frames[:-1])
        assert json.dumps(frames)  # every frame is plain JSON
    finally:
        raw.close()


def test_the_daemon_serves_others_while_a_client_stalls(
    served: tuple[System, DaemonServer, Service], tmp_path: Path
) -> None:
    system, server, _ = served
    stalled = open_watch(server)
    try:
        writers(system, 20)
        fresh = Raw(server.path)
        fresh.send(b'{"id": 9, "method": "ping"}\n')
        assert fresh.line()["id"] == 9
        fresh.close()
    finally:
        stalled.close()
