"""A thread-safe view of the process table.

The kernel actor is the only writer; anyone may read or block until a process reaches a state
(`System.wait`). This keeps ``ps`` and ``wait`` off the kernel's inbox.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from rnix_actors.kernel.process import ProcessInfo

MAX_FINISHED = 10_000


class ProcessTable:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._procs: dict[int, ProcessInfo] = {}
        self._finished_order: list[int] = []

    def put(self, info: ProcessInfo) -> None:
        with self._cond:
            self._procs[info.pid] = info
            if info.finished:
                self._finished_order.append(info.pid)
                self._evict()
            self._cond.notify_all()

    def _evict(self) -> None:
        # Keep memory bounded in long-running daemons; history stays in the store.
        while len(self._finished_order) > MAX_FINISHED:
            old = self._finished_order.pop(0)
            info = self._procs.get(old)
            if info is not None and info.finished:
                del self._procs[old]

    def get(self, pid: int) -> ProcessInfo | None:
        with self._cond:
            return self._procs.get(pid)

    def subtree(self, pid: int) -> Iterator[int]:
        """``pid`` and its descendants, parents before children."""
        stack = [pid]
        while stack:
            current = stack.pop()
            yield current
            info = self.get(current)
            if info is not None:
                stack.extend(reversed(info.children))

    def list(self) -> list[ProcessInfo]:
        with self._cond:
            return sorted(self._procs.values(), key=lambda p: p.pid)

    def wait_for(
        self, pid: int, predicate: Callable[[ProcessInfo], bool], timeout: float | None
    ) -> ProcessInfo | None:
        """Block until ``predicate(info)`` holds; return the info, or None on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                info = self._procs.get(pid)
                if info is not None and predicate(info):
                    return info
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
