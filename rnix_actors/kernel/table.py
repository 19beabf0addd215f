"""A thread-safe view of the process table.

The kernel actor is the only writer of records; anyone may read, block until a process
reaches a state (`System.wait`), or ask to be called when it does (`ProcessTable.when`, for
event loops that must not block a thread per waiter). This keeps ``ps`` and ``wait`` off the
kernel's inbox. While a process runs, its record is overlaid with the `LiveFigures` its own
thread updates at each step and model answer, so every read shows the figures of the moment
without asking the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

import attrs

from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.kernel.spec import LiveFigures

MAX_FINISHED = 10_000

Predicate = Callable[[ProcessInfo], bool]
Watcher = tuple[Predicate, Callable[[ProcessInfo], None]]


@attrs.frozen
class Rollup:
    """A process and all its descendants, added up."""

    pid: int
    processes: int
    running: int
    suspended: int
    tokens: int
    cost_usd: float
    steps: int

    def to_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


def overlay(info: ProcessInfo, figures: LiveFigures | None) -> ProcessInfo:
    """``info`` with the live figures of a process that has not settled yet."""
    if figures is None or info.finished:
        return info
    return attrs.evolve(
        info,
        steps=max(info.steps, figures.steps),
        tokens_used=max(info.tokens_used, figures.tokens),
        cost_usd=max(info.cost_usd, figures.cost_usd),
        step_started_at=figures.step_started_at,
        activity=figures.activity,
    )


def rollup(pid: int, infos: Iterable[ProcessInfo]) -> Rollup:
    """Add up ``infos`` (a subtree, ``pid`` first) into one `Rollup`."""
    processes = running = suspended = tokens = steps = 0
    cost = 0.0
    for info in infos:
        processes += 1
        running += info.state is ProcessState.RUNNING
        suspended += info.state is ProcessState.SUSPENDED
        tokens += info.tokens_used
        steps += info.steps
        cost += info.cost_usd
    return Rollup(pid, processes, running, suspended, tokens, cost, steps)


class ProcessTable:
    def __init__(self) -> None:
        # Written by the kernel's thread, read by callers' threads (ps, inspect, /proc from the
        # agents' threads) and waited on by `wait`: reads must not queue in the kernel's inbox.
        self._cond = threading.Condition()
        self._procs: dict[int, ProcessInfo] = {}
        self._figures: dict[int, LiveFigures] = {}
        # pid -> (figures version, record it was overlaid on, overlaid record): an idle
        # process is not rebuilt at every read (top reads 1,000 records a second).
        self._overlaid: dict[int, tuple[int, ProcessInfo, ProcessInfo]] = {}
        self._finished_order: list[int] = []
        self._watchers: dict[int, list[Watcher]] = {}

    def track(self, pid: int, figures: LiveFigures) -> None:
        """Overlay ``pid``'s record with ``figures`` until it finishes."""
        with self._cond:
            self._figures[pid] = figures

    def put(self, info: ProcessInfo) -> None:
        due: list[Watcher] = []
        with self._cond:
            self._procs[info.pid] = info
            if info.finished:
                self._figures.pop(info.pid, None)
                self._overlaid.pop(info.pid, None)
                self._finished_order.append(info.pid)
                self._evict()
            self._cond.notify_all()
            watchers = self._watchers.get(info.pid)
            if watchers:
                info = overlay(info, self._figures.get(info.pid))
                due = [w for w in watchers if w[0](info)]
                watchers[:] = [w for w in watchers if w not in due]
                if not watchers:
                    del self._watchers[info.pid]
        for _, callback in due:  # outside the lock: a callback may read the table
            callback(info)

    def when(
        self, pid: int, predicate: Predicate, callback: Callable[[ProcessInfo], None]
    ) -> Callable[[], None]:
        """Call ``callback(info)`` once, as soon as ``predicate(info)`` holds for ``pid``: at
        once in this thread if it already does, else in the writer's thread (the kernel's:
        keep it quick and non-blocking). Returns a function that drops the watch."""
        watcher: Watcher = (predicate, callback)
        with self._cond:
            info = self._procs.get(pid)
            if info is not None:
                info = overlay(info, self._figures.get(pid))
            ready = info is not None and predicate(info)
            if not ready:
                self._watchers.setdefault(pid, []).append(watcher)
        if ready and info is not None:
            callback(info)

        def drop() -> None:
            with self._cond:
                watchers = self._watchers.get(pid)
                if watchers and watcher in watchers:
                    watchers.remove(watcher)
                    if not watchers:
                        del self._watchers[pid]

        return drop

    def _evict(self) -> None:
        # Keep memory bounded in long-running daemons; history stays in the store.
        while len(self._finished_order) > MAX_FINISHED:
            old = self._finished_order.pop(0)
            info = self._procs.get(old)
            if info is not None and info.finished:
                del self._procs[old]

    def get(self, pid: int) -> ProcessInfo | None:
        with self._cond:
            info = self._procs.get(pid)
            return None if info is None else self._overlay(info)

    def _overlay(self, info: ProcessInfo) -> ProcessInfo:
        """`overlay` with a cache per process (called under the lock)."""
        figures = self._figures.get(info.pid)
        if figures is None or info.finished:
            return info
        version = figures.version
        cached = self._overlaid.get(info.pid)
        if cached is not None and cached[0] == version and cached[1] is info:
            return cached[2]
        shown = overlay(info, figures)
        self._overlaid[info.pid] = (version, info, shown)
        return shown

    def figures(self, pid: int) -> LiveFigures | None:
        """The live figures of a process that has not finished, or None."""
        with self._cond:
            return self._figures.get(pid)

    def subtree(self, pid: int) -> Iterator[int]:
        """``pid`` and its descendants, parents before children."""
        stack = [pid]
        while stack:
            current = stack.pop()
            yield current
            info = self.get(current)
            if info is not None:
                stack.extend(reversed(info.children))

    def rollup(self, pid: int) -> Rollup | None:
        """``pid`` and its descendants added up, or None for an unknown PID."""
        if self.get(pid) is None:
            return None
        infos = (info for p in self.subtree(pid) if (info := self.get(p)) is not None)
        return rollup(pid, infos)

    def list(self) -> list[ProcessInfo]:
        with self._cond:
            infos = [self._overlay(info) for info in self._procs.values()]
        return sorted(infos, key=lambda p: p.pid)

    def wait_for(
        self, pid: int, predicate: Callable[[ProcessInfo], bool], timeout: float | None
    ) -> ProcessInfo | None:
        """Block until ``predicate(info)`` holds; return the info, or None on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                info = self._procs.get(pid)
                if info is not None and predicate(info):
                    return self._overlay(info)
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)


class TableView:
    """Read-only access to a `ProcessTable`: what `rnix_actors.System.table` gives. Every
    read is a snapshot (`ProcessInfo` is frozen); writing the table is the kernel's alone."""

    __slots__ = ("_table",)

    def __init__(self, table: ProcessTable) -> None:
        self._table = table

    def get(self, pid: int) -> ProcessInfo | None:
        """``pid``'s record with its live figures, or None for a PID not in the table."""
        return self._table.get(pid)

    def list(self) -> list[ProcessInfo]:
        """Every record in the table (live and recently finished), by PID."""
        return self._table.list()

    def figures(self, pid: int) -> LiveFigures | None:
        return self._table.figures(pid)

    def subtree(self, pid: int) -> Iterator[int]:
        return self._table.subtree(pid)

    def rollup(self, pid: int) -> Rollup | None:
        return self._table.rollup(pid)

    def wait_for(
        self, pid: int, predicate: Callable[[ProcessInfo], bool], timeout: float | None
    ) -> ProcessInfo | None:
        """Block until ``predicate(info)`` holds; return the info, or None on timeout."""
        return self._table.wait_for(pid, predicate, timeout)

    def when(
        self, pid: int, predicate: Predicate, callback: Callable[[ProcessInfo], None]
    ) -> Callable[[], None]:
        """`ProcessTable.when`: ``callback`` once ``predicate`` holds (see there)."""
        return self._table.when(pid, predicate, callback)
