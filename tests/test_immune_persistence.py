"""Profiles, threats, alerts and held runs survive restarts (real SQLite files)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from helpers import agent, call, respond, scripted

from rnix_actors import Event, ProcessInfo, ProcessState, Signal, System
from rnix_actors.immune import ImmuneConfig, attach_immune
from rnix_actors.immune.alerts import Alert
from rnix_actors.immune.baseline import ProfileBuilder
from rnix_actors.immune.detector import Anomaly
from rnix_actors.immune.persistence import ImmuneStore
from rnix_actors.immune.sample import RunSample, StepSample
from rnix_actors.immune.threats import ThreatMemory
from rnix_actors.messages.guards import Guard
from rnix_actors.messages.immune import AnomalyDetected
from rnix_actors.store.db import Store

SAMPLE = RunSample("t", (StepSample(10, 1.5, (("Exec /dev/shell", 2),)),))
ANOMALY = Anomaly("step.count", "step.count:Exec /dev/shell", "/dev/shell", 9, 1, 2, 7.5,
                  "shell-injection-pattern")  # fmt: skip


def test_every_table_round_trips_through_a_reopened_file(tmp_path: Path) -> None:
    path = tmp_path / "rnix.db"
    store = Store(path)
    db = ImmuneStore(store)
    builder = ProfileBuilder("t")
    for _ in range(3):
        builder.learn(SAMPLE)
    db.save_profile(builder, time.time())
    memory = ThreatMemory(30, 10)
    sig, change = memory.record("shell-injection-pattern", ANOMALY.metric, "t", "d", 1.0)
    db.save_threats(change.saved, change.removed)
    alert = Alert.of(1, 7, "t", ANOMALY, suspended=True)
    db.add_alerts([alert], retired=[])
    db.hold(7, SAMPLE, 2.0)
    store.close()

    store = Store(path)
    db = ImmuneStore(store)
    loaded = db.load()
    assert loaded.profiles["t"].snapshot() == builder.snapshot()
    assert loaded.threats == [sig]
    assert loaded.alerts == [alert] and loaded.next_alert_id == 2
    assert db.held(7) == SAMPLE
    assert db.clear_alerts(7) == 1 and db.load().alerts == []
    assert db.load().next_alert_id == 2  # ids are never reused
    db.learn_held(builder, 7, 3.0)
    assert db.held(7) is None
    store.close()


def normal(system: System) -> None:
    agent(system, "w", scripted([respond(call("shell", command="true")), "done"]))


def burst(system: System) -> None:
    shells = [call("shell", command=f"echo {i}") for i in range(6)]
    agent(system, "w", scripted([respond(*shells), "done"]))


def run(system: System) -> ProcessInfo:
    info = system.run("w", "x", timeout=10)
    system.sync_events()
    return info


def test_a_restarted_system_remembers_and_detects_at_once(project: Path) -> None:
    config = ImmuneConfig(warn_only=False)
    with System(project) as system:
        immune = system.set_immune(config)
        normal(system)
        for _ in range(5):
            assert run(system).exit_code == 0
        burst(system)
        first = run(system)
        assert first.state is ProcessState.SUSPENDED
        system.kill(first.pid, Signal.SIGKILL)
        system.wait(first.pid, 10)
        before = immune.status()
        immune.stop()
    assert before.profiles[0].runs == 5 and len(before.alerts) >= 1

    with System(project) as system:
        immune = system.set_immune(config)
        after = immune.status()
        assert after.profiles == before.profiles
        assert [a.line() for a in after.alerts] == [a.line() for a in before.alerts]
        assert [t.name for t in after.threats] == ["shell-injection-pattern"]
        burst(system)
        second = run(system)  # no retraining: the profile and the memory came back
        assert second.state is ProcessState.SUSPENDED
        assert "known threat shell-injection-pattern" in second.exit_reason
        immune.stop()


class FakeHost:
    """A host for the daemon alone: records signals; the process has one child."""

    def __init__(self) -> None:
        self.signals: list[tuple[int, str, str]] = []
        self.published: list[Event] = []

    def subscribe(self, callback: Callable[[Event], None], syscalls: object = None) -> FakeHost:
        return self

    def cancel(self) -> None:
        pass

    def add_guard(self, guard: Guard) -> None:
        pass

    def publish(self, event: Event) -> None:
        self.published.append(event)

    def remove_guard(self, guard: Guard) -> None:
        pass

    def kill(self, pid: int, signal: Signal | str = Signal.SIGTERM, origin: str = "") -> str:
        self.signals.append((pid, str(signal), origin))
        return "pausing 1 process(es)"

    def resume(self, pid: int, origin: str = "user") -> str:
        return "resuming"

    def info(self, pid: int) -> ProcessInfo:
        return ProcessInfo(pid, "u", 0, "t", "i", ProcessState.SUSPENDED, 0, (), 0.0,
                           children=(pid + 1,))  # fmt: skip

    def ps(self) -> list[ProcessInfo]:
        return [self.info(7)]


def test_an_enforced_anomaly_pauses_the_subtree_with_origin_immune(tmp_path: Path) -> None:
    store = Store(tmp_path / "rnix.db")
    host = FakeHost()
    immune = attach_immune(host, ImmuneConfig(warn_only=False), store)
    try:
        assert immune._daemon is not None
        immune._daemon.tell(AnomalyDetected(7, "t", 2, (ANOMALY,), suspended=True))
        status = immune.status()  # answered after the anomaly: the inbox is in order
        assert host.signals == [(7, "SIGPAUSE", "immune")]
        assert status.suspended == ()  # the fake's state has no immune reason: not counted
        assert [a.pid for a in status.alerts] == [7]
        assert [(e.syscall, e.pid, e.args["verdict"]) for e in host.published] == [
            ("AnomalyAlert", 7, "suspended")
        ]
    finally:
        immune.stop()
        store.close()
