"""Kernel benchmarks: raw Pykka throughput against the real kernel paths.

Run from the repository root::

    .venv/bin/python bench/kernel.py            # full run (~1-2 minutes on 2 cores)
    .venv/bin/python bench/kernel.py --quick    # smaller sizes (~20 s)

Everything is measured in one run, so the ratios compare figures taken on the same machine
under the same load. Each part starts its own `System` in a temporary directory (removed at
exit) and stops it before the next part. See ``bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pykka

from rnix_actors import (
    AgentTemplate,
    DeviceCall,
    Event,
    Limits,
    LLMRequest,
    LLMResponse,
    ProcessInfo,
    System,
    ToolCall,
)
from rnix_actors.messages.events import EventBatch

NULL_DEVICE = "/dev/null0"
EVENTS_TARGET = 0.5  # events/s delivered to a subscriber ÷ raw tell/s
LIVE_TARGET = 1_000  # processes alive at once
WAIT_TIMEOUT = 300.0  # seconds; a benchmark that hangs this long has found a bug


@dataclass(frozen=True)
class Sizes:
    tell_messages: int
    tell_rounds: int
    event_total: int  # events per configuration of part 2 (approximately)
    event_calls_per_step: int
    event_agents: tuple[int, ...]
    step_total: int  # reasoning steps per configuration of part 3
    step_agents: int
    spawn_processes: int
    live_processes: int


FULL = Sizes(
    tell_messages=300_000,
    tell_rounds=5,
    event_total=150_000,
    event_calls_per_step=200,
    event_agents=(1, 4),
    step_total=4_000,
    step_agents=8,
    spawn_processes=1_000,
    live_processes=1_000,
)
QUICK = Sizes(
    tell_messages=100_000,
    tell_rounds=3,
    event_total=30_000,
    event_calls_per_step=100,
    event_agents=(1, 4),
    step_total=800,
    step_agents=4,
    spawn_processes=200,
    live_processes=1_000,
)


# -- helpers -------------------------------------------------------------------------------------
def proc_status(key: str) -> int:
    """An integer field of /proc/self/status (``VmRSS`` in KiB, ``Threads``)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key} field")


@dataclass(frozen=True)
class Cpu:
    """Process CPU time (every thread), split into user and system seconds."""

    user: float
    system: float

    @staticmethod
    def now() -> Cpu:
        times = os.times()
        return Cpu(times.user, times.system)

    def since(self, start: Cpu) -> Cpu:
        return Cpu(self.user - start.user, self.system - start.system)

    @property
    def total(self) -> float:
        return self.user + self.system

    def per(self, n: int) -> str:
        """``"12.3 us CPU (sys 20%)"`` per unit of work."""
        share = self.system / self.total * 100 if self.total else 0.0
        return f"{self.total / n * 1e6:,.1f} us CPU (sys {share:.0f}%)"


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


@contextmanager
def running_system(root: Path, name: str) -> Iterator[System]:
    """A started `System` in ``root/name`` (default config: events.jsonl logging is on)."""
    base = root / name
    project = base / "project"
    project.mkdir(parents=True)
    system = System(project, state_dir=base / "state")
    system.register_device(NULL_DEVICE, _null_device, "benchmark no-op device", blocking=False)
    system.start()
    try:
        yield system
    finally:
        system.stop()


def _null_device(call: DeviceCall) -> str:
    return ""


Brain = Callable[[LLMRequest], LLMResponse | str]


def add_agent(system: System, name: str, brain: Brain, max_steps: int) -> AgentTemplate:
    """A python-driver template that may only use the no-op device.

    The context-slot limit is lifted because these agents run thousands of tool calls.
    """
    system.register_llm(f"brain-{name}", brain)
    template = AgentTemplate(
        name=name,
        devices=(NULL_DEVICE,),
        driver=f"brain-{name}",
        limits=Limits(max_steps=max_steps, context_slots=10**9),
    )
    system.add_template(template)
    return template


def busy_brain(calls_per_step: int, steps: int) -> Brain:
    """Zero latency: ``calls_per_step`` no-op device calls for ``steps`` steps, then a final
    answer (so a process runs ``steps + 1`` reasoning steps)."""
    calls = tuple(
        ToolCall(f"c{i}", "call_device", {"device": NULL_DEVICE}) for i in range(calls_per_step)
    )
    work = LLMResponse(tool_calls=calls)

    def brain(request: LLMRequest) -> LLMResponse | str:
        return work if request.step <= steps else "done"

    return brain


class ExitCounter:
    """Subscriber: counts every event and notes when the expected number of exits arrived.

    An agent's own events reach the bus before it tells the kernel it exited, and the kernel
    publishes ``Exit`` after that, so the last ``Exit`` is the last event of the run.
    """

    def __init__(self, expected_exits: int) -> None:
        self.expected = expected_exits
        self.events = 0
        self.exits = 0
        self.last = 0.0
        self.done = threading.Event()

    def __call__(self, event: Event) -> None:
        self.events += 1
        if event.syscall == "Exit":
            self.exits += 1
            if self.exits >= self.expected:
                self.last = time.perf_counter()
                self.done.set()

    def wait(self) -> None:
        if not self.done.wait(WAIT_TIMEOUT):
            raise RuntimeError(f"only {self.exits}/{self.expected} exits in {WAIT_TIMEOUT}s")


def wait_all(system: System, pids: Sequence[int]) -> list[ProcessInfo]:
    infos = [system.wait(pid, timeout=WAIT_TIMEOUT) for pid in pids]
    failed = [i for i in infos if i.exit_code != 0]
    if failed:
        first = failed[0]
        raise RuntimeError(f"{len(failed)} process(es) failed, e.g. PID {first.pid}: {first}")
    return infos


def events_log_bytes(system: System) -> int:
    proc = system.state_dir / "proc"
    return sum(p.stat().st_size for p in proc.glob("*/events.jsonl"))


# -- 1. raw Pykka tell ---------------------------------------------------------------------------
class CountingActor(pykka.ThreadingActor):
    def __init__(self, target: int, done: threading.Event) -> None:
        super().__init__()
        self.target = target
        self.count = 0
        self.done = done

    def on_receive(self, message: Any) -> None:
        self.count += 1
        if self.count == self.target:
            self.done.set()


def raw_tell_once(n: int) -> tuple[float, Cpu]:
    done = threading.Event()
    ref = CountingActor.start(n, done)
    message = ("tick", 1)

    def produce() -> None:
        tell = ref.tell
        for _ in range(n):
            tell(message)

    producer = threading.Thread(target=produce, name="bench-producer")
    started, cpu = time.perf_counter(), Cpu.now()
    producer.start()
    if not done.wait(WAIT_TIMEOUT):
        raise RuntimeError("counting actor did not receive every message")
    elapsed = time.perf_counter() - started
    used = Cpu.now().since(cpu)
    producer.join()
    ref.stop()
    return n / elapsed, used


@dataclass(frozen=True)
class TellRun:
    rate: float
    cpu_per_message: float  # seconds


# -- 2. events delivered to a subscriber ---------------------------------------------------------
@dataclass
class EventRun:
    agents: int
    events: int
    seconds: float
    log_bytes: int
    cpu: Cpu

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def event_run(root: Path, agents: int, calls_per_step: int, total: int) -> EventRun:
    per_step = calls_per_step + 3  # llm Write + llm Read + ReasonStep + one event per call
    steps = max(1, total // (agents * per_step))
    with running_system(root, f"events-{agents}") as system:
        add_agent(system, "emitter", busy_brain(calls_per_step, steps), max_steps=steps + 1)
        counter = ExitCounter(agents)
        with system.subscribe(counter):
            started, cpu = time.perf_counter(), Cpu.now()
            pids = [system.spawn("emitter", "emit events") for _ in range(agents)]
            counter.wait()
            seconds = counter.last - started
            used = Cpu.now().since(cpu)
            wait_all(system, pids)
        # Start + steps x (3 + calls) + final step (3) + Exit, per process.
        expected = agents * (1 + steps * per_step + 3 + 1)
        if counter.events != expected:
            raise RuntimeError(f"subscriber saw {counter.events} events, expected {expected}")
        system.stop()  # flush the logs before measuring them
        return EventRun(agents, counter.events, seconds, events_log_bytes(system), used)


def bench_events(root: Path, sizes: Sizes, raw: TellRun) -> EventRun:
    runs: list[EventRun] = []
    for agents in sizes.event_agents:
        run = event_run(root, agents, sizes.event_calls_per_step, sizes.event_total)
        runs.append(run)
        print(
            f"[2b] syscall events end to end, {agents} agent(s), {sizes.event_calls_per_step} "
            f"no-op calls/step: {run.events:,} events in {run.seconds:.2f} s = "
            f"{fmt(run.rate)} ev/s (ratio {run.rate / raw.rate:.2f}); "
            f"{run.cpu.per(run.events)}/event, "
            f"events.jsonl {run.log_bytes / run.events:.0f} B/event"
        )
    return max(runs, key=lambda r: r.rate)


def bus_run(root: Path, total: int) -> EventRun:
    """The event path alone: `Event` records built and sent in batches of 64, as an agent
    process does between blocking calls, through the system's real `EventBus` (events.jsonl
    logging on) to a subscriber. Each event is what one syscall publishes; the syscall's own
    work is not included (parts [2b] and [3] measure that)."""
    with running_system(root, "bus") as system:
        run = system._run  # the benchmark reaches inside on purpose: it measures the bus alone
        assert run is not None
        bus = run.bus
        done = threading.Event()
        seen = [0]

        def subscriber(event: Event) -> None:
            seen[0] += 1
            if seen[0] == total:
                done.set()

        with system.subscribe(subscriber):
            started, cpu = time.perf_counter(), Cpu.now()

            def produce() -> None:
                batch: list[Event] = []
                for i in range(total):
                    batch.append(
                        Event(
                            ts=time.time(),
                            pid=1 + (i // 64) % 4,  # a batch comes from one process
                            template="emitter",
                            step=i // 100,
                            syscall="Write",
                            device=NULL_DEVICE,
                            args={"device": NULL_DEVICE},
                            result="",
                            duration_ms=0.01,
                        )
                    )
                    if len(batch) == 64:
                        bus.tell(EventBatch(tuple(batch)))
                        batch = []
                if batch:
                    bus.tell(EventBatch(tuple(batch)))

            producer = threading.Thread(target=produce, name="bench-emitter")
            producer.start()
            if not done.wait(WAIT_TIMEOUT):
                raise RuntimeError(f"subscriber saw {seen[0]}/{total} events")
            seconds = time.perf_counter() - started
            used = Cpu.now().since(cpu)
            producer.join()
        system.stop()
        return EventRun(1, total, seconds, events_log_bytes(system), used)


def bench_bus(root: Path, sizes: Sizes) -> tuple[TellRun, EventRun, float]:
    """Raw tell and the event path in alternating rounds (the same machine weather for both);
    the ratio is the median of the per-round ratios, robust to this machine's noise."""
    n = sizes.tell_messages
    tells: list[tuple[float, Cpu]] = []
    buses: list[EventRun] = []
    for i in range(sizes.tell_rounds):
        tells.append(raw_tell_once(n))
        buses.append(bus_run(root / f"bus{i}", n))
    ratios = sorted(b.rate / t[0] for t, b in zip(tells, buses, strict=True))
    median = ratios[len(ratios) // 2]
    rate, cpu = sorted(tells, key=lambda run: run[0])[len(tells) // 2]
    bus = sorted(buses, key=lambda r: r.rate)[len(buses) // 2]
    print(
        f"[1] raw pykka tell: {n:,} msgs x {len(tells)} rounds -> "
        + ", ".join(fmt(r) for r, _ in tells)
        + f" msg/s; median {cpu.per(n)}/msg"
    )
    print(
        "[2a] event path -> subscriber (alternating with [1]): "
        + ", ".join(fmt(r.rate) for r in buses)
        + f" ev/s; per-round ratios {', '.join(f'{x:.2f}' for x in ratios)}; "
        f"median {bus.cpu.per(bus.events)}/event, "
        f"events.jsonl {bus.log_bytes / bus.events:.0f} B/event"
    )
    return TellRun(rate, cpu.total / n), bus, median


# -- 3. agent steps/s ----------------------------------------------------------------------------
@dataclass
class StepRun:
    agents: int
    steps: int
    seconds_done: float  # first spawn -> every process reaped
    seconds_drained: float  # first spawn -> last event delivered by the bus
    cpu: Cpu

    @property
    def rate(self) -> float:
        return self.steps / self.seconds_drained


def step_run(root: Path, agents: int, total_steps: int) -> StepRun:
    steps = max(1, total_steps // agents - 1)
    with running_system(root, f"steps-{agents}") as system:
        add_agent(system, "stepper", busy_brain(3, steps), max_steps=steps + 1)
        counter = ExitCounter(agents)
        with system.subscribe(counter):
            started, cpu = time.perf_counter(), Cpu.now()
            pids = [system.spawn("stepper", "take steps") for _ in range(agents)]
            infos = wait_all(system, pids)
            done = time.perf_counter() - started
            counter.wait()
            drained = counter.last - started
            used = Cpu.now().since(cpu)
    return StepRun(agents, sum(i.steps for i in infos), done, drained, used)


def bench_steps(root: Path, sizes: Sizes) -> list[StepRun]:
    runs = []
    for agents in (1, sizes.step_agents):
        run = step_run(root, agents, sizes.step_total)
        runs.append(run)
        print(
            f"[3] agent steps, {agents} agent(s), 3 no-op calls/step: {run.steps:,} steps; "
            f"processes done in {run.seconds_done:.2f} s, bus drained in "
            f"{run.seconds_drained:.2f} s -> {fmt(run.rate)} steps/s; {run.cpu.per(run.steps)}/step"
        )
    return runs


# -- 4. spawn + complete + reap ------------------------------------------------------------------
@dataclass
class SpawnRun:
    processes: int
    spawn_seconds: float
    reaped_seconds: float  # first spawn -> every process reaped
    total_seconds: float  # first spawn -> the services did all the work the runs gave them
    threads_left: int
    cpu: Cpu

    @property
    def per_process_ms(self) -> float:
        return self.total_seconds / self.processes * 1000


def settle(system: System) -> None:
    """Return once the services have done the work the runs gave them: the bus delivered every
    event, then the immune daemon and the planner handled what it told them (each answers an
    ask only after the messages before it). Stopping the clock at the last reap instead would
    leave their backlog out of the figure."""
    system.sync_events()
    system.immune.status()
    system.migration.decisions()


def bench_spawn(root: Path, sizes: Sizes) -> SpawnRun:
    n = sizes.spawn_processes
    with running_system(root, "spawn") as system:
        add_agent(system, "oneshot", lambda request: "done", max_steps=1)
        threads_before = threading.active_count()
        started, cpu = time.perf_counter(), Cpu.now()
        pids = [system.spawn("oneshot", f"task {i}") for i in range(n)]
        spawned = time.perf_counter() - started
        wait_all(system, pids)
        reaped = time.perf_counter() - started
        settle(system)
        total = time.perf_counter() - started
        used = Cpu.now().since(cpu)
        # Agent threads go back to the pool after the exit; give them a moment to get there.
        time.sleep(0.2)
        pooled = threading.active_count() - threads_before
    # After stop, no agent thread may be left at all.
    left = sum(1 for t in threading.enumerate() if t.name.startswith("AgentProcess"))
    run = SpawnRun(n, spawned, reaped, total, left, used)
    print(
        f"[4] spawn+complete+reap, {n:,} processes: spawned in {spawned:.2f} s, all reaped "
        f"in {reaped:.2f} s, services settled in {total:.2f} s -> "
        f"{run.per_process_ms:.2f} ms/process ({n / total:,.0f} processes/s), "
        f"{used.per(n)}/process; {pooled} more pooled threads waiting afterwards; agent "
        f"threads left after stop: {left}"
    )
    return run


# -- 5. memory per live idle process -------------------------------------------------------------
@dataclass
class MemoryRun:
    processes: int
    live: int
    rss_kib: int
    threads_delta: int
    os_threads_delta: int
    seconds_to_live: float
    cpu: Cpu

    @property
    def per_process_kib(self) -> float:
        return self.rss_kib / self.processes


@dataclass
class Gate:
    """Shared by the blocking brains: counts entries and holds them until released."""

    release: threading.Event = field(default_factory=threading.Event)
    cond: threading.Condition = field(default_factory=threading.Condition)
    entered: int = 0

    def brain(self, request: LLMRequest) -> LLMResponse | str:
        with self.cond:
            self.entered += 1
            self.cond.notify_all()
        self.release.wait(WAIT_TIMEOUT)
        return "done"

    def wait_entered(self, n: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.entered >= n, WAIT_TIMEOUT):
                raise RuntimeError(f"only {self.entered}/{n} processes reached their first step")


def bench_memory(root: Path, sizes: Sizes) -> MemoryRun:
    n = sizes.live_processes
    gate = Gate()
    with running_system(root, "memory") as system:
        add_agent(system, "sleeper", gate.brain, max_steps=1)
        try:
            gc.collect()
            rss_before = proc_status("VmRSS")
            threads_before = threading.active_count()
            os_threads_before = proc_status("Threads")
            started, cpu = time.perf_counter(), Cpu.now()
            pids = [system.spawn("sleeper", f"wait {i}") for i in range(n)]
            gate.wait_entered(n)
            seconds = time.perf_counter() - started
            used = Cpu.now().since(cpu)
            gc.collect()
            run = MemoryRun(
                processes=n,
                live=len(system.ps()),
                rss_kib=proc_status("VmRSS") - rss_before,
                threads_delta=threading.active_count() - threads_before,
                os_threads_delta=proc_status("Threads") - os_threads_before,
                seconds_to_live=seconds,
                cpu=used,
            )
        finally:
            gate.release.set()
        wait_all(system, pids)
    print(
        f"[5] idle processes: {run.live:,} live at once after {run.seconds_to_live:.2f} s "
        f"({run.cpu.per(n)}/spawn); "
        f"RSS +{run.rss_kib / 1024:.1f} MiB = {run.per_process_kib:.1f} KiB/process; "
        f"threads +{run.threads_delta:,} (OS threads +{run.os_threads_delta:,}) = "
        f"{run.threads_delta / n:.2f}/process"
    )
    return run


# -- report --------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "BELOW TARGET"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~20 s)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    print(
        f"rnix-actors kernel benchmark ({'quick' if args.quick else 'full'}), "
        f"Python {sys.version.split()[0]}, pykka {version('pykka')}, "
        f"{os.cpu_count()} CPU(s)"
    )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnix-bench-") as tmp:
        root = Path(tmp)
        # Memory first: the baseline is cleanest before the other parts grow the heap.
        memory = bench_memory(root, sizes)
        raw, bus, ratio = bench_bus(root, sizes)
        events = bench_events(root, sizes, raw)
        steps = bench_steps(root, sizes)
        spawn = bench_spawn(root, sizes)
    e2e_ratio = events.rate / raw.rate
    event_cpu = events.cpu.total / events.events
    one, many = steps
    print()
    print(f"summary ({time.perf_counter() - began:.1f} s):")
    print(
        f"  raw pykka tell:           {fmt(raw.rate):>9} msg/s  "
        f"({raw.cpu_per_message * 1e6:.1f} us CPU/msg, median of {sizes.tell_rounds})"
    )
    print(
        f"  event path -> subscriber: {fmt(bus.rate):>9} ev/s   ratio {ratio:.2f} "
        f"(median of per-round ratios; target >= {EVENTS_TARGET}, events.jsonl on)  "
        f"{verdict(ratio >= EVENTS_TARGET)}"
    )
    print(
        f"  syscall events end to end:{fmt(events.rate):>9} ev/s   ratio {e2e_ratio:.2f} "
        f"(each event a real no-op device syscall by an agent; "
        f"{event_cpu * 1e6:.0f} us CPU/event)"
    )
    print(
        f"  agent steps, 1 agent:     {fmt(one.rate):>9} steps/s  (3 no-op tool calls/step, "
        f"{one.rate * 6:,.0f} ev/s)"
    )
    print(
        f"  agent steps, {many.agents} agents:    {fmt(many.rate):>9} steps/s  "
        f"(x{many.rate / one.rate:.2f} vs 1 agent)"
    )
    print(
        f"  spawn+complete+reap:      {spawn.per_process_ms:>9.2f} ms/process  "
        f"({spawn.processes:,} processes, {spawn.threads_left} threads left after stop)"
    )
    print(
        f"  memory per idle process:  {memory.per_process_kib:>9.1f} KiB RSS, "
        f"{memory.threads_delta / memory.processes:.2f} threads/process"
    )
    print(
        f"  live processes at once:   {memory.live:>9,}   (target >= {LIVE_TARGET:,})  "
        f"{verdict(memory.live >= LIVE_TARGET)}"
    )
    if ratio < EVENTS_TARGET:
        print(
            f"  note: the event path reaches {ratio:.2f} of raw tell throughput, under the "
            f"{EVENTS_TARGET} target; see bench/README.md"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
