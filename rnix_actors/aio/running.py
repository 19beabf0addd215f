"""``AsyncSystem.run`` with one wake-up of the loop per process.

The kernel answers the spawn with a `SpawnWatch` (a Pykka future) whose ``set`` runs in the
kernel's thread: it records the PID and asks the process table to call back when the process
settles, and only that callback wakes the loop. A spawn and a wait done apart would wake it
twice (once for the PID, once for the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any

import pykka
from pykka import ThreadingFuture

from rnix_actors.errors import SystemStopped
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.kernel.table import TableView


class SpawnWatch(ThreadingFuture[Any]):
    """The reply to a run's `SpawnRequest`: watches the new PID until it settles."""

    def __init__(
        self,
        table: TableView,
        settled: Callable[[ProcessInfo], bool],
        done: asyncio.Future[ProcessInfo],
    ) -> None:
        super().__init__()
        self._table = table
        self._settled = settled
        self._done = done
        self._loop = done.get_loop()
        # `set` (the kernel's thread) and `stop_watching` (the loop's) race on the watch: a run
        # cancelled as its PID arrives never leaves the table calling back.
        self._lock = threading.Lock()
        self._drop: Callable[[], None] | None = None
        self._stopped = False
        self.pid: int | None = None
        self.replied = threading.Event()

    # -- the kernel's thread ------------------------------------------------------------------
    def set(self, value: Any | None = None) -> None:
        with self._lock:
            self.pid = int(value)  # type: ignore[arg-type]
            if not self._stopped:
                self._drop = self._table.when(self.pid, self._settled, self._finish)
        self.replied.set()

    def set_exception(self, exc_info: Any = None) -> None:
        exc = (exc_info or sys.exc_info())[1]
        if isinstance(exc, pykka.ActorDeadError):
            exc = SystemStopped("the system is stopping: the kernel is gone")
        self._forward(_set_exception, exc)
        self.replied.set()

    def _finish(self, info: ProcessInfo) -> None:  # the kernel's thread, or the loop's
        self._forward(_set_result, info)

    def _forward(self, fn: Callable[[asyncio.Future[Any], Any], None], value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(fn, self._done, value)

    # -- the loop's thread --------------------------------------------------------------------
    def stop_watching(self) -> None:
        """The run was cancelled or timed out: forget the process (it keeps running)."""
        with self._lock:
            self._stopped = True
            drop, self._drop = self._drop, None
        if drop is not None:
            drop()


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
