"""Bounds on process trees, attacked with the bombs they exist for (real actors and threads)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import attrs
import pytest
from helpers import agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, ProcessState, System
from rnix_actors.config import load_config
from rnix_actors.errors import SpawnError
from rnix_actors.kernel.treebounds import TreeBounds, TreeLimits
from rnix_actors.templates import Limits


def test_a_fan_out_agent_stops_at_max_descendants(system: System) -> None:
    def fan_out(request: LLMRequest) -> LLMResponse | str:
        if request.step > 20:
            return "done"
        return respond(*[call("spawn", agent="leaf", intent=f"job {i}") for i in range(50)])

    agent(system, "fan", fan_out, devices=("/dev/fs",), max_descendants=30, max_steps=30)
    agent(system, "leaf", lambda r: "ok", devices=("/dev/fs",))
    info = system.wait(system.spawn("fan", "fan out"), 60)
    children = [p for p in system.ps(all=True) if p.ppid == info.pid]
    assert len(children) == 30
    assert info.exit_reason == (
        "circuit_breaker: 3 consecutive errors with fingerprint INTERNAL|spawn"
    )
    system.sync_events()
    events = [json.loads(line) for line in system.events_file(info.pid).read_text().splitlines()]
    refusals = [e["error"] for e in events if e["syscall"] == "Spawn" and e.get("error")]
    assert len(refusals) == 3  # the breaker counts each as INTERNAL|spawn and trips at 3
    assert "already has 30 descendants (limits.max_descendants 30" in refusals[0]


def bomber(fanout: int, interleave: bool):  # type: ignore[no-untyped-def]
    """Each step spawns ``fanout`` copies of itself (with a successful call between spawns
    when ``interleave``), for 3 steps."""

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step > 3:
            return "done"
        calls = []
        for i in range(fanout):
            calls.append(call("spawn", agent="bomb", intent=f"copy {i}"))
            if interleave:
                calls.append(call("list_files"))
        return respond(*calls)

    return brain


@pytest.mark.parametrize("interleave", [False, True], ids=["tree-bomb", "interleaved-bomb"])
def test_a_spawn_bomb_stops_at_its_bounds_and_the_root_ends(
    system: System, interleave: bool
) -> None:
    agent(system, "bomb", bomber(10, interleave), devices=("/dev/fs",), max_steps=10)
    root = system.wait(system.spawn("bomb", "explode"), 120)
    assert root.state in (ProcessState.DEAD, ProcessState.SUSPENDED)
    everything = system.ps(all=True)
    assert len(everything) <= 1 + Limits().max_descendants
    assert all(p.state is ProcessState.DEAD for p in everything)
    assert system.ps() == []


def test_the_tree_breaker_trips_on_interleaved_failures() -> None:
    now = [0.0]
    bounds = TreeBounds(TreeLimits(spawn_failures=4, spawn_window=10.0), clock=lambda: now[0])
    bounds.started(1, 0, False, Limits())
    pid = 2
    for _ in range(4):  # a success between failures: the consecutive count would never trip
        bounds.admit(1, True)
        bounds.started(pid, 1, True, Limits())
        bounds.exited(pid, failed_agent_spawn=False)
        pid += 1
        bounds.admit(1, True)
        bounds.started(pid, 1, True, Limits())
        bounds.exited(pid, failed_agent_spawn=True)
        pid += 1
        now[0] += 1.0
    with pytest.raises(SpawnError, match="circuit breaker of the process tree of PID 1: 4 spawn"):
        bounds.admit(1, True)
    now[0] += 10.0  # the window slides past every failure
    bounds.admit(1, True)


def test_the_spawn_rate_bound_slides_with_its_window() -> None:
    now = [0.0]
    bounds = TreeBounds(TreeLimits(spawn_rate=5, spawn_window=10.0), clock=lambda: now[0])
    bounds.started(1, 0, False, Limits())
    for pid in range(2, 7):
        bounds.admit(1, True)
        bounds.started(pid, 1, True, Limits())
        bounds.exited(pid, failed_agent_spawn=False)
    with pytest.raises(SpawnError, match=r"spawned 5 processes within 10s \(kernel.spawn_rate 5"):
        bounds.admit(1, True)
    now[0] = 10.5
    bounds.admit(1, True)
    bounds.admit(0, False)  # a new tree is not limited by another tree's rate


def test_max_processes_bounds_the_whole_system(project: Path) -> None:
    config = load_config(None)
    config = attrs.evolve(config, kernel=attrs.evolve(config.kernel, max_processes=3))
    release = threading.Event()

    def blocked(request: LLMRequest) -> str:
        release.wait(30)
        return "done"

    with System(project, config=config) as system:
        agent(system, "blocked", blocked, devices=("/dev/fs",))
        pids = [system.spawn("blocked", f"w{i}") for i in range(3)]
        with pytest.raises(SpawnError, match=r"already runs 3 processes \(kernel.max_processes 3"):
            system.spawn("blocked", "one too many")
        release.set()
        for pid in pids:
            assert system.wait(pid, 30).exit_code == 0
        assert system.wait(system.spawn("blocked", "now there is room"), 30).exit_code == 0


def test_an_overspending_tree_suspends_its_root_with_budget_exhausted(system: System) -> None:
    def root(request: LLMRequest) -> LLMResponse | str:
        return respond(call("spawn", agent="spender", intent="spend"), tokens=10)

    agent(system, "root", root, devices=("/dev/fs",), max_tree_tokens=200, max_steps=1000)
    agent(
        system,
        "spender",
        lambda r: respond(call("list_files"), tokens=40),
        devices=("/dev/fs",),
        max_steps=1000,
    )
    pid = system.spawn("root", "spend it all")
    info = system.wait(pid, 30)
    assert info.state is ProcessState.SUSPENDED and info.exit_code == 2
    assert info.exit_reason.startswith(f"budget_exhausted: the process tree of PID {pid} spent ")
    assert "of max_tree_tokens 200" in info.exit_reason
    spent = sum(p.tokens_used for p in system.ps(all=True))
    assert spent < 200 + 2 * 40  # stopped at the bound, not long after
    for child in system.ps():  # SIGPAUSE reaches the subtree before its next step
        assert system.wait(child.pid, 10).state is ProcessState.SUSPENDED
    system.kill(pid, "SIGKILL")
