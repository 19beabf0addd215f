"""Dashboard benchmark: page load with 1,000 live processes, the size of one live update, and
the serving process's CPU while one dashboard is open and nothing changes.

    .venv/bin/python bench/dashboard.py            # 1,000 live processes (about 1 minute)
    .venv/bin/python bench/dashboard.py --quick    # 200 live processes

The system runs in this process with `System.serve_dashboard`, exactly as the daemon serves it,
so this process's CPU time is the serving process's. Live processes are python-driver agents
whose brain blocks on a shared event (they stay ``running`` and produce no events); one extra
"ticker" agent takes a step each time the benchmark lets it, which is the change a live update
must carry. Figures are medians of several rounds; everything is measured in one run.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnix_actors import AgentTemplate, Limits, LLMRequest, LLMResponse, System, ToolCall
from rnix_actors.dashboard import Dashboard

WAIT = 120.0
ROUNDS = 7
IDLE_SECONDS = 10.0


class Gate:
    """Brains that block until released; counts how many entered."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.cond = threading.Condition()
        self.entered = 0

    def brain(self, request: LLMRequest) -> LLMResponse | str:
        with self.cond:
            self.entered += 1
            self.cond.notify_all()
        self.release.wait(WAIT * 5)
        return "done"

    def wait_entered(self, n: int) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.entered >= n, WAIT):
                raise RuntimeError(f"only {self.entered}/{n} processes reached their first step")


class Ticker:
    """A brain that takes one step (a no-op tool call) each time `tick` is called."""

    def __init__(self) -> None:
        self.steps = threading.Semaphore(0)
        self.stopped = False

    def brain(self, request: LLMRequest) -> LLMResponse | str:
        if not self.steps.acquire(timeout=WAIT * 5) or self.stopped:
            return "done"
        call = ToolCall(id=f"t{request.step}", name="list_files", input={})
        return LLMResponse(content="", tool_calls=(call,), input_tokens=12, output_tokens=3)

    def tick(self) -> None:
        self.steps.release()


@contextmanager
def scene(root: Path, live: int) -> Iterator[tuple[System, Gate, Ticker, int]]:
    project = root / "project"
    project.mkdir()
    system = System(project, state_dir=root / "state").start()
    gate, ticker = Gate(), Ticker()
    many = Limits(max_steps=100_000, context_slots=100_000)
    for name, brain in (("idle", gate.brain), ("ticker", ticker.brain)):
        system.register_llm(f"brain-{name}", brain)
        system.add_template(
            AgentTemplate(name=name, devices=("/dev/fs",), driver=f"brain-{name}", limits=many)
        )
    try:
        for i in range(live - 1):
            system.spawn("idle", f"wait {i}")
        gate.wait_entered(live - 1)
        ticker_pid = system.spawn("ticker", "tick on demand")
        yield system, gate, ticker, ticker_pid
    finally:
        ticker.stopped = True
        ticker.tick()
        gate.release.set()
        system.stop(timeout=60)


def get(board: Dashboard, path: str) -> tuple[float, int]:
    """(seconds, bytes) of one authenticated page load over a fresh connection."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=WAIT)
    sep = "&" if "?" in path else "?"
    conn.request("GET", f"{path}{sep}token={board.token}")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status}")
    return time.perf_counter() - started, len(body)


class StreamReader:
    """One open live stream, read in a thread; frames are timestamped as they arrive."""

    def __init__(self, board: Dashboard, page: str = "/") -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=WAIT * 5)
        cookie = f"rnix_dashboard_{board.port}={board.token}"
        since = board.app.hub.version
        self.conn.request("GET", f"/stream?page={page}&since={since}", headers={"Cookie": cookie})
        self.response = self.conn.getresponse()
        self.cond = threading.Condition()
        self.updates: list[tuple[float, int]] = []  # (arrival, data bytes)
        self.comments = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            while True:
                line = self.response.readline()
                if not line:
                    return
                with self.cond:
                    if line.startswith(b"data: "):
                        self.updates.append((time.perf_counter(), len(line) - 7))
                        self.cond.notify_all()
                    elif line.startswith(b":"):
                        self.comments += 1
        except OSError:
            return

    def wait_update(self, after: int) -> tuple[float, int]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.updates) > after, WAIT):
                raise RuntimeError("no live update arrived")
            return self.updates[after]

    def close(self) -> None:
        self.conn.close()


def cpu() -> float:
    """This process's CPU time, every thread (nanosecond clock, unlike os.times)."""
    return time.process_time()


def bench_pages(board: Dashboard, pid: int) -> None:
    print("page load (server render + transfer, median of rounds):")
    for path in ("/", "/supervision", "/topology", "/immune", f"/process/{pid}"):
        runs = [get(board, path) for _ in range(ROUNDS)]
        ms = statistics.median(s for s, _ in runs) * 1000
        print(f"  {path:<14} {ms:8.1f} ms  {runs[-1][1] / 1024:8.1f} KiB")


def bench_browser(board: Dashboard) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from cdp import Browser, missing

    why = missing()
    if why is not None:
        print(f"browser load: skipped ({why})")
        return
    browser = Browser()
    try:
        page = browser.page()
        times = []
        for _ in range(3):
            started = time.perf_counter()
            page.goto(f"http://127.0.0.1:{board.port}/?token={board.token}")
            times.append(time.perf_counter() - started)
        rows = page.js("document.querySelectorAll('#procs tr[data-pid]').length")
        page.close()
    finally:
        browser.close()
    print(
        f"browser load of / in headless chromium (to the load event): "
        f"{statistics.median(times) * 1000:.0f} ms, {rows:,} rows"
    )


def bench_update(board: Dashboard, ticker: Ticker) -> None:
    stream = StreamReader(board)
    try:
        quiet = threading.Event()
        quiet.wait(2.0)  # past the stream's first render and its settle render
        sizes, frames, latencies = [], [], []
        for _ in range(ROUNDS):
            seen = len(stream.updates)
            started = time.perf_counter()
            ticker.tick()
            arrival, _ = stream.wait_update(seen)
            latencies.append(arrival - started)
            quiet.wait(2.0)  # every render the step causes, the settle render included
            got = stream.updates[seen:]
            frames.append(len(got))
            sizes.append(sum(size for _, size in got))
        print(
            f"one live update (one process took a step): {statistics.median(sizes):,.0f} bytes "
            f"in {statistics.median(frames):.0f} frame(s) (median; min {min(sizes):,}, max "
            f"{max(sizes):,}); the first frame arrives "
            f"{statistics.median(latencies) * 1000:.0f} ms after the step is released"
        )
    finally:
        stream.close()


def bench_idle(board: Dashboard) -> None:
    quiet = threading.Event()
    before_cpu, before = cpu(), time.perf_counter()
    quiet.wait(IDLE_SECONDS)
    base = (cpu() - before_cpu) / (time.perf_counter() - before)
    stream = StreamReader(board)
    quiet.wait(2.0)  # past the stream's first render and its settle render
    renders = board.app.updates
    before_cpu, before = cpu(), time.perf_counter()
    quiet.wait(IDLE_SECONDS)
    open_rate = (cpu() - before_cpu) / (time.perf_counter() - before)
    idle_renders = board.app.updates - renders
    stream.close()
    print(
        f"idle CPU of the serving process over {IDLE_SECONDS:.0f} s: "
        f"{base * 1000:.2f} ms/s with no dashboard open, {open_rate * 1000:.2f} ms/s with one "
        f"open ({(open_rate - base) * 1000:+.2f} ms/s, {(open_rate - base) * 100:+.3f}% of "
        f"a core); live updates sent meanwhile: {idle_renders}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="200 live processes")
    args = parser.parse_args(argv)
    live = 200 if args.quick else 1_000
    print(f"rnix-actors dashboard benchmark: {live:,} live processes, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp, scene(Path(tmp), live) as found:
        system, _, ticker, pid = found
        board = system.serve_dashboard()
        try:
            ticker.tick()  # the ticker's first step: it is running and has a row
            print(f"live processes: {len(system.ps()):,}")
            bench_pages(board, pid)
            bench_browser(board)
            bench_update(board, ticker)
            bench_idle(board)
        finally:
            board.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
