"""A supervisor's events on their way to the bus.

Events wait in the outbox until the supervisor has acted or is about to block, then go to the
bus in one message: a restart's spawn request leaves before its events do.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pykka

from rnix_actors.kernel.eventbus import EventBus
from rnix_actors.messages.events import Event, EventBatch


class EventOutbox:
    """The events of the supervisor at ``path`` not yet sent (its own thread's only)."""

    def __init__(self, bus: pykka.ActorRef[EventBus], path: str) -> None:
        self.bus = bus
        self.path = path
        self._events: list[Event] = []

    def add(self, syscall: str, child_pid: int | None = None, **args: Any) -> None:
        """Hold a ``syscall`` event of this supervisor (about ``child_pid``, if given)."""
        args["path"] = self.path
        if child_pid is not None:
            args["child_pid"] = child_pid
        self._events.append(
            Event(
                ts=time.time(),
                pid=child_pid or 0,
                template="supervisor",
                step=0,
                syscall=syscall,
                args=args,
            )
        )

    def flush(self) -> None:
        """Send the held events, in one message (a bus already gone drops them)."""
        if self._events:
            events, self._events = tuple(self._events), []
            with contextlib.suppress(pykka.ActorDeadError):
                self.bus.tell(EventBatch(events))
