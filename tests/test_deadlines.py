"""Deadlines: one thread runs every scheduled callback at its time (real threads and clocks)."""

from __future__ import annotations

import threading
import time

import pytest

from rnix_actors.kernel.deadlines import Deadlines


def test_callbacks_run_in_due_order_and_a_cancelled_one_never_runs() -> None:
    deadlines = Deadlines("test-deadlines")
    ran: list[str] = []
    done = threading.Event()
    try:
        deadlines.schedule(0.06, lambda: (ran.append("late"), done.set()))
        deadlines.schedule(0.02, lambda: ran.append("early"))
        deadlines.schedule(0.04, lambda: ran.append("cancelled")).cancel()
        deadlines.schedule(0.0, lambda: ran.append("now"))
        assert done.wait(5)
    finally:
        deadlines.close()
    assert ran == ["now", "early", "late"]


def named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_one_thread_serves_many_deadlines_and_close_joins_it() -> None:
    deadlines = Deadlines("many-deadlines")
    handles = [deadlines.schedule(60.0, lambda: None) for _ in range(50)]
    assert len(named("many-deadlines")) == 1
    for handle in handles:
        handle.cancel()
    deadlines.close()
    assert named("many-deadlines") == []
    late = deadlines.schedule(0.0, lambda: None)  # after close: nothing is scheduled
    assert late.cancelled


def test_a_failing_callback_is_logged_and_the_next_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deadlines = Deadlines("test-deadlines")
    done = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    try:
        deadlines.schedule(0.0, fail)
        deadlines.schedule(0.01, done.set)
        assert done.wait(5)
    finally:
        deadlines.close()
    assert "a deadline callback failed" in caplog.text


def test_an_earlier_deadline_wakes_the_thread_waiting_for_a_later_one() -> None:
    deadlines = Deadlines("test-deadlines")
    done = threading.Event()
    try:
        deadlines.schedule(30.0, lambda: None)
        time.sleep(0.05)  # the thread now waits for the 30 s deadline
        deadlines.schedule(0.01, done.set)
        assert done.wait(5)  # not 30 s
    finally:
        deadlines.close()
