"""`EventStream`: a system's events for one streaming request, as protocol frames.

A stream subscribes to the event bus, keeps the events of the processes it follows (all of
them, or one PID and the processes it spawns) in a bounded buffer, and yields them as
``event`` frames, ending with exactly one ``end`` frame:

- ``{"reason": "exited" | "suspended", "process": {...}}`` when the followed process settles;
- ``{"reason": "cancelled" | "shutdown"}`` when the client or the daemon ends it;
- ``{"reason": "overflow", "dropped": n}`` when the client reads too slowly and more than
  `MAX_BUFFERED` events or `MAX_BUFFERED_BYTES` of them piled up (the bus thread never blocks
  on a slow client, and a client that never reads costs the daemon at most that much).

Events are buffered in their wire form (long values clipped, as on the wire), so a buffered
event never keeps a tool's large arguments or results alive.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from rnix_actors.errors import SystemStopped
from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.messages.events import Event
from rnix_actors.system import Subscription, System

MAX_BUFFERED = 10_000
MAX_BUFFERED_BYTES = 4 * 1024 * 1024
_ENTRY_OVERHEAD = 200  # a frame's keys and numbers, roughly
CANCEL_CHECK = 1.0
_SETTLED = (ProcessState.DEAD, ProcessState.SUSPENDED)
_Item = tuple[int, str, Any, dict[str, Any], int]


def end_of(info: ProcessInfo) -> dict[str, Any]:
    """The ``end`` frame's data for a settled process."""
    reason = "suspended" if info.state is ProcessState.SUSPENDED else "exited"
    return {"reason": reason, "process": info.to_dict()}


class EventStream:
    """Frames for one request. `frames` is iterated by one thread; `cancel` from any.

    ``root`` None follows every process; otherwise the root PID and its descendants, and the
    stream ends when the root exits — or, with ``until_suspended`` (``follow``, ``run``), also
    when it is suspended, like `System.wait`. ``watch PID`` stays through a suspension.
    Constructing subscribes; raises `SystemStopped` if the system is not running.

    The end is found on the process table, not from events (an observer cannot order an
    ``Exit`` event against the table's update); once it is found the bus is flushed, so every
    event published before it is yielded before the ``end`` frame.
    """

    def __init__(
        self, system: System, root: int | None = None, *, until_suspended: bool = False
    ) -> None:
        self._system = system
        # The buffer and the end: filled on the bus's thread (`_on_event`), settled by the
        # waiter thread, drained by the one thread iterating `frames` (which waits on it) and
        # cancelled from any thread. A subscriber callback has no actor to own them.
        self._cond = threading.Condition()
        # (pid, syscall, ppid of a Start, wire form, approximate size)
        self._buffer: collections.deque[_Item] = collections.deque()
        self._bytes = 0
        self._end: dict[str, Any] | None = None  # cancelled: ends before the backlog
        self._final: dict[str, Any] | None = None  # settled: ends after the backlog
        self._dropped = 0
        self._root = root
        self._pending_root = False
        self._pids: set[int] = set() if root is None else {root}
        self._settled = _SETTLED if until_suspended else (ProcessState.DEAD,)
        self._subscription: Subscription | None = system.subscribe(self._on_event)
        if root is not None:
            self._start_waiter()

    @classmethod
    def for_spawn(cls, system: System, spawn: Callable[[], int]) -> tuple[EventStream, int]:
        """Subscribe, then spawn: no event of the new process is missed. Raises what
        ``spawn`` raises (after unsubscribing)."""
        stream = cls(system, None, until_suspended=True)
        with stream._cond:
            stream._pending_root = True
        try:
            pid = spawn()
        except BaseException:
            stream.close()
            raise
        with stream._cond:
            stream._root, stream._pids = pid, {pid}
            stream._pending_root = False
            kept = [item for item in stream._buffer if stream._keep(*item[:3])]
            stream._buffer = collections.deque(kept)
            stream._bytes = sum(item[4] for item in kept)
        stream._start_waiter()
        return stream, pid

    # -- bus thread ----------------------------------------------------------------------------
    def _keep(self, pid: int, syscall: str, ppid: Any) -> bool:
        """Called with the lock held: does this stream want the event? Learns descendants."""
        if self._root is None:
            return True
        if pid in self._pids:
            return True
        if syscall == "Start" and ppid in self._pids:
            self._pids.add(pid)
            return True
        return False

    def _on_event(self, event: Event) -> None:
        with self._cond:
            ppid = event.args.get("ppid") if event.syscall == "Start" else None
            if self._end is not None or not (
                self._pending_root or self._keep(event.pid, event.syscall, ppid)
            ):
                return
            if self._dropped or len(self._buffer) >= MAX_BUFFERED:
                self._dropped += 1
                return
            data = event.to_dict()  # clipped: drops the references to large values
            size = _ENTRY_OVERHEAD + _text_size(data["args"]) + _text_size(data["result"])
            if self._bytes + size > MAX_BUFFERED_BYTES:
                self._dropped += 1
                return
            self._buffer.append((event.pid, event.syscall, ppid, data, size))
            self._bytes += size
            self._cond.notify_all()

    @property
    def buffered(self) -> tuple[int, int, int]:
        """(events, approximate bytes, dropped) waiting for the client, for tests and status."""
        with self._cond:
            return len(self._buffer), self._bytes, self._dropped

    # -- the settle waiter ---------------------------------------------------------------------
    def _start_waiter(self) -> None:
        thread = threading.Thread(target=self._wait_settled, name="rnix-stream-settle")
        thread.daemon = True
        thread.start()

    def _cancelled(self) -> bool:
        with self._cond:
            return self._end is not None

    def _wait_settled(self) -> None:
        root, settled = self._root, self._settled
        assert root is not None
        info: ProcessInfo | None = None
        # TODO(System API): a cancellable System.wait(pid, states=...) would replace the
        # re-check below, which only exists to notice a cancelled stream within a second.
        while info is None and not self._cancelled():
            if self._system.table.get(root) is None:
                break
            info = self._system.table.wait_for(
                root, lambda p: p.state in settled, timeout=CANCEL_CHECK
            )
        with contextlib.suppress(Exception):  # a stopping system: deliver what we have
            self._system.sync_events()
        with self._cond:
            self._final = end_of(info) if info is not None else {"reason": "exited"}
            self._cond.notify_all()

    # -- consumer --------------------------------------------------------------------------------
    def cancel(self, reason: str = "cancelled") -> None:
        """End the stream (idempotent); the consumer gets an ``end`` frame with ``reason``."""
        with self._cond:
            if self._end is None:
                self._end = {"reason": reason}
            self._cond.notify_all()

    def close(self) -> None:
        """Unsubscribe. Safe to call more than once and after the system stopped."""
        self.cancel()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(SystemStopped):
                subscription.cancel()

    def frames(self) -> Iterator[dict[str, Any]]:
        """Yield ``event`` frames, then one ``end`` frame; unsubscribes when done."""
        try:
            while True:
                event, end = self._next()
                if event is None:
                    yield {"frame": "end", "data": end}
                    return
                yield {"frame": "event", "data": event}
        finally:
            self.close()

    def _next(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        with self._cond:
            while not (self._buffer or self._end or self._final or self._dropped):
                self._cond.wait()
            if self._end is not None:  # cancelled: stop now, not after the backlog
                return None, self._end
            if self._dropped:
                return None, {"reason": "overflow", "dropped": self._dropped}
            if self._buffer:
                *_, data, size = self._buffer.popleft()
                self._bytes -= size
                return data, None
            return None, self._final


def _text_size(value: Any) -> int:
    """Characters of text in a clipped value (each string is at most a few KB)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(str(k)) + _text_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(_text_size(v) for v in value)
    return 8
