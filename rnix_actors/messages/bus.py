"""Messages of the event bus: subscriptions, flushes, the process log's word that a process's
log may close."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from rnix_actors.messages.events import Event

Subscriber = Callable[[Event], None]


@attrs.frozen
class Subscribe:
    """``syscalls``: deliver only events with these names (None: every event). A filter is
    applied by the bus with one lookup per event, so filtered subscribers cost nothing for the
    events they do not want."""

    key: int
    callback: Subscriber
    syscalls: frozenset[str] | None = None


@attrs.frozen
class Unsubscribe:
    key: int


@attrs.frozen
class Flush:
    """Flush every open log (answered when done)."""


@attrs.frozen
class ProcessLogClosed:
    pid: int
