"""The process log: process rows reach the store off the kernel's thread.

The kernel's `ProcessTable` is the live truth (what `info`, `wait`, `ps` and every supervisor
read); the store is the durable history (`ps --all`, other processes such as the CLI). The
kernel tells each changed row to this actor instead of committing it itself, so that a crash,
a restart or a burst of exits never waits for the disk on the kernel's thread.

Rows are kept in arrival order, one per PID (a newer row of a PID replaces the older one:
each row is the whole state), and written in one transaction whenever the inbox is empty,
so a burst costs one commit. `Sync` (ask) answers once every row told before it is written.
A failed write is logged and the rows stay pending for the next write; stopping writes what
is pending. Each incarnation owns its store connection and closes it when it ends; a closed
or misused connection is fatal, and the restart reopens it with the whole live table.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from rnix_actors.kernel.base import Fatal, RnixActor, ThreadTracker
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.messages.processlog import FirstCheckpoint, Sync
from rnix_actors.store.checkpoints import write_checkpoint
from rnix_actors.store.db import Store

log = logging.getLogger(__name__)


_RUNNING = (ProcessState.CREATED, ProcessState.RUNNING)


class ProcessLog(RnixActor):
    """``rows``: written first. A restarted process log gets the whole live table, so the rows
    its predecessor held when it crashed are not lost (each row is a process's whole state)."""

    def __init__(
        self,
        store: Store,
        tracker: ThreadTracker | None = None,
        before_settled: Callable[[], None] | None = None,
        rows: Iterable[ProcessInfo] = (),
    ) -> None:
        """``before_settled`` runs before a row of a process that stopped running is written
        (the checkpoint journal folds: a reader that sees a process ended or suspended sees
        all of its checkpoints, and a prune of it cannot race a late fold)."""
        super().__init__(tracker, Endpoint("process log"))
        self.store = store
        self.at_end(store.close)  # after `stopped` wrote what is pending
        self.before_settled = before_settled
        self.pending: dict[int, ProcessInfo] = {info.pid: info for info in rows}
        self.firsts: list[FirstCheckpoint] = []

    def handle(self, message: Any) -> Any:
        if isinstance(message, ProcessInfo):
            self.pending[message.pid] = message
            if self.actor_inbox.empty():
                self._write()
        elif isinstance(message, FirstCheckpoint):
            self.firsts.append(message)
        elif isinstance(message, Sync):
            self._write()
        else:
            self.unhandled(message)
        return None

    def started(self) -> None:
        self._write()

    def stopped(self) -> None:
        self._write()

    def _write(self) -> None:
        if not self.pending:
            return
        firsts = self.firsts
        if self.before_settled is not None and any(
            p.state not in _RUNNING for p in self.pending.values()
        ):
            try:
                self.before_settled()
            except sqlite3.Error:
                log.exception("process log: could not fold the checkpoint journal")

        def first_checkpoints(conn: sqlite3.Connection) -> None:
            for first in firsts:
                write_checkpoint(conn, first.pid, 0, 0, "start", first.state, 0, first.messages)

        try:
            self.store.save_processes(self.pending.values(), first_checkpoints)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError) as exc:
            # A closed or misused connection: crash (an asker too hears of it), so that the
            # restart opens a new one and writes the whole live table again.
            raise Fatal(f"store connection failed: {exc}") from exc
        except sqlite3.Error:
            log.exception("process log: could not write %d process row(s)", len(self.pending))
            return
        self.pending.clear()
        self.firsts = []
