"""The reading half of `System`: what is known of processes, live and past, and their events.

Every call here reads: the live table (a snapshot per call; only the kernel writes it), the
store's history, the checkpoints and the event logs. `System` inherits it; these methods are
its public API.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnix_actors.app.boot import Running
from rnix_actors.app.service import ServiceRef
from rnix_actors.errors import (
    NoSuchProcess,
    SystemStopped,
)
from rnix_actors.kernel.asking import ask
from rnix_actors.kernel.eventbus import events_path
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.kernel.table import ProcessTable, Rollup
from rnix_actors.messages.bus import Flush, Subscribe, Subscriber
from rnix_actors.messages.events import Event
from rnix_actors.messages.processlog import Sync
from rnix_actors.state import StatePlace, read_history
from rnix_actors.store.checkpoints import CheckpointRow, CheckpointStore
from rnix_actors.store.db import Store
from rnix_actors.subscription import Subscription

ASK_TIMEOUT = 30.0


class Queries:
    """Reading processes (see the module docstring)."""

    _place: StatePlace
    _run: Running | None
    _table: ProcessTable
    _keys: Iterator[int]

    if TYPE_CHECKING:  # provided by System

        def _require(self) -> ServiceRef: ...

        def _running(self) -> Running: ...

    def checkpoints(self, pid: int) -> list[CheckpointRow]:
        """The checkpoints kept for ``pid``, oldest first (empty when checkpoints are off)."""
        run = self._run
        if run is not None and run.checkpoints is not None:
            # checkpoint 0 travels with the first row
            ask(run.process_log, Sync(), ASK_TIMEOUT, "process log")
            return run.checkpoints.rows(pid)
        db = self._place.db_path
        if self._place.kind != "dir" or db is None or not db.exists():
            return []
        reader = Store(db)
        try:
            return CheckpointStore(reader).rows(pid)
        finally:
            reader.close()

    def info(self, pid: int) -> ProcessInfo:
        info = self._table.get(pid)
        if info is None:
            raise NoSuchProcess(pid)
        return info

    def ps(self, all: bool = False) -> list[ProcessInfo]:
        """Live processes; with ``all``, every process this state dir ever ran.

        Live processes exist only in a running system: without one this raises
        `SystemStopped`, as `spawn` does. ``all`` reads the history in the state dir, which
        needs no running system (an empty list when there is none yet), except with
        ``state="memory"`` or ``"temp"``, whose history ends with the system.
        """
        if not all:
            self._require()
            return [p for p in self._table.list() if not p.finished]
        run = self._run
        if run is not None:
            ask(run.process_log, Sync(), ASK_TIMEOUT, "process log")  # read what we wrote
        rows = read_history(self._place, None if run is None else run.store)
        # A running process's row is older than its live figures: take the table's.
        live = {p.pid: p for p in self._table.list() if not p.finished}
        return [live.get(p.pid, p) for p in rows]

    def rollup(self, pid: int) -> Rollup:
        """``pid`` and all its descendants added up (processes, running, suspended, tokens,
        cost, steps), live; raises `NoSuchProcess` for an unknown PID."""
        found = self._table.rollup(pid)
        if found is None:
            raise NoSuchProcess(pid)
        return found

    def subscribe(
        self, callback: Subscriber, syscalls: Iterable[str] | None = None, wait: bool = True
    ) -> Subscription:
        """Call ``callback(event)`` for every event (or only those named in ``syscalls``), in
        the event bus's thread: keep it quick. ``wait=False`` returns without waiting for the
        bus; either way every event published after the call reaches ``callback``."""
        bus = self._running().bus
        key = next(self._keys)
        names = None if syscalls is None else frozenset(syscalls)
        if wait:
            ask(bus, Subscribe(key, callback, names), ASK_TIMEOUT, "event bus")
        else:  # the bus's inbox is FIFO: this lands before any later event
            bus.tell(Subscribe(key, callback, names))
        return Subscription(bus, key)

    def publish(self, event: Event) -> None:
        """Publish ``event`` on the event bus, as the kernel does (the immune daemon's
        ``AnomalyAlert`` events travel this way). Dropped once the system stopped."""
        run = self._run
        if run is not None:
            run.bus.tell(event)  # a bus that is down drops it

    def sync_events(self, timeout: float = ASK_TIMEOUT) -> None:
        """Return once every event published before this call reached the subscribers and
        the logs (the bus handles messages in order)."""
        run = self._run
        if run is not None:
            ask(run.bus, Flush(), timeout, "event bus")

    def events_file(self, pid: int) -> Path:
        """``<state>/proc/<pid>/events.jsonl``; `SystemStopped` when there is no state dir."""
        if self._place.dir is None:
            raise SystemStopped(f"state={self._place.kind!r} has no event logs now")
        return events_path(self._place.dir, pid)

    def _proc_status(self, pid: int) -> dict[str, Any] | None:
        info = self._table.get(pid)
        if info is None:
            return None
        data = info.to_dict()
        data.pop("result", None)
        return data
