"""Watching benchmarks: what ``rnix top`` costs to draw, and what live accounting costs a step.

Run from the repository root::

    .venv/bin/python bench/watching.py            # full run (~1 minute on 2 cores)
    .venv/bin/python bench/watching.py --quick    # smaller sizes

1. **top frame**: 1,000 live processes (each blocked in its first step) in a real system; one
   frame is a snapshot through the same API the daemon serves (``ps``, ``immune_status``,
   ``tree``) plus building the rows and drawing the visible ones. Reported as CPU ms per
   frame, split into fetching and drawing. Target: a frame in < 50 ms of CPU.
2. **live accounting**: agent steps/s with the live figures on vs off, in alternating rounds
   inside one system (off = the three per-step updates replaced by no-ops for that round).
   Reported as the median of the per-round ratios. Target: it costs < 2% (ratio ≥ 0.98).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel import (
    Gate,
    add_agent,
    busy_brain,
    running_system,
    wait_all,
)
from prompt_toolkit.output import DummyOutput

from rnix_actors.cli.top import Top, fetch
from rnix_actors.ipc.local import LocalApi
from rnix_actors.ipc.service import Service
from rnix_actors.kernel.agent import AgentProcess

FRAME_TARGET_MS = 50.0
LIVE_TARGET = 0.98


def bench_top(root: Path, processes: int, frames: int) -> tuple[float, float]:
    gate = Gate()
    with running_system(root, "top") as system:
        add_agent(system, "idle", gate.brain, max_steps=1)
        pids = [system.spawn("idle", f"wait {i}") for i in range(processes)]
        try:
            gate.wait_entered(processes)
            api = LocalApi(Service(system))
            top = Top(api, output=DummyOutput())
            fetch_cpu = draw_cpu = 0.0
            for _ in range(frames):
                started = time.process_time()
                top.snapshot = fetch(api)
                middle = time.process_time()
                top._rebuild()
                top._body()
                top._header()
                ended = time.process_time()
                fetch_cpu += middle - started
                draw_cpu += ended - middle
            api.close()
        finally:
            gate.release.set()
        wait_all(system, pids)
    fetch_ms, draw_ms = fetch_cpu / frames * 1000, draw_cpu / frames * 1000
    total = fetch_ms + draw_ms
    verdict = "PASS" if total < FRAME_TARGET_MS else "FAIL"
    print(
        f"[1] top frame, {processes:,} live processes: {total:.1f} ms CPU per frame "
        f"(fetch {fetch_ms:.1f} ms + rows and drawing {draw_ms:.1f} ms) — target < "
        f"{FRAME_TARGET_MS:.0f} ms: {verdict}"
    )
    return fetch_ms, draw_ms


def _noop(self: Any, *args: Any) -> None:
    return None


LIVE_METHODS = ("_live_step", "_live_answer", "_snapshot")


def bench_live(root: Path, rounds: int, steps: int) -> float:
    originals = {name: getattr(AgentProcess, name) for name in LIVE_METHODS}
    ratios = []
    with running_system(root, "live") as system:
        add_agent(system, "stepper", busy_brain(3, steps), max_steps=steps + 1)

        def rate() -> float:
            started = time.perf_counter()
            info = system.wait(system.spawn("stepper", "steps"), timeout=300)
            return info.steps / (time.perf_counter() - started)

        rate()  # warm-up
        try:
            for index in range(rounds):
                results = {}
                for mode in ("on", "off") if index % 2 == 0 else ("off", "on"):
                    for name in LIVE_METHODS:
                        setattr(AgentProcess, name, originals[name] if mode == "on" else _noop)
                    results[mode] = rate()
                ratios.append(results["on"] / results["off"])
        finally:
            for name, method in originals.items():
                setattr(AgentProcess, name, method)
    ratio = statistics.median(ratios)
    verdict = "PASS" if ratio >= LIVE_TARGET else "FAIL"
    print(
        f"[2] live accounting: steps/s on ÷ off = {ratio:.3f} (median of {rounds} paired "
        f"rounds of {steps:,} steps; rounds {min(ratios):.3f}-{max(ratios):.3f}) — target ≥ "
        f"{LIVE_TARGET}: {verdict}"
    )
    return ratio


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args(argv)
    processes, frames = (300, 5) if args.quick else (1_000, 20)
    rounds, steps = (5, 1_000) if args.quick else (15, 3_000)
    with tempfile.TemporaryDirectory(prefix="rnix-bench-watch-") as tmp:
        bench_top(Path(tmp), processes, frames)
        bench_live(Path(tmp), rounds, steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
