"""The asyncio API against the thread API, measured in one run (see ``bench/README.md``).

Run from the repository root::

    .venv/bin/python bench/aio.py            # full run (~20 s on 2 cores)
    .venv/bin/python bench/aio.py --quick    # smaller sizes (~5 s)

[1] ``run`` of a no-op agent, one after another: ``System.run`` from a plain thread against
    ``await AsyncSystem.run`` on the loop, on the same system, in alternating rounds; the
    ratio is the median of the per-round ratios (target <= 1.2), on wall time and on the
    process's CPU time.
[2] the same, 100 at once: ``asyncio.gather`` of 100 ``run`` against 16 threads sharing 100
    ``System.run`` calls (no target: how each API is used for concurrency).
[3] events/s delivered through ``events()`` (async iteration on the loop) against a
    ``subscribe`` callback, from pre-built batches sent to the real event bus; alternating
    rounds, median ratio (no target). Then a consumer that cannot keep up: the queue stays
    at ``maxsize`` and the drops are counted.

Every system runs with ``state="memory"``: nothing is written anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from rnix_actors import AgentTemplate, Event, Limits, System
from rnix_actors.aio import AsyncSystem, EventsDropped
from rnix_actors.messages.events import EventBatch

RUN_TARGET = 1.2  # async run time / thread run time
TIMEOUT = 300.0  # a benchmark that hangs this long has found a bug


@dataclass(frozen=True)
class Sizes:
    rounds: int
    runs_per_round: int
    concurrent: int
    events: int


FULL = Sizes(rounds=41, runs_per_round=50, concurrent=100, events=100_000)
QUICK = Sizes(rounds=7, runs_per_round=50, concurrent=100, events=30_000)


def make_system(project: Path) -> AsyncSystem:
    system = AsyncSystem(project, state="memory", load_project=False)
    system.register_llm("noop", lambda request: "done")
    system.add_template(AgentTemplate("noop", devices=("/dev/fs",), driver="noop", limits=Limits()))
    return system


def cpu() -> float:
    return time.process_time()  # every thread of the process, at clock resolution


def thread_runs(system: System, n: int) -> tuple[float, float]:
    started, used = time.perf_counter(), cpu()
    for i in range(n):
        info = system.run("noop", f"t{i}", timeout=TIMEOUT)
        assert info.exit_code == 0, info.exit_reason
    return time.perf_counter() - started, cpu() - used


async def async_runs(system: AsyncSystem, n: int) -> tuple[float, float]:
    started, used = time.perf_counter(), cpu()
    for i in range(n):
        info = await system.run("noop", f"a{i}", timeout=TIMEOUT)
        assert info.exit_code == 0, info.exit_reason
    return time.perf_counter() - started, cpu() - used


@dataclass(frozen=True)
class RunFigures:
    thread_ms: float  # wall time per run, medians of the rounds
    async_ms: float
    ratio: float  # median of the per-round ratios async / thread
    cpu_ratio: float  # the same on process CPU time


async def bench_run(system: AsyncSystem, sizes: Sizes) -> RunFigures:
    loop = asyncio.get_running_loop()
    n = sizes.runs_per_round
    await async_runs(system, n)  # warm up both paths (threads pooled, caches filled)
    await loop.run_in_executor(None, thread_runs, system.system, n)
    walls: list[tuple[float, float]] = []
    cpus: list[float] = []
    for _ in range(sizes.rounds):
        # The thread API from a thread of its own while the loop idles, as a threaded host.
        t, t_cpu = await loop.run_in_executor(None, thread_runs, system.system, n)
        a, a_cpu = await async_runs(system, n)
        walls.append((t / n, a / n))
        cpus.append(a_cpu / t_cpu if t_cpu > 0 else 1.0)
    return RunFigures(
        statistics.median(t for t, _ in walls) * 1e3,
        statistics.median(a for _, a in walls) * 1e3,
        statistics.median(a / t for t, a in walls),
        statistics.median(cpus),
    )


async def bench_concurrent(system: AsyncSystem, n: int) -> tuple[float, float]:
    started = time.perf_counter()
    infos = await asyncio.gather(*(system.run("noop", f"c{i}", timeout=TIMEOUT) for i in range(n)))
    async_s = time.perf_counter() - started
    assert all(i.exit_code == 0 for i in infos)

    def threaded() -> float:
        begin = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            done = list(
                pool.map(lambda i: system.system.run("noop", f"p{i}", timeout=TIMEOUT), range(n))
            )
        assert all(i.exit_code == 0 for i in done)
        return time.perf_counter() - begin

    thread_s = await asyncio.get_running_loop().run_in_executor(None, threaded)
    return thread_s, async_s


def batches(total: int) -> list[EventBatch]:
    events = [
        Event(
            ts=time.time(),
            pid=1 + (i // 64) % 4,  # a batch comes from one process
            template="emitter",
            step=i // 100,
            syscall="Write",
            device="/dev/null0",
            args={},
            result="",
            duration_ms=0.01,
        )
        for i in range(total)
    ]
    return [EventBatch(tuple(events[i : i + 64])) for i in range(0, total, 64)]


def send(system: System, prepared: list[EventBatch]) -> None:
    run = system._run  # the benchmark reaches inside on purpose: it measures delivery alone
    assert run is not None
    bus = run.bus
    for batch in prepared:
        bus.tell(batch)


def subscribe_round(system: System, prepared: list[EventBatch], total: int) -> float:
    done, seen = threading.Event(), [0]

    def count(event: Event) -> None:
        seen[0] += 1
        if seen[0] == total:
            done.set()

    with system.subscribe(count):
        started = time.perf_counter()
        send(system, prepared)
        if not done.wait(TIMEOUT):
            raise RuntimeError(f"subscriber saw {seen[0]}/{total} events")
        return time.perf_counter() - started


async def events_round(system: AsyncSystem, prepared: list[EventBatch], total: int) -> float:
    loop = asyncio.get_running_loop()
    async with system.events(maxsize=total) as stream:
        started = time.perf_counter()
        producer = loop.run_in_executor(None, send, system.system, prepared)
        seen = 0
        async for item in stream:
            assert not isinstance(item, EventsDropped)
            seen += 1
            if seen == total:
                break
        seconds = time.perf_counter() - started
        await producer
    return seconds


async def bench_events(system: AsyncSystem, sizes: Sizes) -> tuple[float, float, float]:
    loop = asyncio.get_running_loop()
    total = sizes.events
    prepared = batches(total)
    subs, streams, ratios = [], [], []
    for _ in range(max(3, sizes.rounds // 2)):
        s = await loop.run_in_executor(None, subscribe_round, system.system, prepared, total)
        a = await events_round(system, prepared, total)
        subs.append(total / s)
        streams.append(total / a)
        ratios.append(s / a)
    return statistics.median(subs), statistics.median(streams), statistics.median(ratios)


async def bench_slow_consumer(system: AsyncSystem, total: int, maxsize: int) -> tuple[int, int]:
    prepared = batches(total)
    async with system.events(maxsize=maxsize) as stream:
        await asyncio.get_running_loop().run_in_executor(None, send, system.system, prepared)
        await asyncio.get_running_loop().run_in_executor(None, system.system.sync_events)
        peak = stream.pending()
        return peak, stream.dropped


async def main_async(sizes: Sizes, project: Path) -> bool:
    async with make_system(project) as system:
        runs = await bench_run(system, sizes)
        thread_s, async_s = await bench_concurrent(system, sizes.concurrent)
        sub_rate, stream_rate, ev_ratio = await bench_events(system, sizes)
        peak, dropped = await bench_slow_consumer(system, sizes.events, 1_000)
    ok = runs.ratio <= RUN_TARGET
    print(f"[1] run, one at a time ({sizes.rounds} rounds x {sizes.runs_per_round})")
    print(f"    thread API  {runs.thread_ms:7.3f} ms/run")
    print(f"    async API   {runs.async_ms:7.3f} ms/run")
    verdict = "PASS" if ok else "BELOW TARGET"
    print(f"    ratio async/thread {runs.ratio:.2f} (median; target <= {RUN_TARGET}) {verdict}")
    print(f"    CPU ratio async/thread {runs.cpu_ratio:.2f} (median)")
    print(f"[2] run, {sizes.concurrent} at once")
    print(f"    16 threads {thread_s * 1e3:7.1f} ms, gather {async_s * 1e3:7.1f} ms")
    print(f"    ratio gather/threads {async_s / thread_s:.2f}")
    print(f"[3] events, {sizes.events:,} per round")
    print(f"    subscribe callback {sub_rate:10,.0f} ev/s")
    print(f"    events() iterator  {stream_rate:10,.0f} ev/s")
    print(f"    ratio events()/subscribe {ev_ratio:.2f} (median of rounds)")
    print(f"    consumer that never reads, maxsize 1,000: {peak:,} queued, {dropped:,} dropped")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~5 s)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    kind = "quick" if args.quick else "full"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"rnix-actors asyncio benchmark ({kind}), Python {sys.version.split()[0]}")
    print(f"load average {load} on {os.cpu_count()} CPUs (ratios are taken in this one run)")
    with TemporaryDirectory(prefix="rnix-bench-aio-") as tmp:
        asyncio.run(main_async(sizes, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
