"""The event bus: fans every `Event` out to subscribers and appends it to the process's
``events.jsonl`` under the state dir. With a `KeepLogs` bound, the logs of finished processes
are pruned as they close (`rnix_actors.kernel.logkeep`).

Subscribers are callables run in the bus's thread: they must be quick (an actor subscriber
should just ``tell`` itself the event). A subscriber that raises is logged and kept; one bad
subscriber never stops the others or the log.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import attrs

from rnix_actors.kernel.base import RnixActor, ThreadTracker
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.logkeep import LogKeeper
from rnix_actors.messages.bus import Flush, Subscribe, Subscriber, Unsubscribe
from rnix_actors.messages.events import Event, EventBatch
from rnix_actors.privatefs import private_dir, private_open
from rnix_actors.redact import redact_value
from rnix_actors.state import KeepLogs

log = logging.getLogger(__name__)

MAX_OPEN_LOGS = 64


def events_path(state_dir: Path, pid: int) -> Path:
    return state_dir / "proc" / str(pid) / "events.jsonl"


class EventBus(RnixActor):
    def __init__(
        self,
        state_dir: Path | None,
        tracker: ThreadTracker | None = None,
        keep: KeepLogs | None = None,
        subscribers: Iterable[Subscribe] = (),
    ) -> None:
        super().__init__(tracker, Endpoint("event bus"))
        self.state_dir = state_dir
        self.keeper: LogKeeper | None = None
        if state_dir is not None and keep is not None and keep.bounded:
            self.keeper = LogKeeper(state_dir / "proc", keep)
        self.subscribers: dict[int, tuple[Subscriber, frozenset[str] | None]] = {}
        self._wild: tuple[Subscriber, ...] = ()  # subscribers of every event
        self._targets: dict[str, tuple[Subscriber, ...]] = {}  # syscall -> all who want it
        self._files: OrderedDict[int, IO[bytes]] = OrderedDict()
        self._dirty: set[int] = set()
        self.delivered = 0
        self.subscriber_errors = 0
        self.unwritable: set[int] = set()  # PIDs whose events.jsonl could not be written
        for subscribe in subscribers:  # a restarted bus serves its predecessor's subscribers
            self.subscribers[subscribe.key] = (subscribe.callback, subscribe.syscalls)
        self._rebuild()

    def started(self) -> None:
        if self.keeper is not None:
            self.keeper.scan()  # logs left by earlier runs count against the bound too

    def handle(self, message: Any) -> Any:
        if isinstance(message, EventBatch):
            self._publish(message.events)
        elif isinstance(message, Event):
            self._publish((message,))
        elif isinstance(message, Subscribe):
            self.subscribers[message.key] = (message.callback, message.syscalls)
            self._rebuild()
        elif isinstance(message, Unsubscribe):
            self.subscribers.pop(message.key, None)
            self._rebuild()
        elif isinstance(message, Flush):
            for pid in list(self._files):
                self._flush(pid)
        else:
            self.unhandled(message)
        return None

    def _rebuild(self) -> None:
        # Subscription order is kept, so every subscriber sees events in publication order.
        entries = list(self.subscribers.values())
        self._wild = tuple(cb for cb, names in entries if names is None)
        wanted = {name for _, names in entries if names for name in names}
        self._targets = {
            name: tuple(cb for cb, names in entries if names is None or name in names)
            for name in wanted
        }

    def _publish(self, events: tuple[Event, ...]) -> None:
        events = tuple(map(redact_event, events))
        if self.state_dir is not None:
            self._append(events)
        wild, targets = self._wild, self._targets
        for event in events:
            for callback in targets.get(event.syscall, wild):
                try:
                    callback(event)
                except Exception:
                    # One bad event for one subscriber: log it and go on.
                    self.subscriber_errors += 1
                    log.exception("event subscriber %r failed", callback)
        self.delivered += len(events)

    def _append(self, events: tuple[Event, ...]) -> None:
        # A batch comes from one process, but the kernel's single events may be any PID.
        pid = events[0].pid
        if all(event.pid == pid for event in events):
            self._write(pid, b"".join(event.to_json_bytes() + b"\n" for event in events), events)
        else:
            for event in events:
                self._write(event.pid, event.to_json_bytes() + b"\n", (event,))
        if self._dirty and self.actor_inbox.empty():
            # Flush when idle: batches writes under load, timely when quiet.
            for dirty in self._dirty:
                self._flush(dirty)
            self._dirty.clear()

    def _write(self, pid: int, data: bytes, events: tuple[Event, ...]) -> None:
        if pid in self.unwritable:
            return
        try:
            self._write_log(pid, data, events)
        except OSError as exc:
            # One process's log (a full disk, a path made unwritable) must not take the bus,
            # and with it every subscriber and every other log, down: that log is given up.
            self.unwritable.add(pid)
            handle = self._files.pop(pid, None)
            self._dirty.discard(pid)
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()
            log.error("PID %d: events.jsonl cannot be written, its log stops here: %s", pid, exc)

    def _write_log(self, pid: int, data: bytes, events: tuple[Event, ...]) -> None:
        handle = self._files.get(pid)
        if handle is None:
            assert self.state_dir is not None
            path = events_path(self.state_dir, pid)
            private_dir(path.parent)
            handle = private_open(path, "ab")
            self._files[pid] = handle
            if self.keeper is not None:
                self.keeper.reopened(pid)
            # Bounded open files: a system with thousands of processes must not hit ulimit.
            while len(self._files) > MAX_OPEN_LOGS:
                old_pid, old = self._files.popitem(last=False)
                old.close()
                self._dirty.discard(old_pid)
        else:
            self._files.move_to_end(pid)
        handle.write(data)
        if events[-1].syscall == "Exit":
            handle.close()
            del self._files[pid]
            self._dirty.discard(pid)
            if self.keeper is not None:
                self.keeper.closed(pid)
        else:
            self._dirty.add(pid)

    def _flush(self, pid: int) -> None:
        try:
            self._files[pid].flush()
        except OSError as exc:
            self.unwritable.add(pid)
            with contextlib.suppress(OSError):
                self._files.pop(pid).close()
            log.error("PID %d: events.jsonl cannot be written, its log stops here: %s", pid, exc)

    def stopped(self) -> None:
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._files.clear()


def redact_event(event: Event) -> Event:
    """The event with every secret fragment in its args, result and error redacted (the same
    object when there is none, which is almost always)."""
    args, result, error = redact_value(event.args), redact_value(event.result), None
    error = redact_value(event.error) if event.error else event.error
    if args is event.args and result is event.result and error is event.error:
        return event
    return attrs.evolve(event, args=args, result=result, error=error)
