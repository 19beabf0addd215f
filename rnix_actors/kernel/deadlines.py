"""Callbacks due at given times, all run by one thread.

The kernel gives every SIGTERM a grace period. A `threading.Timer` per grace period would start
a thread per signalled process, and under a busy GIL starting a thread costs about a millisecond
of the starter's time: a one_for_all restart of ten agents would pay ten. One `Deadlines` thread,
started on first use, serves them all.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Deadline:
    """A scheduled callback; `cancel` stops it from running (if it has not run yet)."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Deadlines:
    """Runs callbacks at their due times, one after another, on one daemon thread.

    Callbacks must be quick (a ``tell``): a slow one delays the ones due after it. A callback
    that raises is logged. `close` drops whatever is still pending and joins the thread.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        # The heap is filled by the scheduler's thread (the kernel's) and drained by the
        # deadline thread, which waits on it until the next due time or a sooner entry.
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, delay: float, callback: Callable[[], None]) -> Deadline:
        deadline = Deadline(callback)
        with self._cond:
            if self._closed:
                deadline.cancel()
                return deadline
            entry = (time.monotonic() + delay, next(self._order), deadline)
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()  # due before whatever the thread waits for
        return deadline

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        deadline = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            if not deadline.cancelled:
                try:
                    deadline.callback()
                except Exception:
                    log.exception("%s: a deadline callback failed", self._name)
