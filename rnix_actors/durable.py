"""Durable processes, the system's side: recovery at start, graceful stop, resume.

When a system starts on a state dir that no other live system uses (``kernel.lock``, an
``flock``), it looks at what the previous one left: processes still marked running (the
system was killed) become ``lost`` and keep their last checkpoint; suspended processes with a
checkpoint come back as suspended and resume on SIGRESUME (``rnix resume``, ``rnix immune
resume``). A graceful stop (`System.stop` with ``checkpoint=True``, ``rnix daemon stop``)
pauses every running process at its next step boundary, so that each is checkpointed and
listed as suspended on the next start. See docs/durability.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from pathlib import Path
from typing import IO

import attrs

from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.messages.links import ExitKind
from rnix_actors.privatefs import private_open
from rnix_actors.store.checkpoints import CheckpointStore
from rnix_actors.store.db import Store

log = logging.getLogger(__name__)

STOP_ORIGIN = "system stop"
LOST_NO_CHECKPOINT = "lost: its system stopped and it has no checkpoint (kernel.checkpoints off)"


class StateLock:
    """``<state>/kernel.lock``: held shared by every live system of the state dir; taken
    exclusively for a moment at start, so that only a system alone on the dir recovers."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "kernel.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock; True when no other live system holds it (recovery may run)."""
        handle = private_open(self.path, "a+")
        alone = True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alone = False
        self._handle = handle
        return alone

    def share(self) -> None:
        """Hold the lock shared from now on (blocks while a starting system recovers)."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_SH)

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


@attrs.frozen
class Recovery:
    lost: tuple[int, ...] = ()
    suspended: tuple[ProcessInfo, ...] = ()  # listed as suspended (resumable), at depth 0


def recover(store: Store, checkpoints: CheckpointStore) -> Recovery:
    """Mark what a dead system left behind (see the module doc)."""
    lost, suspended = checkpoints.recover()
    has = checkpoints.counts(suspended)
    resumable: list[ProcessInfo] = []
    orphans: list[ProcessInfo] = []
    for pid in suspended:
        info = store.get_process(pid)
        if info is None:
            continue
        if pid in has:
            resumable.append(attrs.evolve(info, ppid=0, depth=0, children=()))
        else:
            reason = LOST_NO_CHECKPOINT
            orphans.append(
                attrs.evolve(
                    info,
                    state=ProcessState.LOST,
                    exit_reason=reason,
                    exit_kind=str(ExitKind.LOST),
                    ended_at=time.time(),
                )
            )
    if orphans:
        store.save_processes(orphans)
    if resumable:
        store.save_processes(resumable)  # depth 0, no parent: they resume on their own
    if lost or resumable:
        log.info(
            "recovered %d lost and %d suspended process(es) of a previous system",
            len(lost) + len(orphans),
            len(resumable),
        )
    return Recovery(tuple(lost) + tuple(o.pid for o in orphans), tuple(resumable))


def suspend_all(table: ProcessTable, pause: object, timeout: float) -> list[int]:
    """Pause every running process and wait (up to ``timeout``) until each has suspended or
    ended; returns the PIDs still running after that. ``pause(pid)`` sends the SIGPAUSE."""
    running = [p.pid for p in table.list() if p.state is ProcessState.RUNNING and p.ppid == 0]
    for pid in running:
        with contextlib.suppress(Exception):
            pause(pid)  # type: ignore[operator]
    deadline = time.monotonic() + timeout
    left = []
    for info in table.list():
        if info.state is not ProcessState.RUNNING:
            continue
        remaining = max(0.0, deadline - time.monotonic())
        done = table.wait_for(info.pid, lambda p: p.state is not ProcessState.RUNNING, remaining)
        if done is None:
            left.append(info.pid)
    return left
