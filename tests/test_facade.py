"""`System` as a facade: internals are private, reads are snapshots, errors are ours."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pykka
import pytest

from rnix_actors import System
from rnix_actors.errors import RnixError, StillRunning, SystemStopped, Unresponsive
from rnix_actors.kernel.table import TableView
from tests.helpers import agent, call, respond, scripted


def test_the_table_is_a_read_only_view_and_the_tracker_is_private(system: System) -> None:
    agent(system, "quick", scripted(["done"]), devices=("/dev/fs",))
    pid = system.run("quick", "x", timeout=30).pid
    table = system.table
    assert isinstance(table, TableView)
    assert table.get(pid) == system.info(pid)
    assert [p.pid for p in table.list()] == [pid]
    assert not hasattr(table, "put") and not hasattr(table, "track")
    with pytest.raises(AttributeError):
        system.table = table  # type: ignore[misc]
    assert not hasattr(system, "tracker")


def test_wait_that_times_out_raises_still_running_and_the_process_goes_on(
    system: System,
) -> None:
    go = threading.Event()

    def gate(request: object) -> str:
        go.wait(30)
        return "ok"

    system.register_device("/dev/gate", gate)
    agent(system, "gated", scripted([respond(call("call_device", device="/dev/gate")), "done"]),
          devices=("/dev/gate",))  # fmt: skip
    pid = system.spawn("gated", "wait")
    with pytest.raises(StillRunning, match=f"PID {pid} still running") as caught:
        system.wait(pid, timeout=0.05)
    assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, RnixError)
    go.set()
    assert system.wait(pid, timeout=30).exit_code == 0


def test_a_subsystem_that_does_not_answer_is_unresponsive_not_a_pykka_timeout(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with System(project) as system:
        topology = system.topology
        # The keeper writes each edge in a transaction: while this thread holds the store,
        # the keeper is stuck in its write and cannot answer.
        with system.store.transaction():
            topology.record("spawn", "a", "b")
            monkeypatch.setattr("rnix_actors.topology.actor.ASK_TIMEOUT", 0.2)
            with pytest.raises(Unresponsive, match="topology keeper did not answer"):
                topology.edges()
        monkeypatch.setattr("rnix_actors.topology.actor.ASK_TIMEOUT", 30.0)
        assert [(e.source, e.target, e.count) for e in topology.edges()] == [("a", "b", 1)]
    with pytest.raises(SystemStopped):
        topology.edges()


def test_no_pykka_error_leaves_a_stopped_system(system: System) -> None:
    system.stop()
    for call_ in (
        lambda: system.spawn("quick", "x"),
        lambda: system.kill(1),
        lambda: system.subscribe(lambda e: None),
        lambda: system.immune.status(),
        lambda: system.supervise(None),  # type: ignore[arg-type]
    ):
        with pytest.raises(RnixError) as caught:
            call_()
        assert not isinstance(caught.value, pykka.ActorDeadError | pykka.Timeout)


def test_importing_the_system_does_not_load_the_mcp_sdk() -> None:
    """The MCP SDK is heavy and loaded only when a server is used; a module of the same name
    on a script's path (a bench script named mcp.py, say) must not be picked up by
    ``import rnix_actors``."""
    probe = "import sys, rnix_actors.system; print('mcp' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False", done.stderr
