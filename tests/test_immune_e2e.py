"""The immune system end to end: real agent processes (python driver), real daemon and store.

Every run learns or is judged through the guard in the agent's thread and the daemon actor;
nothing is mocked. Synchronisation: `System.wait`, then `sync_events` (every event reached
the subscribers) and a status query (the daemon handles its inbox in order).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from helpers import Collector, agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, ProcessInfo, ProcessState, System, SystemStopped
from rnix_actors.immune import Immune, ImmuneConfig, ImmuneStatus

Script = Sequence[LLMResponse | str]


def shells(n: int) -> LLMResponse:
    return respond(*[call("shell", command=f"echo {i}") for i in range(n)])


def normal_run(shell_calls: int = 1) -> list[LLMResponse | str]:
    first = respond(call("list_files"), *[call("shell", command="true")] * shell_calls)
    return [first, respond(call("read_file", path="README.md")), "done"]


class Lab:
    """A system with the immune system attached and one template, ``worker``.

    Each run's script is chosen by its intent (the first message the model sees).
    """

    def __init__(self, system: System, immune: Immune) -> None:
        self.system = system
        self.immune = immune
        self.scripts: dict[str, Script] = {}
        self.default: Script = normal_run()
        self.events = Collector()
        system.subscribe(self.events)
        agent(system, "worker", self._brain)

    def _brain(self, request: LLMRequest) -> LLMResponse | str:
        steps = self.scripts.get(request.messages[0].content, self.default)
        return steps[min(request.step, len(steps)) - 1]

    def run(self, script: Script | None = None) -> ProcessInfo:
        """Spawn ``worker`` with ``script`` (the default normal one if None) and wait."""
        intent = f"script {len(self.scripts)}"
        if script is not None:
            self.scripts[intent] = script
        return self.settle(self.system.spawn("worker", intent))

    def settle(self, pid: int) -> ProcessInfo:
        info = self.system.wait(pid, timeout=10)
        self.system.sync_events()
        return info

    def train(self, runs: int = 5) -> None:
        for _ in range(runs):
            assert self.run().exit_code == 0
        assert self.status().profiles[0].runs == runs

    def status(self) -> ImmuneStatus:
        self.system.sync_events()
        return self.immune.status()

    def executed(self, pid: int, syscall: str) -> int:
        return len(self.events.of(pid, syscall))


@pytest.fixture(params=["warn-only", "enforce"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def make_lab(system: System, **config: Any) -> Iterator[Lab]:
    immune = system.set_immune(ImmuneConfig(**config))
    try:
        yield Lab(system, immune)
    finally:
        immune.stop()


@pytest.fixture
def warn_lab(system: System) -> Iterator[Lab]:
    with make_lab(system, warn_only=True) as lab:
        yield lab


@pytest.fixture
def enforce_lab(system: System) -> Iterator[Lab]:
    with make_lab(system, warn_only=False) as lab:
        yield lab


BURST = [normal_run()[0], shells(8), respond(call("read_file", path="README.md")), "done"]


def test_enforce_suspends_a_shell_burst_before_its_next_step(enforce_lab: Lab) -> None:
    lab = enforce_lab
    lab.train()
    info = lab.run(BURST)
    assert info.state is ProcessState.SUSPENDED and info.exit_code == 2
    assert info.exit_reason.endswith("(by immune)") and "/dev/shell" in info.exit_reason
    assert lab.executed(info.pid, "Exec") < 1 + 8  # the burst was cut short
    assert lab.executed(info.pid, "Blocked") == 1
    assert [e.step for e in lab.events.of(info.pid, "ReasonStep")] == [1, 2]  # no step 3
    status = lab.status()
    assert status.suspended == (info.pid,) and status.monitoring == (info.pid,)
    assert {a.pid for a in status.alerts} == {info.pid}
    assert all(a.suspended for a in status.alerts)
    assert "  Suspended: 1 process\n" in status.text()
    # kill works on a suspended process, and it is no longer monitored or suspended.
    lab.system.kill(info.pid, "SIGKILL")
    assert lab.settle(info.pid).exit_code == 1
    after = lab.status()
    assert (after.monitoring, after.suspended) == ((), ())
    assert after.profiles[0].runs == 5  # the attack did not enter the baseline


def test_warn_only_lets_the_burst_finish_with_an_alert(warn_lab: Lab) -> None:
    lab = warn_lab
    lab.train()
    info = lab.run(BURST)
    assert (info.state, info.exit_code) == (ProcessState.DEAD, 0)
    assert lab.executed(info.pid, "Exec") == 1 + 8
    assert lab.executed(info.pid, "Blocked") == 0
    status = lab.status()
    lines = [a.line() for a in status.alerts]
    assert f"PID {info.pid}: unusual /dev/shell volume (5/run, baseline: 1)" in lines
    assert any(line.startswith(f"PID {info.pid}: unusual /dev/shell frequency (") for line in lines)
    assert all(a.p is not None and a.p < 0.0228 for a in status.alerts if a.family != "run.share")
    assert not any(a.suspended for a in status.alerts)
    assert status.suspended == ()
    assert [t.name for t in status.threats] == ["shell-injection-pattern"]
    assert status.profiles[0].runs == 5  # held out of the baseline


def test_a_known_pattern_is_recognised_at_once(mode: str, system: System) -> None:
    with make_lab(system, warn_only=mode == "warn-only") as lab:
        # Normal runs use the shell once or twice per step.
        for i in range(6):
            assert lab.run(normal_run(1 + i % 2)).exit_code == 0
        burst = [normal_run()[0], shells(8), "done"]
        first = lab.run(burst)
        if mode == "enforce":
            assert first.state is ProcessState.SUSPENDED
            lab.system.kill(first.pid, "SIGKILL")
            lab.settle(first.pid)
        second = lab.run(burst)
        alerts = [a for a in lab.status().alerts if a.pid == second.pid]
        assert alerts and alerts[0].known and alerts[0].threat == "shell-injection-pattern"
        if mode == "enforce":
            assert second.state is ProcessState.SUSPENDED
            assert "known threat shell-injection-pattern" in second.exit_reason
            # stopped no later than the first time
            assert lab.executed(second.pid, "Exec") <= lab.executed(first.pid, "Exec") < 1 + 8
            lab.system.kill(second.pid, "SIGKILL")
            lab.settle(second.pid)
        else:
            assert second.exit_code == 0 and lab.executed(second.pid, "Exec") == 1 + 8
        assert lab.status().threats[0].hits >= 2


def test_a_never_used_device_is_refused_then_resume_clears_and_learns(enforce_lab: Lab) -> None:
    lab = enforce_lab
    lab.default = [respond(call("list_files")), "done"]  # the fs only, never the shell
    lab.train()
    info = lab.run([respond(call("shell", command="touch pwned")), "done"])
    assert info.state is ProcessState.SUSPENDED
    assert "access to unusual device /dev/shell" in info.exit_reason
    assert not (lab.system.project_dir / "pwned").exists()  # blocked before it ran
    (alert,) = lab.status().alerts
    assert alert.threat == "unexpected-shell-call" and alert.severity == "high"
    assert lab.immune.resume(info.pid) == "resuming 1 process(es)"
    final = lab.settle(info.pid)
    assert (final.exit_code, final.result) == (0, "done")
    status = lab.status()
    assert status.alerts == () and status.suspended == ()
    assert status.profiles[0].runs == 6  # cleared by the user: it taught the baseline
    assert lab.run([respond(call("shell", command="true")), "done"]).exit_code == 0


def test_a_cleared_finished_run_enters_the_baseline(warn_lab: Lab) -> None:
    lab = warn_lab
    lab.train()
    info = lab.run(BURST)
    assert lab.status().profiles[0].runs == 5
    assert lab.immune.clear(info.pid) >= 1
    status = lab.status()
    assert status.profiles[0].runs == 6 and status.alerts == ()
    assert lab.immune.clear(info.pid) == 0  # nothing left; not learned twice
    assert lab.status().profiles[0].runs == 6


def test_token_drain_is_suspended_before_any_tool_call_of_the_step(enforce_lab: Lab) -> None:
    lab = enforce_lab
    lab.train()
    drain = [normal_run()[0], respond(call("list_files"), tokens=50_000), "done"]
    info = lab.run(drain)
    assert info.state is ProcessState.SUSPENDED
    assert "token consumption spike (50000 tokens/step" in info.exit_reason
    assert lab.executed(info.pid, "Open") == 1  # only step 1's
    assert {a.threat for a in lab.status().alerts} == {"excessive-token-drain"}
    lab.system.kill(info.pid, "SIGKILL")
    lab.settle(info.pid)


def test_status_text_has_the_design_shape(warn_lab: Lab) -> None:
    lab = warn_lab
    lab.train()
    info = lab.run([normal_run()[0], respond(call("read_file", path="README.md")), "done"])
    assert info.exit_code == 0
    quiet = lab.status()
    assert quiet.sandbox is not None  # its lines: tests/test_immune_sandbox.py
    assert quiet.text().splitlines() == [
        "Mode: warn-only",
        "  Monitoring: 0 processes",
        "  Alerts: 0 active",
        "  Suspended: 0 processes",
        "  Threat memory: 0 entries",
        *quiet.sandbox.lines(),
    ]
    attack = lab.run(BURST)
    status = lab.status()
    text = status.text().splitlines()
    assert text[0] == "Mode: warn-only"
    assert text[2] == f"  Alerts: {len(status.alerts)} active"
    assert text[3].startswith(f"    PID {attack.pid}: unusual /dev/shell ")
    memory = text.index("  Threat memory: 1 entry")
    detected = status.threats[0].detected
    assert text[memory + 1] == f"    #1: shell-injection-pattern (detected {detected})"
    assert text[memory + 2].startswith("  Shell sandbox: ")
    data = status.to_json()
    assert data["mode"] == "warn-only" and data["suspended"] == 0
    assert [a["pid"] for a in data["alerts"]] == [attack.pid] * len(status.alerts)
    assert data["threat_memory"][0]["name"] == "shell-injection-pattern"


def test_disabled_installs_nothing_and_reports_empty(project: Path) -> None:
    with System(project, immune=ImmuneConfig(enabled=False, warn_only=False)) as system:
        immune = system.immune
        lab = Lab(system, immune)
        for _ in range(6):
            lab.run()
        info = lab.run(BURST)
        assert info.exit_code == 0 and lab.executed(info.pid, "Blocked") == 0
        status = immune.status()
        assert attrs.evolve(status, sandbox=None) == ImmuneStatus.disabled()
        assert status.sandbox is not None  # the shell sandbox is shown whatever the mode
        assert immune.status_text().splitlines()[:2] == [
            "Mode: disabled",
            "  Monitoring: 0 processes",
        ]
    conn = sqlite3.connect(project / ".rnix" / "rnix.db")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert not any(t.startswith("immune_") for t in tables)


def test_stop_makes_the_guard_inert(system: System) -> None:
    with make_lab(system, warn_only=False) as lab:
        lab.train()
        lab.immune.stop()
        info = lab.run(BURST)
        assert info.exit_code == 0 and lab.executed(info.pid, "Blocked") == 0
        with pytest.raises(SystemStopped, match="stopped"):
            lab.immune.status()
