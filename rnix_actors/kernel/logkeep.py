"""Keeping the event logs of finished processes within a `KeepLogs` bound.

`expired` is the policy, a pure function of the closed logs (oldest first), the bound and the
time; `LogKeeper` applies it to ``<state>/proc/<pid>/events.jsonl`` for the event bus, which
tells it each log it closes. Only closed logs are ever removed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from rnix_actors.state import KeepLogs

log = logging.getLogger(__name__)


def expired(
    closed: Iterable[tuple[int, float, int]], keep: KeepLogs, now: float, total: int
) -> list[int]:
    """PIDs whose logs go: ``closed`` is ``(pid, closed_at, size)``, oldest first, and
    ``total`` their summed size.

    The oldest go while they closed more than ``max_age`` seconds ago or while the logs left
    exceed ``max_bytes``. Both conditions only weaken along the list, so it stops at the first
    log that stays (a long-lived host pays for what it removes, not for what it keeps).
    """
    cutoff = None if keep.max_age is None else now - keep.max_age
    gone: list[int] = []
    for pid, closed_at, size in closed:
        too_old = cutoff is not None and closed_at < cutoff
        too_big = keep.max_bytes is not None and total > keep.max_bytes
        if not (too_old or too_big):
            break
        gone.append(pid)
        total -= size
    return gone


class LogKeeper:
    """The closed logs under ``proc_dir``, oldest first, pruned after each close."""

    def __init__(
        self, proc_dir: Path, keep: KeepLogs, clock: Callable[[], float] = time.time
    ) -> None:
        self.proc_dir = proc_dir
        self.keep = keep
        self.clock = clock
        self.removed = 0
        self._closed: OrderedDict[int, tuple[float, int]] = OrderedDict()
        self._bytes = 0

    def scan(self, live: Callable[[int], bool] = lambda pid: False) -> None:
        """Index the logs left by earlier runs (by modification time) and prune them."""
        found: list[tuple[float, int, int]] = []
        with contextlib.suppress(FileNotFoundError):
            for entry in self.proc_dir.iterdir():
                if not entry.name.isdigit() or live(int(entry.name)):
                    continue
                with contextlib.suppress(OSError):
                    stat = (entry / "events.jsonl").stat()
                    found.append((stat.st_mtime, int(entry.name), stat.st_size))
        for mtime, pid, size in sorted(found):
            self._add(pid, mtime, size)
        self.prune()

    def closed(self, pid: int) -> None:
        """The bus closed ``pid``'s log (its process exited)."""
        try:
            size = (self.proc_dir / str(pid) / "events.jsonl").stat().st_size
        except OSError:
            return
        self._add(pid, self.clock(), size)
        self.prune()

    def reopened(self, pid: int) -> None:
        """A late event reopened ``pid``'s log: it is not closed any more."""
        entry = self._closed.pop(pid, None)
        if entry is not None:
            self._bytes -= entry[1]

    def _add(self, pid: int, closed_at: float, size: int) -> None:
        self.reopened(pid)
        self._closed[pid] = (closed_at, size)
        self._bytes += size

    def prune(self) -> None:
        entries = ((pid, at, size) for pid, (at, size) in self._closed.items())
        for pid in expired(entries, self.keep, self.clock(), self._bytes):
            self.reopened(pid)
            self._remove(pid)

    def _remove(self, pid: int) -> None:
        folder = self.proc_dir / str(pid)  # pid is an int: the path cannot leave proc_dir
        try:
            (folder / "events.jsonl").unlink(missing_ok=True)
            folder.rmdir()
            self.removed += 1
        except OSError as exc:  # something else lives there: leave it
            log.warning("could not remove the event log of PID %d: %s", pid, exc)
