"""Threads for agent processes, kept warm between processes.

`threading.Thread.start` returns only once the new thread runs, and under a busy GIL that takes
about a millisecond: every spawn would make the kernel wait for it, and a one_for_all restart
of ten agents would wait ten times. Agent processes run on pooled threads instead. When a
process ends, its thread waits for the next one (up to ``max_idle`` threads wait); a spawn hands
its actor loop to a waiting thread (one queue put) and starts a new thread only when none waits.
``min_idle`` threads are started up front, so that a restart finds one ready even while the
crashed process's thread is still finishing its call.

Each process still has a thread of its own while it lives: a pooled thread runs one actor loop
at a time.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], None]

_names = itertools.count(1)


class AgentThreads:
    def __init__(self, min_idle: int = 2, max_idle: int = 32, name: str = "AgentProcess") -> None:
        # The idle threads: taken by the spawner's thread (the kernel's), joined by the pool's
        # threads as they finish a job, emptied by `close`; notified whenever the count changes.
        self._lock = threading.Condition()
        self._idle: list[tuple[queue.SimpleQueue[Job | None], threading.Thread]] = []
        self._closed = False
        self._name = name
        self.max_idle = max_idle
        for _ in range(min_idle):
            self._start(None)

    def run(self, job: Job) -> None:
        """Run ``job`` on a waiting thread, or on a new one if none waits."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the agent thread pool is closed")
            waiting = self._idle.pop() if self._idle else None
            self._lock.notify_all()
        if waiting is not None:
            waiting[0].put(job)
        else:
            self._start(job)

    def close(self, timeout: float = 5.0) -> None:
        """No new jobs. Waiting threads end now (joined within ``timeout``); busy ones end
        after their job (whoever waits for the processes joins those)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for slot, _ in idle:
            slot.put(None)
        end = time.monotonic() + timeout
        for _, thread in idle:
            thread.join(max(0.0, end - time.monotonic()))

    @property
    def idle(self) -> int:
        with self._lock:
            return len(self._idle)

    def idle_threads(self) -> list[threading.Thread]:
        """The threads waiting for a job now."""
        with self._lock:
            return [thread for _, thread in self._idle]

    def wait_idle(self, count: int, timeout: float) -> bool:
        """Block until exactly ``count`` threads wait for a job (True) or ``timeout`` passed."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._idle) == count, timeout)

    def _start(self, job: Job | None) -> None:
        thread = threading.Thread(
            target=self._work, args=(job,), name=f"{self._name}-{next(_names)}", daemon=True
        )
        thread.start()

    def _work(self, job: Job | None) -> None:
        while True:
            if job is not None:
                try:
                    job()
                except BaseException:  # an actor loop handles its own failures
                    log.exception("an agent thread's job failed")
            job = self._next()
            if job is None:
                return

    def _next(self) -> Job | None:
        """Wait for the next job, or None when this thread should end."""
        with self._lock:
            if self._closed or len(self._idle) >= self.max_idle:
                return None
            slot: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
            self._idle.append((slot, threading.current_thread()))
            self._lock.notify_all()
        return slot.get()
