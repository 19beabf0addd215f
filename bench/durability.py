"""Durability benchmark: what checkpoints cost a step, and how fast a restart lists them.

Run from the repository root::

    .venv/bin/python bench/durability.py            # full run
    .venv/bin/python bench/durability.py --quick    # smaller sizes

1. Steps/s with checkpoints on vs off on the bench/kernel.py step workload (agents taking
   zero-latency steps of 3 no-op device calls; steps/s on the time until the event bus
   delivered the last event, as bench/kernel.py counts them), in alternating rounds of one
   run; the ratio of the medians (target >= 0.9).
2. Checkpoint bytes per step of that workload.
3. Time from ``rnix daemon start`` (a real daemon process) to all resumable processes listed,
   with N processes suspended with their checkpoints by a graceful stop.
4. The same after a kill -9 of the daemon while N processes were running: the next start
   replays their checkpoints from the journal the dead daemon left, then lists them lost.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernel import NULL_DEVICE, ExitCounter, _null_device, add_agent, busy_brain, wait_all

from rnix_actors import System
from rnix_actors.config import Config, KernelConfig
from rnix_actors.ipc.control import find_daemon, start_daemon, stop_daemon
from rnix_actors.store.journal import scan

TARGET = 0.9


def step_round(
    base: Path, checkpoints: bool, agents: int, steps: int, journal: bool = True
) -> tuple[float, int, float]:
    """One round: ``agents`` processes of ``steps`` steps; returns (steps/s, steps, CPU
    seconds of this process per step: less sensitive than steps/s to other load)."""
    project = base / "project"
    project.mkdir(parents=True)
    config = Config(kernel=KernelConfig(checkpoints=checkpoints))
    system = System(project, state_dir=base / "state", config=config, load_project=False)
    system.register_device(NULL_DEVICE, _null_device, "no-op", blocking=False)
    with system:
        run = system._run  # reaches inside on purpose: the commit mode
        if run is not None and run.checkpoints is not None:
            run.checkpoints.use_journal = journal
        add_agent(system, "stepper", busy_brain(3, steps), max_steps=steps + 1)
        counter = ExitCounter(agents)
        with system.subscribe(counter):
            started, cpu = time.perf_counter(), time.process_time()
            pids = [system.spawn("stepper", "take steps") for _ in range(agents)]
            infos = wait_all(system, pids)
            counter.wait()
            # As bench/kernel.py: until the bus delivered the last event (its work counts).
            seconds = counter.last - started
            cpu = time.process_time() - cpu
    total = sum(i.steps for i in infos)
    return total / seconds, total, cpu / total


def checkpoint_bytes(db: Path, steps: int) -> float:
    """Checkpoint bytes written per step (every row: start, steps, suspends)."""
    conn = sqlite3.connect(db)
    try:
        total = conn.execute("SELECT SUM(bytes) FROM checkpoints").fetchone()[0]
    finally:
        conn.close()
    return float(total or 0) / steps


MODES = (("off", False, True), ("on", True, True), ("direct", True, False))


def bench_steps(root: Path, rounds: int, agents: int, steps: int) -> None:
    rates: dict[str, list[float]] = {name: [] for name, _, _ in MODES}
    cpus: dict[str, list[float]] = {name: [] for name, _, _ in MODES}
    total = 0
    for r in range(rounds):
        order = MODES if r % 2 == 0 else tuple(reversed(MODES))
        for name, on, journal in order:
            rate, total, cpu = step_round(root / f"steps-{r}-{name}", on, agents, steps, journal)
            rates[name].append(rate)
            cpus[name].append(cpu)
    med = {name: statistics.median(values) for name, values in rates.items()}
    ratio = med["on"] / med["off"]
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    print(
        f"[1] steps/s, {agents} agent(s) x {steps} steps of 3 no-op calls, median of {rounds} "
        f"alternating rounds: checkpoints off {med['off']:,.0f}, on {med['on']:,.0f} "
        f"-> ratio {ratio:.2f} (target >= {TARGET}: {verdict}); each checkpoint committed "
        f"by its process instead of journaled: {med['direct']:,.0f} "
        f"(ratio {med['direct'] / med['off']:.2f})"
    )
    cpu = {name: statistics.median(values) * 1e6 for name, values in cpus.items()}
    print(
        f"    CPU per step (all threads of the system): off {cpu['off']:.0f} us, on "
        f"{cpu['on']:.0f} us (off / on {cpu['off'] / cpu['on']:.2f}), direct {cpu['direct']:.0f} us"
    )
    per_step = checkpoint_bytes(root / "steps-0-on" / "state" / "rnix.db", total)
    print(f"[2] checkpoint bytes per step: {per_step:,.0f} (state row + new context messages)")


def suspended_project(root: Path, n: int) -> tuple[Path, Path]:
    """A state dir holding ``n`` processes suspended with their checkpoints."""
    project = root / "listing" / "project"
    (project / ".rnix" / "agents").mkdir(parents=True)
    script = project / "script.yaml"
    script.write_text(
        'version: "1"\nresponses:\n'
        "  - tool_calls: [{name: list_files, input: {path: .}}]\n"
        "    usage: {input_tokens: 100, output_tokens: 0}\n"
        "  - content: done\n"
    )
    (project / ".rnix" / "agents" / "pauser.yaml").write_text(
        f"name: pauser\ndevices: [/dev/fs]\ndriver: replay\nmodel: {script}\n"
        "limits: {max_tokens: 50}\n"  # step 2 finds the budget spent: it suspends
    )
    state = root / "listing" / "state"
    with System(project, state_dir=state) as system:
        pids = [system.spawn("pauser", f"task {i}") for i in range(n)]
        for pid in pids:
            system.wait(pid, timeout=300)
        system.stop(checkpoint=True)
    return project, state


def bench_listing(root: Path, n: int) -> None:
    project, state = suspended_project(root, n)
    started = time.perf_counter()
    start_daemon(project, state)
    try:
        client = find_daemon(state)
        assert client is not None
        with client:
            listed = [p for p in client.call("ps")["processes"] if p["state"] == "suspended"]
        seconds = time.perf_counter() - started
    finally:
        stop_daemon(state)
    print(
        f"[3] daemon start -> {len(listed):,} of {n:,} checkpointed suspended processes listed "
        f"by ps: {seconds:.2f} s"
    )


def journaled_project(root: Path, n: int) -> tuple[Path, Path, int]:
    """A daemon killed with SIGKILL while ``n`` processes wait in their second step, their
    checkpoints still in its journal; returns (project, state, records left in it)."""
    project = root / "journal" / "project"
    (project / ".rnix" / "agents").mkdir(parents=True)
    script = project / "script.yaml"
    script.write_text(
        'version: "1"\nresponses:\n'
        "  - tool_calls: [{name: list_files, input: {path: .}}]\n"
        "  - content: done\n    delay_ms: 600000\n"  # the kill lands while they wait here
    )
    (project / ".rnix" / "agents" / "waiter.yaml").write_text(
        f"name: waiter\ndevices: [/dev/fs]\ndriver: replay\nmodel: {script}\n"
    )
    state = root / "journal" / "state"
    daemon = start_daemon(project, state)
    client = find_daemon(state)
    assert client is not None
    with client:
        for i in range(n):
            client.call("spawn", agent="waiter", intent=f"task {i}")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # every process took its first step
            listed = client.call("ps")["processes"]
            if sum(1 for p in listed if p["steps"] >= 2) >= n:
                break
            threading.Event().wait(0.1)
    os.kill(daemon.pid, signal.SIGKILL)
    _wait_gone(daemon.pid)
    left = sum(len(scan(path)) for path in (state / "journal").glob("*.jnl"))
    return project, state, left


def _wait_gone(pid: int) -> None:
    for _ in range(1000):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaps it if it is our child
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        threading.Event().wait(0.01)


def step_checkpointed(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT COUNT(DISTINCT pid) FROM checkpoints WHERE kind = 'step'")
        return int(row.fetchone()[0])
    finally:
        conn.close()


def bench_replay(root: Path, n: int) -> None:
    project, state, left = journaled_project(root, n)
    started = time.perf_counter()
    start_daemon(project, state)
    try:
        client = find_daemon(state)
        assert client is not None
        with client:
            listed = [p for p in client.call("ps", all=True)["processes"] if p["state"] == "lost"]
            seconds = time.perf_counter() - started
        stepped = step_checkpointed(state / "rnix.db")
    finally:
        stop_daemon(state)
    print(
        f"[4] daemon start after a kill -9 -> {len(listed):,} of {n:,} lost processes listed "
        f"by ps, {stepped:,} with their step's checkpoint ({left:,} records were still only "
        f"in the dead daemon's journal, replayed at start): {seconds:.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args(argv)
    rounds, agents, steps, listing = (2, 4, 100, 200) if args.quick else (6, 8, 250, 1000)
    with tempfile.TemporaryDirectory(prefix="rnix-bench-durable-") as tmp:
        root = Path(tmp)
        bench_steps(root / "one", rounds, 1, steps * 2)
        bench_steps(root / "many", rounds, agents, steps)
        bench_listing(root, listing)
        bench_replay(root, listing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
