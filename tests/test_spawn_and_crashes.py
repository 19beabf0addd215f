"""Spawn safety end to end, crash paths of the base actor, and no leaked threads."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import pykka
import pytest
from helpers import agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, ProcessState, System
from rnix_actors.kernel.base import ActorCrashed, Fatal, RnixActor
from rnix_actors.kernel.safety import depth_rejection


def test_a_runaway_spawn_chain_stops_at_depth_8_and_unwinds(system: System) -> None:
    rejections: list[str] = []

    def diver(request: LLMRequest) -> LLMResponse | str:
        last = request.messages[-1]
        if last.role == "tool" and last.content.startswith("spawn rejected"):
            rejections.append(last.content)
        return respond(call("spawn", agent="diver", intent="go deeper"))

    agent(system, "diver", diver, devices=("/dev/fs",))
    root = system.spawn("diver", "dive")
    info = system.wait(root, 30)
    procs = sorted(system.ps(all=True), key=lambda p: p.depth)
    assert [p.depth for p in procs] == list(range(9))
    assert all(p.state is ProcessState.DEAD and p.exit_code == 1 for p in procs)
    deepest = procs[-1]
    assert deepest.exit_reason == (
        "circuit_breaker: 3 consecutive errors with fingerprint INTERNAL|spawn"
    )
    assert rejections == [depth_rejection(8)] * 2  # the 3rd tripped the breaker
    assert info.exit_reason == (
        f"circuit_breaker: runaway spawn chain (child PID {procs[1].pid} tripped on INTERNAL|spawn)"
    )
    for parent, child in itertools.pairwise(procs):
        assert child.ppid == parent.pid
        assert set(child.allowed_devices) <= set(parent.allowed_devices)


def test_an_agent_spawn_never_gains_devices(system: System) -> None:
    results: list[str] = []

    def narrow_parent(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(call("spawn", agent="shelly", intent="run id"))
        results.append(request.messages[-1].content)
        return "done"

    agent(system, "fs-parent", narrow_parent, devices=("/dev/fs",))
    agent(system, "shelly", lambda r: "unused", devices=("/dev/shell",))
    info = system.run("fs-parent", "x", timeout=10)
    assert "would hold no devices" in results[0]
    assert info.exit_code == 0
    assert len(system.ps(all=True)) == 1  # the child was never started


def test_child_inherits_the_intersection(system: System) -> None:
    agent(
        system,
        "parent",
        lambda r: respond(call("spawn", agent="child", intent="x")) if r.step == 1 else "done",
        devices=("/dev/fs/docs", "/dev/shell"),
    )
    agent(system, "child", lambda r: "child done", devices=("/dev/fs", "/proc"))
    system.run("parent", "x", timeout=10)
    child = next(p for p in system.ps(all=True) if p.template == "child")
    assert child.allowed_devices == ("/dev/fs/docs",)
    assert child.depth == 1


def test_system_exit_in_an_agent_is_contained(system: System) -> None:
    def fatal(device_call: object) -> str:
        raise SystemExit(3)

    system.register_device("/dev/exit", fatal)
    agent(
        system,
        "bad",
        lambda r: respond(call("call_device", device="/dev/exit")),
        devices=("/dev/exit",),
    )
    info = system.run("bad", "x", timeout=10)
    assert info.exit_code == 1 and "SystemExit" in info.exit_reason
    agent(system, "good", lambda r: "still alive")
    assert system.run("good", "x", timeout=10).result == "still alive"


class Probe(RnixActor):
    def __init__(self, reports: list[tuple[str, str]], fail_start: bool = False) -> None:
        super().__init__()
        self.reports = reports
        self.fail_start = fail_start

    def started(self) -> None:
        if self.fail_start:
            raise KeyboardInterrupt("in on_start")

    def handle(self, message: Any) -> Any:
        if message == "exit":
            raise SystemExit(1)
        if message == "fatal":
            raise Fatal("give up")
        if message == "boom":
            raise ValueError("boom")
        return message

    def crashed(self, where: str, exc: BaseException) -> None:
        self.reports.append((where, type(exc).__name__))


def test_base_actor_turns_every_failure_into_one_report() -> None:
    reports: list[tuple[str, str]] = []
    bystander = Probe.start(reports)

    on_start = Probe.start(reports, fail_start=True)
    on_start.actor_stopped.wait(5)
    assert ("on_start", "KeyboardInterrupt") in reports

    asker = Probe.start(reports)
    with pytest.raises(ActorCrashed, match="SystemExit"):
        asker.ask("exit", timeout=5)
    assert asker.ask("still here", timeout=5) == "still here"  # an ask failure is not fatal

    with pytest.raises(Fatal):
        asker.ask("fatal", timeout=5)
    asker.actor_stopped.wait(5)
    assert ("ask", "Fatal") in reports

    teller = Probe.start(reports)
    teller.tell("exit")
    teller.actor_stopped.wait(5)
    assert ("tell", "ActorCrashed") in reports
    assert bystander.ask("ping", timeout=5) == "ping"  # SystemExit did not stop everyone
    bystander.stop()


def test_no_thread_is_left_behind_after_stop(project: Path) -> None:
    before = set(threading.enumerate())
    release = threading.Event()
    with System(project) as system:
        agent(system, "loop", lambda r: respond(call("list_files")), max_steps=100_000)
        agent(system, "sleeper", lambda r: respond(call("shell", command="sleep 30")))
        agent(system, "done", lambda r: "ok")
        pids = [system.spawn("loop", "x") for _ in range(5)]
        pids += [system.spawn("sleeper", "x") for _ in range(3)]
        system.run("done", "x", timeout=10)
        system.kill(pids[0], "SIGTERM")
        system.pause(pids[1])
    release.set()
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    for thread in leftover:
        thread.join(2)
    assert [t.name for t in leftover if t.is_alive()] == []
    assert pykka.ActorRegistry.get_all() == []
    for pid in pids:
        assert system.info(pid).state is ProcessState.DEAD
