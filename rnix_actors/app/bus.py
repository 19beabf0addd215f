"""`BusRef`: the event bus's `ServiceRef`, which also remembers who subscribed.

The subscriber list is the one piece of the bus's state that its users set up once and never
repeat: the immune daemon, topology, planner, shell and IPC streams subscribe when they start.
`BusRef` keeps a copy of every `Subscribe` and `Unsubscribe` that passes through it, and a
restarted bus starts with that list, so a bus crash costs only the events still in the dead
bus's inbox (those published while it was down are held for its successor: `ServiceRef`),
never a subscriber.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka

from rnix_actors.app.service import ServiceRef
from rnix_actors.messages.bus import Subscribe, Unsubscribe


class BusRef(ServiceRef):
    def __init__(self, name: str = "event bus") -> None:
        super().__init__(name)
        # Taken for a subscribe, an unsubscribe and a restart only (never for an event), so
        # that "recorded, then sent to the bus now serving" cannot interleave with a restart.
        self._lock = threading.RLock()
        self._subscribers: dict[int, Subscribe] = {}

    @property
    def subscribers(self) -> tuple[Subscribe, ...]:
        with self._lock:
            return tuple(self._subscribers.values())

    def start_with(self, start: Callable[[tuple[Subscribe, ...]], pykka.ActorRef[Any]]) -> Any:
        """Start a bus incarnation with the recorded subscribers and serve from it."""
        with self._lock:
            ref = start(tuple(self._subscribers.values()))
            self.point(ref)
        return ref

    def point(self, ref: pykka.ActorRef[Any] | None, hold: bool = True) -> None:
        with self._lock:
            if ref is not None and ref is self.current:
                return
            super().point(ref, hold)

    def tell(self, message: Any) -> None:
        if isinstance(message, Subscribe | Unsubscribe):
            with self._lock:
                self._record(message)
                super().tell(message)
            return
        super().tell(message)

    def ask(self, message: Any, block: bool = True, timeout: float | None = None) -> Any:
        if not isinstance(message, Subscribe | Unsubscribe):
            return super().ask(message, block, timeout)
        with self._lock:
            self._record(message)
            try:
                future = super().ask(message, block=False)
            except pykka.ActorDeadError:  # down: the restarted bus starts with it
                future = None
        if future is None or not block:
            return None
        try:
            return future.get(timeout=timeout)
        except pykka.ActorDeadError:  # it died first: its successor starts with it
            return None

    def _record(self, message: Subscribe | Unsubscribe) -> None:
        if isinstance(message, Subscribe):
            self._subscribers[message.key] = message
        else:
            self._subscribers.pop(message.key, None)
