"""Links and monitors between real actors on real threads (no timing: events and asks)."""

from __future__ import annotations

import itertools
import queue
from typing import Any

import pykka
import pytest

from rnix_actors.kernel import links
from rnix_actors.kernel.base import RnixActor
from rnix_actors.messages.links import NORMAL, Down, Exit, ExitKind, ExitReason

WAIT = 10.0


class Probe(RnixActor):
    """Records the Exit/Down messages it gets; crashes or stops on request."""

    def __init__(self, name: str, trap: bool = False, crash_on_start: bool = False) -> None:
        super().__init__(endpoint=links.Endpoint(name))
        self.endpoint.trap_exit = trap
        self.got: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.signalled: list[Exit] = []
        self.crash_on_start = crash_on_start

    def started(self) -> None:
        if self.crash_on_start:
            raise RuntimeError("no start")

    def exit_signalled(self, exit: Exit) -> None:
        self.signalled.append(exit)

    def handle(self, message: Any) -> Any:
        match message:
            case Exit() | Down():
                self.got.put(message)
            case "crash":
                raise RuntimeError("boom")
            case ("stop", reason):
                self.exit_reason = reason
                self.stop()
            case "sync":
                return "ok"
            case _:
                self.unhandled(message)
        return None


def start(name: str, **kw: Any) -> tuple[pykka.ActorRef[Probe], Probe]:
    # Pykka.start() without hiding the instance: the test reads the probe's queue directly.
    actor = Probe(name, **kw)
    run(actor)
    return actor.actor_ref, actor


def run(actor: Probe) -> None:
    pykka.ActorRegistry.register(actor.actor_ref)
    actor._start_actor_loop()


def test_a_linked_pair_dies_together_with_the_same_reason() -> None:
    a_ref, a = start("a")
    b_ref, b = start("b")
    links.link(a.endpoint, b.endpoint)
    a_ref.tell("crash")
    assert a.endpoint.wait(WAIT) and b.endpoint.wait(WAIT)
    assert a.endpoint.reason is not None and a.endpoint.reason.kind is ExitKind.FAILED
    assert "boom" in a.endpoint.reason.detail
    assert b.endpoint.reason == a.endpoint.reason
    assert b.signalled and b.signalled[0].source is a.endpoint
    b_ref.actor_stopped.wait(WAIT)
    assert not b_ref.is_alive()


def test_a_normal_exit_does_not_take_the_linked_actor_down() -> None:
    a_ref, a = start("a")
    b_ref, b = start("b")
    links.link(a.endpoint, b.endpoint)
    a_ref.tell(("stop", NORMAL))
    assert a.endpoint.wait(WAIT)
    assert b_ref.ask("sync", timeout=WAIT) == "ok"
    assert b.endpoint.alive and b.got.empty()
    assert b.endpoint.links == frozenset()  # the dead side is unlinked


def test_trap_exit_turns_the_signal_into_a_message() -> None:
    a_ref, a = start("a")
    b_ref, b = start("b", trap=True)
    links.link(b.endpoint, a.endpoint)
    a_ref.tell(("stop", ExitReason(ExitKind.SHUTDOWN, "user", "asked to stop")))
    exit = b.got.get(timeout=WAIT)
    assert isinstance(exit, Exit) and exit.source is a.endpoint
    assert exit.reason == ExitReason(ExitKind.SHUTDOWN, "user", "asked to stop")
    assert not exit.reason.abnormal
    assert b_ref.ask("sync", timeout=WAIT) == "ok" and b.endpoint.alive


def test_a_trapping_actor_also_hears_of_normal_exits() -> None:
    a_ref, a = start("a")
    _b_ref, b = start("b", trap=True)
    links.link(a.endpoint, b.endpoint)
    a_ref.tell(("stop", NORMAL))
    exit = b.got.get(timeout=WAIT)
    assert exit.reason.kind is ExitKind.NORMAL


def test_a_monitor_never_kills_the_watcher() -> None:
    a_ref, a = start("a")
    b_ref, b = start("b")  # does not trap exits
    ref = links.monitor(b.endpoint, a.endpoint)
    a_ref.tell("crash")
    down = b.got.get(timeout=WAIT)
    assert isinstance(down, Down) and down.ref == ref and down.source is a.endpoint
    assert down.reason.kind is ExitKind.FAILED
    assert b_ref.ask("sync", timeout=WAIT) == "ok" and b.endpoint.alive


def test_demonitor_and_unlink_stop_the_notices() -> None:
    a_ref, a = start("a")
    b_ref, b = start("b", trap=True)
    links.link(a.endpoint, b.endpoint)
    ref = links.monitor(b.endpoint, a.endpoint)
    links.unlink(b.endpoint, a.endpoint)
    links.demonitor(b.endpoint, ref)
    a_ref.tell("crash")
    assert a.endpoint.wait(WAIT)  # set after the notices were posted
    assert b_ref.ask("sync", timeout=WAIT) == "ok"
    assert b.got.empty() and b.endpoint.alive


@pytest.mark.parametrize("trap", [True, False])
def test_linking_to_a_dead_actor_delivers_noproc_at_once(trap: bool) -> None:
    a_ref, a = start("a")
    a_ref.stop(timeout=WAIT)
    assert a.endpoint.wait(WAIT)
    _b_ref, b = start("b", trap=trap)
    links.link(b.endpoint, a.endpoint)
    if trap:
        exit = b.got.get(timeout=WAIT)
        assert exit.reason.kind is ExitKind.NOPROC and exit.source is a.endpoint
        assert b.endpoint.alive
    else:
        assert b.endpoint.wait(WAIT)
        assert b.endpoint.reason is not None and b.endpoint.reason.kind is ExitKind.NOPROC


def test_monitoring_a_dead_actor_delivers_noproc_at_once() -> None:
    a_ref, a = start("a")
    a_ref.tell(("stop", NORMAL))
    assert a.endpoint.wait(WAIT)
    _b_ref, b = start("b")
    ref = links.monitor(b.endpoint, a.endpoint)
    down = b.got.get(timeout=WAIT)
    assert down.ref == ref and down.reason.kind is ExitKind.NOPROC


def test_a_crash_in_on_start_reaches_the_links() -> None:
    _b_ref, b = start("b", trap=True)
    a = Probe("a", crash_on_start=True)
    links.link(a.endpoint, b.endpoint)  # linked before it runs, as the kernel does
    run(a)
    exit = b.got.get(timeout=WAIT)
    assert exit.source is a.endpoint and exit.reason.kind is ExitKind.FAILED
    assert "on_start" in exit.reason.detail


def test_a_pykka_stop_without_a_reason_is_abnormal() -> None:
    a_ref, a = start("a")
    _b_ref, b = start("b", trap=True)
    links.link(a.endpoint, b.endpoint)
    a_ref.stop(timeout=WAIT)
    exit = b.got.get(timeout=WAIT)
    assert exit.reason.kind is ExitKind.KILLED and exit.reason.abnormal


def test_exit_signals_spread_along_a_chain_and_stop_at_a_trapping_actor() -> None:
    refs = [start(f"n{i}") for i in range(5)]
    _keeper_ref, keeper = start("keeper", trap=True)
    for (_, left), (_, right) in itertools.pairwise(refs):
        links.link(left.endpoint, right.endpoint)
    links.link(refs[-1][1].endpoint, keeper.endpoint)
    refs[0][0].tell("crash")
    exit = keeper.got.get(timeout=WAIT)
    assert exit.source is refs[-1][1].endpoint
    assert all(actor.endpoint.wait(WAIT) for _, actor in refs)
    assert {actor.endpoint.reason for _, actor in refs} == {refs[0][1].endpoint.reason}
    assert keeper.endpoint.alive


def test_unknown_messages_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    a_ref, _a = start("a")
    a_ref.tell(12345)
    assert a_ref.ask("sync", timeout=WAIT) == "ok"
    assert "unexpected message int" in caplog.text
