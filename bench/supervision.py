"""Supervisor crash-to-replacement latency against a minimal raw-Pykka restart loop.

    .venv/bin/python bench/supervision.py [--quick]

Measured in one run, each case beside its raw twin:
- one_for_one, 1 child: time from the crash (SIGKILL) to the replacement's first reasoning
  step; raw: from the crash message to the new child actor's on_start.
- one_for_all, 10 children: time from one child's crash until all 10 replacements run.
- a restart storm: 200 children under one_for_one crash at once (their model calls fail);
  time until all 200 replacements run; raw: 200 raw children crash at once.
Prints p50/p99 and the ratio of p50s (target: within 3x of the raw loop).
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pykka

from rnix_actors import (
    AgentTemplate,
    ChildSpec,
    Limits,
    LLMRequest,
    LLMResponse,
    Restart,
    Strategy,
    SupervisorSpec,
    System,
    ToolCall,
)

TIMEOUT = 30.0
TARGET = 3.0
STORM = 200


# -- the raw Pykka restart loop -------------------------------------------------------------------
class RawChild(pykka.ThreadingActor):
    def __init__(self, sup: pykka.ActorRef[Any], index: int) -> None:
        super().__init__()
        self.sup = sup
        self.index = index

    def on_start(self) -> None:
        self.sup.tell(("running", self.index, time.perf_counter()))

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash")
        return None

    def on_failure(self, *exc: object) -> None:
        self.sup.tell(("died", self.index))


class RawSupervisor(pykka.ThreadingActor):
    """one_for_one or one_for_all over ``size`` children, restarting without limits."""

    def __init__(self, size: int, all_for_one: bool, out: queue.Queue[tuple[int, float]]) -> None:
        super().__init__()
        self.size = size
        self.all = all_for_one
        self.out = out
        self.children: dict[int, pykka.ActorRef[RawChild]] = {}

    def on_start(self) -> None:
        for i in range(self.size):
            self.children[i] = RawChild.start(self.actor_ref, i)

    def on_receive(self, message: Any) -> Any:
        if message[0] == "running":
            self.out.put((message[1], message[2]))
        elif message[0] == "died":
            dead = message[1]
            restart = range(self.size) if self.all else [dead]
            if self.all:
                for i in reversed(range(self.size)):
                    if i != dead:
                        self.children[i].stop()
            for i in restart:
                self.children[i] = RawChild.start(self.actor_ref, i)
        elif message[0] == "crash":
            self.children[message[1]].tell("crash")
        return None

    def on_stop(self) -> None:
        for child in self.children.values():
            if child.is_alive():
                child.stop()


def raw_latencies(size: int, all_for_one: bool, rounds: int) -> list[float]:
    out: queue.Queue[tuple[int, float]] = queue.Queue()
    sup = RawSupervisor.start(size, all_for_one, out)
    for _ in range(size):
        out.get(timeout=TIMEOUT)
    latencies = []
    for r in range(rounds):
        started = time.perf_counter()
        sup.tell(("crash", r % size))
        last = max(out.get(timeout=TIMEOUT)[1] for _ in range(size if all_for_one else 1))
        latencies.append(last - started)
    sup.stop()
    return latencies


# -- rnix supervisors ----------------------------------------------------------------------------
def rnix_latencies(
    root: Path, size: int, strategy: Strategy, rounds: int, shutdown: float = 5.0
) -> list[float]:
    running: queue.Queue[tuple[int, float]] = queue.Queue()
    stop = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse:
        if request.step == 1:
            running.put((request.pid, time.perf_counter()))
        stop.wait(0.005)  # a working agent: one cheap step every few ms
        return LLMResponse(tool_calls=(ToolCall("l", "list_files", {}),))

    with System(root, state_dir=root / ".rnix") as system:
        system.register_llm("bench-brain", brain)
        system.add_template(
            AgentTemplate(
                "worker",
                devices=("/dev/fs",),
                driver="bench-brain",
                limits=Limits(max_steps=0, context_slots=1_000_000),
            )
        )
        children = tuple(
            ChildSpec(
                f"w{i}",
                agent="worker",
                intent="work",
                restart=Restart.PERMANENT,
                shutdown=shutdown,
            )
            for i in range(size)
        )
        spec = SupervisorSpec("bench", strategy, children, max_restarts=rounds * 2, max_window=1e9)
        handle = system.supervise(spec)
        pids = dict(enumerate(running.get(timeout=TIMEOUT)[0] for _ in range(size)))
        latencies = []
        for r in range(rounds):
            victim = sorted(pids.values())[r % size]
            started = time.perf_counter()
            system.kill(victim, "SIGKILL", origin="bench")
            fresh = [running.get(timeout=TIMEOUT) for _ in range(size if size > 1 else 1)]
            latencies.append(max(t for _, t in fresh) - started)
            if strategy is Strategy.ONE_FOR_ALL:
                pids = dict(enumerate(pid for pid, _ in fresh))
            else:
                pids = {k: v for k, v in pids.items() if v != victim}
                pids[len(pids)] = fresh[0][0]
        stop.set()
        handle.stop(kill=True)
    return latencies


# -- the restart storm ----------------------------------------------------------------------------
def raw_storm(size: int, rounds: int) -> list[float]:
    out: queue.Queue[tuple[int, float]] = queue.Queue()
    sup = RawSupervisor.start(size, False, out)
    for _ in range(size):
        out.get(timeout=TIMEOUT)
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(size):
            sup.tell(("crash", i))
        last = max(out.get(timeout=TIMEOUT)[1] for _ in range(size))
        latencies.append(last - started)
    sup.stop()
    return latencies


def rnix_storm(root: Path, size: int, rounds: int) -> list[float]:
    """Every child's model call fails at the same moment (a provider outage); one_for_one
    restarts each. From that moment to the last replacement's first step. Between storms
    the agents wait inside a model call, so the bus is not flooded with idle steps."""
    running: queue.Queue[tuple[int, float]] = queue.Queue()
    stop = threading.Event()
    outages = [threading.Event() for _ in range(rounds + 2)]
    lock = threading.Lock()
    born: dict[int, int] = {}
    current = [0]  # the storm the next incarnations are born after

    def brain(request: LLMRequest) -> LLMResponse:
        with lock:
            if request.step == 1:
                born[request.pid] = current[0]
            outage = outages[born.get(request.pid, 0) + 1]
        if request.step == 1:
            running.put((request.pid, time.perf_counter()))
        outage.wait(TIMEOUT)
        if outage.is_set() and not stop.is_set():
            raise RuntimeError("provider outage")
        return LLMResponse(tool_calls=(ToolCall("l", "list_files", {}),))

    with System(root, state_dir=root / ".rnix") as system:
        system.register_llm("storm-brain", brain)
        system.add_template(
            AgentTemplate(
                "stormer",
                devices=("/dev/fs",),
                driver="storm-brain",
                limits=Limits(max_steps=0, context_slots=1_000_000),
            )
        )
        children = tuple(
            ChildSpec(f"s{i}", agent="stormer", intent="work", restart=Restart.PERMANENT)
            for i in range(size)
        )
        budget = size * (rounds + 1)
        spec = SupervisorSpec("storm", Strategy.ONE_FOR_ONE, children, budget, max_window=1e9)
        handle = system.supervise(spec)
        for _ in range(size):
            running.get(timeout=TIMEOUT)
        latencies = []
        for r in range(1, rounds + 1):
            with lock:
                current[0] = r
            started = time.perf_counter()
            outages[r].set()
            last = max(running.get(timeout=TIMEOUT)[1] for _ in range(size))
            latencies.append(last - started)
        stop.set()
        for outage in outages:
            outage.set()
        handle.stop(kill=True)
    return latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def report(name: str, ours: list[float], raw: list[float]) -> float:
    ratio = statistics.median(ours) / statistics.median(raw)
    print(
        f"{name:<26} rnix p50 {pct(ours, 0.5) * 1e3:7.2f} ms  p99 {pct(ours, 0.99) * 1e3:7.2f} ms"
        f"   raw p50 {pct(raw, 0.5) * 1e3:6.2f} ms  p99 {pct(raw, 0.99) * 1e3:6.2f} ms"
        f"   p50 ratio {ratio:4.1f}x  {'PASS' if ratio <= TARGET else 'ABOVE TARGET'}"
    )
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="supervisor restart latency")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    rounds = 30 if args.quick else 200
    print(f"supervision benchmark: {rounds} crashes per case, target p50 within {TARGET}x raw")
    # shutdown 5: siblings get SIGTERM and stop at their next step boundary (the default);
    # shutdown 0: OTP's brutal_kill, SIGKILL at once.
    cases: list[tuple[str, int, Strategy, float]] = [
        ("one_for_one, 1 child", 1, Strategy.ONE_FOR_ONE, 5.0),
        ("one_for_all, 10 children", 10, Strategy.ONE_FOR_ALL, 5.0),
        ("one_for_all, brutal_kill", 10, Strategy.ONE_FOR_ALL, 0.0),
    ]
    run: Callable[[Path, int, Strategy, int, float], list[float]] = rnix_latencies
    storms = 5 if args.quick else 20
    with tempfile.TemporaryDirectory(prefix="rnix-bench-sup-") as tmp:
        for i, (name, size, strategy, shutdown) in enumerate(cases):
            raw = raw_latencies(size, strategy is Strategy.ONE_FOR_ALL, rounds)
            project = Path(tmp) / f"case{i}"
            project.mkdir()
            ours = run(project, size, strategy, rounds, shutdown)
            report(name, ours, raw)
        raw = raw_storm(STORM, storms)
        project = Path(tmp) / "storm"
        project.mkdir()
        report(f"storm, {STORM} at once ({storms}x)", rnix_storm(project, STORM, storms), raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
