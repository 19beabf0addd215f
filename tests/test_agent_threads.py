"""Pooled agent threads (real threads): reuse, bounds, close, and processes on them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import agent

from rnix_actors import System
from rnix_actors.kernel.threads import AgentThreads


def run_and_wait(pool: AgentThreads) -> threading.Thread:
    """Run a job on the pool; return the thread that ran it."""
    ran: list[threading.Thread] = []
    done = threading.Event()

    def record() -> None:
        ran.append(threading.current_thread())
        done.set()

    pool.run(record)
    assert done.wait(5)
    return ran[0]


def wait_idle(pool: AgentThreads, count: int) -> None:
    if not pool.wait_idle(count, timeout=5):
        raise AssertionError(f"{pool.idle} idle threads, expected {count}")


def test_a_finished_job_leaves_its_thread_waiting_for_the_next() -> None:
    pool = AgentThreads(min_idle=0, max_idle=4, name="test-pool")
    try:
        first = run_and_wait(pool)
        wait_idle(pool, 1)
        second = run_and_wait(pool)
        assert first is second and first.name.startswith("test-pool-")
    finally:
        pool.close()
    assert not first.is_alive()


def test_min_idle_threads_wait_from_the_start_and_max_idle_bounds_the_rest() -> None:
    pool = AgentThreads(min_idle=2, max_idle=2, name="bounded-pool")
    release = threading.Event()
    started = threading.Semaphore(0)
    ran: set[threading.Thread] = set()

    def hold() -> None:
        ran.add(threading.current_thread())
        started.release()
        release.wait(5)

    try:
        assert pool.idle == 2
        for _ in range(5):  # two run on waiting threads, three on new ones
            pool.run(hold)
        for _ in range(5):
            assert started.acquire(timeout=5)
        assert pool.idle == 0
        release.set()
        wait_idle(pool, 2)  # the other three end
        waiting = set(pool.idle_threads())
        assert len(ran) == 5 and waiting <= ran
        for thread in ran - waiting:
            thread.join(5)
            assert not thread.is_alive()
        names = [t for t in threading.enumerate() if t.name.startswith("bounded-pool-")]
        assert sorted(t.name for t in names) == sorted(t.name for t in waiting)
    finally:
        pool.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("bounded-pool-")]


def test_a_failing_job_is_logged_and_its_thread_serves_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = AgentThreads(min_idle=1, max_idle=1, name="failing-pool")

    def fail() -> None:
        raise RuntimeError("boom")

    try:
        pool.run(fail)
        wait_idle(pool, 1)
        assert run_and_wait(pool).name.startswith("failing-pool-")
    finally:
        pool.close()
    assert "an agent thread's job failed" in caplog.text
    with pytest.raises(RuntimeError, match="closed"):
        pool.run(lambda: None)


def test_processes_run_on_reused_threads_and_none_is_left_after_stop(project: Path) -> None:
    names: set[str] = set()

    def brain(request: object) -> str:
        names.add(threading.current_thread().name)
        return "done"

    with System(project) as system:
        agent(system, "w", brain)
        for i in range(6):
            assert system.run("w", f"task {i}", timeout=10).exit_code == 0
    assert len(names) < 6  # finished processes hand their threads on
    assert not [t for t in threading.enumerate() if t.name.startswith("AgentProcess")]
