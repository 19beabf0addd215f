"""Typed exit reasons end to end: each way a process ends has its kind and origin, in its
record, its Exit event, the store and the wire; consumers decide on the kind, not the text."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import Collector, agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, ProcessState, System
from rnix_actors.ipc.protocol import process_from_wire
from rnix_actors.messages.events import Event
from rnix_actors.messages.links import ExitClass, ExitKind, ExitReason
from rnix_actors.migration.ledger import Ledger, counts_against
from rnix_actors.store.db import Store


def looping(release: threading.Event):  # type: ignore[no-untyped-def]
    def brain(request: LLMRequest) -> LLMResponse | str:
        if release.is_set():
            return "done"
        release.wait(0.01)  # pacing only
        return respond(call("list_files"))

    return brain


def test_every_kind_has_an_otp_class_and_abnormal_follows_it() -> None:
    normal = {ExitKind.COMPLETED, ExitKind.NORMAL}
    shutdown = {ExitKind.SHUTDOWN, ExitKind.SIGNAL, ExitKind.PAUSED}
    for kind in ExitKind:
        reason = ExitReason(kind)
        if kind in normal:
            assert reason.exit_class is ExitClass.NORMAL and not reason.abnormal
        elif kind in shutdown:
            assert reason.exit_class is ExitClass.SHUTDOWN and not reason.abnormal
        else:
            assert reason.abnormal, kind
    assert ExitReason(ExitKind.NODE_LOST).exit_class is ExitClass.FAILED
    assert ExitReason(ExitKind.KILLED).exit_class is ExitClass.KILLED
    assert ExitReason(ExitKind.NOPROC).exit_class is ExitClass.NOPROC


def test_the_old_failed_kind_reads_as_error() -> None:
    assert ExitKind("failed") is ExitKind.ERROR
    assert ExitKind.FAILED is ExitKind.ERROR
    assert ExitReason.from_dict({"kind": "failed", "detail": "x"}).kind is ExitKind.ERROR
    assert ExitReason.from_dict({"kind": "no-such-kind"}).kind is ExitKind.ERROR


def test_an_exit_record_without_a_kind_reads_its_kind_from_the_code() -> None:
    assert ExitReason.from_event_args({"code": 0, "reason": "completed"}).kind is (
        ExitKind.COMPLETED
    )
    old = ExitReason.from_event_args({"code": 1, "reason": "killed by SIGKILL from user"})
    assert old.kind is ExitKind.ERROR  # the prose is never parsed
    assert ExitReason.from_event_args({"code": 2}).kind is ExitKind.PAUSED
    typed = {"code": 1, "kind": "signal", "origin": "supervisor /s", "reason": "anything"}
    assert ExitReason.from_event_args(typed) == ExitReason(
        ExitKind.SIGNAL, "supervisor /s", "anything"
    )


def test_the_ledger_decides_on_the_kind_not_the_text() -> None:
    # Text that used to be matched by prefix no longer decides anything.
    assert counts_against(ExitReason(ExitKind.ERROR, "", "killed by a bug")) is False
    assert counts_against(ExitReason(ExitKind.KILLED, "user", "")) is None
    assert counts_against(ExitReason(ExitKind.NODE_LOST, "node-2", "")) is None
    assert counts_against(ExitReason(ExitKind.BREAKER, "", "")) is False
    assert counts_against(ExitReason(ExitKind.COMPLETED)) is True
    ledger = Ledger()
    for pid, args in (
        (1, {"code": 1, "kind": "timeout", "reason": "terminated by nothing"}),
        (2, {"code": 1, "kind": "signal", "origin": "user", "reason": "x"}),
    ):
        ledger.observe(Event(0.0, pid, "a", 0, "Start", args={"origin": "api", "intent": "i"}))
        ledger.observe(Event(0.0, pid, "a", 1, "Exit", args=args))
    record = ledger.records()["a"]
    assert (record.successes, record.failures) == (0, 1)


def test_each_ending_has_its_kind_origin_and_exit_event(system: System) -> None:
    release = threading.Event()
    agent(system, "loop", looping(release), max_steps=100_000)
    agent(system, "short", lambda request: respond(call("list_files")), max_steps=2)
    agent(system, "answer", lambda request: "the answer")
    events = Collector()
    system.subscribe(events, ["Exit"])
    done = system.spawn("answer", "x")
    capped = system.spawn("short", "x")
    termed = system.spawn("loop", "x")
    killed = system.spawn("loop", "x")
    assert system.wait(done, 10).exit_kind == "completed"
    assert system.wait(capped, 10).exit_kind == "max_steps"
    system.kill(termed, "SIGTERM", origin="tester")
    system.kill(killed, "SIGKILL", origin="tester")
    term = system.wait(termed, 10)
    kill = system.wait(killed, 10)
    assert (term.exit_kind, term.exit_origin) == ("signal", "tester")
    assert (kill.exit_kind, kill.exit_origin) == ("killed", "tester")
    release.set()
    system.sync_events()
    exits = {e.pid: e.args for e in events.events if e.syscall == "Exit"}
    assert exits[done]["kind"] == "completed" and exits[done]["code"] == 0
    assert (exits[termed]["kind"], exits[termed]["origin"]) == ("signal", "tester")
    assert exits[killed]["kind"] == "killed"
    assert ExitReason.from_event_args(exits[capped]).kind is ExitKind.MAX_STEPS


def test_a_pause_by_the_immune_daemon_is_typed(system: System) -> None:
    release = threading.Event()
    agent(system, "loop", looping(release), max_steps=100_000)
    pid = system.spawn("loop", "x")
    system.pause(pid, origin="immune")
    info = system.wait(pid, 10)
    assert info.state is ProcessState.SUSPENDED
    assert (info.exit_kind, info.exit_origin) == ("paused", "immune")
    assert system.immune.status().suspended == (pid,)
    system.kill(pid, "SIGTERM")
    ended = system.wait(pid, 10)
    assert (ended.exit_kind, ended.exit_origin) == ("signal", "user")


def test_the_kind_survives_the_store_and_the_wire(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    with System(project) as system:
        agent(system, "answer", lambda request: "ok")
        pid = system.spawn("answer", "x")
        info = system.wait(pid, 10)
    store = Store(project / ".rnix" / "rnix.db")
    try:
        stored = store.get_process(pid)
    finally:
        store.close()
    assert stored is not None and stored.exit_kind == "completed"
    assert process_from_wire(info.to_dict()).exit_kind == "completed"


@pytest.mark.parametrize("kind", list(ExitKind))
def test_the_wire_form_of_a_reason_round_trips(kind: ExitKind) -> None:
    reason = ExitReason(kind, "origin", "detail")
    assert ExitReason.from_dict(reason.to_dict()) == reason
