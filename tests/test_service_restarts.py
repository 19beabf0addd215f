"""What a restarted service keeps: its judgement of the processes running across the restart,
a store connection of its own, and what it was told while it was down.

The immune daemon restarts while a run it flagged waits at a gate (`Gate`) and still holds the
run out; a service whose connection breaks crashes on its next write, reopens its own and the
run's row still reaches the store; a `ServiceRef` delivers what it was told while down to the
next incarnation, in order. Everything is real: agent threads, actors, SQLite.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from rnix_actors import LLMRequest, LLMResponse, ProcessState, System
from rnix_actors.app.service import ServiceRef
from rnix_actors.immune import ImmuneConfig
from rnix_actors.migration.gate import Record
from rnix_actors.migration.ledger import task_key
from rnix_actors.store.db import Store
from tests.helpers import agent, call, respond
from tests.test_application import WAIT, Gate, handle, kill, services

TRAINING = [respond(call("list_files")), respond(call("read_file", path="README.md")), "done"]
# The same start, then a burst of shell calls no training run made, then the gate.
FLAGGED = [
    respond(call("list_files")),
    respond(*[call("shell", command=f"echo {i}") for i in range(8)]),
    respond(call("call_device", device="/dev/gate")),
    "done",
]


def brain(request: LLMRequest) -> LLMResponse | str:
    """The flagged script for an intent that asks for it, the training script otherwise."""
    steps = FLAGGED if request.messages[0].content.startswith("burst") else TRAINING
    return steps[min(request.step, len(steps)) - 1]


@pytest.fixture
def lab(project: Path) -> Iterator[tuple[System, Gate]]:
    gate = Gate()
    system = System(project, immune=ImmuneConfig(warn_only=True))
    system.register_device("/dev/gate", gate)
    system.start()
    agent(system, "worker", brain, devices=("/dev/fs", "/dev/shell", "/dev/gate"))
    try:
        yield system, gate
    finally:
        gate.release()
        system.stop()


def learned_runs(system: System, template: str) -> int:
    system.sync_events()
    found = [p.runs for p in system.immune.status().profiles if p.template == template]
    return found[0] if found else 0


def test_a_restarted_immune_daemon_still_holds_out_a_run_it_flagged(
    lab: tuple[System, Gate],
) -> None:
    system, gate = lab
    for _ in range(5):
        assert system.run("worker", "learn", timeout=WAIT).exit_code == 0
    pid = system.spawn("worker", "burst, then wait at the gate")
    assert gate.entered.wait(WAIT)
    status = system.immune.status()  # after the guard's report: the daemon reads in order
    assert {a.pid for a in status.alerts} == {pid}
    assert pid in status.monitoring

    kill(system, "immune")

    assert services(system)["immune"].restarts == 1
    status = system.immune.status()
    assert pid in status.monitoring  # the new daemon knows the running process
    assert {a.pid for a in status.alerts} == {pid}
    gate.release()
    assert system.wait(pid, timeout=WAIT).exit_code == 0
    # Held out, as before the restart: the flagged run did not become normal behaviour.
    assert learned_runs(system, "worker") == 5
    assert pid not in system.immune.status().monitoring


def test_a_restarted_planner_keeps_the_tasks_record_and_counts_a_run_it_did_not_see_start(
    lab: tuple[System, Gate],
) -> None:
    """A supervisor's task that failed twice, then a third attempt running across a planner
    restart: the new planner still knows the task's record and counts the third failure
    (a migration offered next is judged on all three)."""
    system, gate = lab
    wait_at_gate = threading.Event()

    def failing(request: LLMRequest) -> LLMResponse | str:
        if wait_at_gate.is_set() and request.step == 1:
            return respond(call("call_device", device="/dev/gate"))
        raise RuntimeError("this agent always fails")

    agent(system, "failing", failing, devices=("/dev/gate",))
    origin, intent = "supervisor /svc", "the task"
    for _ in range(2):
        assert system.run("failing", intent, origin=origin, timeout=WAIT).exit_code == 1
    wait_at_gate.set()
    pid = system.spawn("failing", intent, origin=origin)
    assert gate.entered.wait(WAIT)
    # The old planner has seen the third run start (what is still in a dying actor's inbox
    # is lost with it, as documented): the bus delivered it, and the planner answers after.
    system.sync_events()
    system.migration.decisions()

    kill(system, "planner")

    assert services(system)["planner"].restarts == 1
    gate.release()
    assert system.wait(pid, timeout=WAIT).exit_code == 1
    system.sync_events()  # the exit is in the new planner's inbox; its answer comes after it
    planner = handle(system, "planner").current
    assert planner is not None
    ledger = planner.proxy().ledger.get(timeout=WAIT)
    assert ledger.task(task_key(origin, intent, "failing")) == Record(successes=0, failures=3)
    assert ledger.records()["failing"] == Record(successes=0, failures=3)


def connection_of(system: System, name: str) -> Store:
    """The store connection the service's current actor writes through."""
    actor = handle(system, name).current
    assert actor is not None
    proxy = actor.proxy()
    if name == "process log":
        found: Store = proxy.store.get(timeout=WAIT)
    else:
        found = proxy.db.get(timeout=WAIT).store
    return found


@pytest.mark.parametrize("name", ["immune", "topology", "planner", "process log"])
def test_a_service_whose_connection_breaks_reopens_its_own(
    lab: tuple[System, Gate], name: str
) -> None:
    system, _ = lab
    before = handle(system, name).current
    assert before is not None
    thread = before.proxy().thread.get(timeout=WAIT)
    connection = connection_of(system, name)
    assert connection is not system.store  # its own, not the kernel's

    connection.close()  # as a broken file handle would: the owner's next write fails

    # A run makes the process log write its rows, the daemon learn it and the planner count
    # it; the topology writes an edge it is told of.
    info = system.run("worker", "after the break", timeout=WAIT)
    assert info.state is ProcessState.DEAD and info.exit_code == 0
    system.topology.record("msg", "worker", "worker")
    # The service's write failed and it crashed: its exit notice reached the application
    # before its thread ended, so the application's next answer comes after the restart.
    thread.join(WAIT)
    assert not thread.is_alive()
    view = services(system)[name]
    assert (view.status, view.restarts) == ("running", 1)
    assert connection_of(system, name) not in (connection, system.store)
    # The run's row reached the store (``ps --all`` reads it there), whichever owner broke.
    assert {p.pid: p.state for p in system.ps(all=True)}[info.pid] is ProcessState.DEAD
    again = system.run("worker", "and again", timeout=WAIT)
    assert again.exit_code == 0
    assert system.running and system.failure is None


class Recorder(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def on_receive(self, message: Any) -> Any:
        if message == "seen":
            return list(self.seen)
        self.seen.append(message)
        return None


def test_what_is_told_to_a_service_while_it_is_down_reaches_its_successor_in_order() -> None:
    first = Recorder.start()
    service = ServiceRef("recorder", first)
    service.tell(1)
    assert first.ask("seen", timeout=WAIT) == [1]
    first.stop(timeout=WAIT)
    service.tell(2)  # to the dead actor: held
    service.point(None)  # the supervisor saw the exit
    service.tell(3)  # while down: held
    second = Recorder.start()
    try:
        service.point(second)
        service.tell(4)
        assert second.ask("seen", timeout=WAIT) == [2, 3, 4]
        assert service.dropped == 0
        service.point(None, hold=False)  # retired: nothing will serve what it is told
        service.tell(5)
        assert service.dropped == 1
    finally:
        second.stop(timeout=WAIT)
