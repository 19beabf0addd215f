"""The application supervisor: the system's own services die, and the system copes.

Each test kills one service actor while an agent runs (blocked in a host device call), then
checks the documented outcome: a restartable service comes back under its `ServiceRef` and
works; the kernel's end fails the system loudly (every process ends with a typed reason,
calls raise `SystemFailed`, `stop` returns). conftest's fixture fails a test that leaks a
thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rnix_actors import ChildSpec, DeviceCall, ProcessState, SupervisorSpec, System
from rnix_actors.app.service import ServiceRef
from rnix_actors.errors import SystemFailed, SystemStopped
from rnix_actors.messages.application import QueryServices, ServiceView
from rnix_actors.messages.links import ExitKind
from tests.helpers import Collector, agent, call, respond, scripted

WAIT = 30.0


class Gate:
    """A host device whose calls block until `release` (the agent is busy meanwhile)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()

    def __call__(self, request: DeviceCall) -> str:
        self.entered.set()
        self.go.wait(WAIT)
        return "ok"

    def release(self) -> None:
        self.go.set()


@pytest.fixture
def gated(project: Path) -> Iterator[tuple[System, Gate]]:
    gate = Gate()
    system = System(project)
    system.register_device("/dev/gate", gate)
    system.start()
    brain = scripted([respond(call("call_device", device="/dev/gate")), "done"])
    agent(system, "gated", brain, devices=("/dev/gate",))
    agent(system, "quick", scripted(["done"]), devices=("/dev/fs",))
    try:
        yield system, gate
    finally:
        gate.release()
        system.stop()


def services(system: System) -> dict[str, ServiceView]:
    assert system._run is not None
    views: tuple[ServiceView, ...] = system._run.app.ask(QueryServices(), timeout=WAIT)
    return {view.name: view for view in views}


def handle(system: System, name: str) -> ServiceRef:
    run = system._run
    assert run is not None
    found = {
        "bus": run.bus,
        "process log": run.process_log,
        "kernel": run.kernel,
        "immune": system.immune._daemon,
        "topology": system.topology._ref,
        "planner": system.migration.ref,
    }[name]
    assert isinstance(found, ServiceRef)
    return found


def kill(system: System, name: str) -> None:
    """Stop the service's actor as a crash would (not through its supervisor), then wait
    until the application has handled its exit: the exit notice is queued before ``stop``
    returns, and the application answers asks in order."""
    service = handle(system, name)
    actor = service.current
    assert actor is not None
    actor.stop(timeout=WAIT)
    services(system)


def test_the_services_start_in_order_under_the_application(system: System) -> None:
    assert list(services(system)) == [
        "bus",
        "process log",
        "kernel",
        "immune",
        "topology",
        "planner",
    ]
    views = services(system).values()
    assert all(view.status == "running" and view.restarts == 0 for view in views)


@pytest.mark.parametrize("name", ["bus", "process log", "immune", "topology", "planner"])
def test_a_crashed_service_is_restarted_and_the_running_agent_completes(
    gated: tuple[System, Gate], name: str
) -> None:
    system, gate = gated
    seen = Collector()
    system.subscribe(seen)  # before the crash: a restarted bus keeps its subscribers
    pid = system.spawn("gated", "wait at the gate")
    assert gate.entered.wait(WAIT)
    before = handle(system, name).current

    kill(system, name)

    view = services(system)[name]
    assert (view.status, view.restarts) == ("running", 1)
    assert handle(system, name).current not in (None, before)
    gate.release()
    info = system.wait(pid, timeout=WAIT)
    assert (info.state, info.exit_code) == (ProcessState.DEAD, 0)
    # The system works on: a new process runs, its events reach the old subscriber, its
    # row reaches the store, and the restarted service answers.
    quick = system.run("quick", "after the crash", timeout=WAIT).pid
    seen.wait_for(lambda e: e.pid == quick and e.syscall == "Exit")
    assert {p.pid: p.state for p in system.ps(all=True)} == {
        pid: ProcessState.DEAD,
        quick: ProcessState.DEAD,
    }
    assert system.immune.status().mode == "warn-only"
    assert system.topology.edges() == []
    assert system.migration.decisions() == []
    assert system.running and system.failure is None


def test_the_kernel_ending_fails_the_system_loudly_and_cleanly(
    gated: tuple[System, Gate],
) -> None:
    system, gate = gated
    tree = system.supervise(
        SupervisorSpec("team", children=(ChildSpec("worker", "gated", "wait too"),))
    )
    solo = system.spawn("gated", "wait at the gate")
    assert gate.entered.wait(WAIT)
    pids = [p.pid for p in system.ps()]
    assert solo in pids and len(pids) == 2

    kill(system, "kernel")
    assert system._failed_event.wait(WAIT)

    failure = system.failure
    assert failure is not None and failure.kind is ExitKind.FAILED
    assert "service kernel ended" in failure.detail
    for pid in pids:  # every process ended, and says why
        info = system.info(pid)
        assert (info.state, info.exit_code) == (ProcessState.DEAD, 1)
        assert "kernel" in info.exit_reason
        assert (info.exit_kind, info.exit_origin) == ("killed", "kernel")
    with pytest.raises(SystemFailed, match="service kernel ended") as raised:
        system.spawn("quick", "no kernel")
    assert raised.value.reason == failure
    with pytest.raises(SystemStopped):  # SystemFailed is a SystemStopped
        system.kill(solo)
    assert not system.running
    assert {view.status for view in services(system).values()} <= {"stopped", "done"}
    tree_view = system.tree()
    assert [view.path for view in tree_view] == ["/team"]
    del tree
    system.stop()  # returns, raises nothing; the fixture's stop is a no-op after it
    assert system._run is None


def test_the_application_supervisor_ending_unasked_fails_the_system(
    gated: tuple[System, Gate],
) -> None:
    """Its own actor stopped as a crash would (not by `System.stop`): it stops the services in
    reverse order and the system fails, saying so, instead of running on with no kernel."""
    system, gate = gated
    pid = system.spawn("gated", "wait at the gate")
    assert gate.entered.wait(WAIT)
    assert system._run is not None

    system._run.app.stop(timeout=WAIT)
    assert system._failed_event.wait(WAIT)

    failure = system.failure
    assert failure is not None and failure.kind is ExitKind.FAILED
    assert "application supervisor ended" in failure.detail
    info = system.table.get(pid)
    assert info is not None and info.state is ProcessState.DEAD
    assert info.exit_kind == "shutdown"  # the kernel stopped in order, ending it so
    with pytest.raises(SystemFailed, match="application supervisor ended"):
        system.spawn("quick", "no application")
    assert not system.running
    system.stop()
    assert system._run is None


def test_an_events_log_that_cannot_be_created_costs_only_that_log(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reproduction: ``<state>/proc/1`` is a file, so PID 1's events.jsonl cannot be
    made. The bus logs it and goes on; PID 1 settles, the next spawn works, stop returns."""
    state = project / ".rnix"
    (state / "proc").mkdir(parents=True)
    (state / "proc" / "1").write_text("in the way\n")
    with System(project) as system:
        agent(system, "quick", scripted([respond(call("list_files")), "done"]))
        seen = Collector()
        system.subscribe(seen)
        first = system.run("quick", "first", timeout=WAIT)
        assert (first.pid, first.exit_code) == (1, 0)
        seen.wait_for(lambda e: e.pid == 1 and e.syscall == "Exit")  # subscribers still see it
        second = system.run("quick", "second", timeout=WAIT)
        assert second.exit_code == 0
        system.sync_events()
        assert system.events_file(second.pid).exists()
        assert services(system)["bus"].restarts == 0
    assert "PID 1: events.jsonl cannot be written" in caplog.text
    assert not system.running


def test_a_service_that_keeps_crashing_fails_the_system(gated: tuple[System, Gate]) -> None:
    system, _ = gated
    for _ in range(3):  # the restart limit: 3 in 60 s, as for any supervisor
        kill(system, "topology")
    assert system.failure is None
    kill(system, "topology")
    assert system._failed_event.wait(WAIT)
    failure = system.failure
    assert failure is not None
    assert "service topology crashed more than 3 times" in failure.detail
    with pytest.raises(SystemFailed, match="topology"):
        system.spawn("quick", "x")
