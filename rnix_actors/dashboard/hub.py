"""`ChangeHub`: tells the dashboard's live streams that something changed, and nothing else.

It subscribes to the system's event bus once. Every event bumps a version counter (one lock
and one notify in the bus's thread); a stream blocks in `wait` until the version moves or a
long timeout passes, so an idle dashboard costs no CPU.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from rnix_actors.messages.events import Event


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class EventSource(Protocol):
    def subscribe(
        self, callback: Callable[[Event], None], syscalls: Iterable[str] | None = None
    ) -> Cancellable: ...


class ChangeHub:
    """A version counter moved by the system's events. Thread-safe."""

    def __init__(self) -> None:
        # The bus's thread and actions bump the version; every stream's request thread waits.
        self._cond = threading.Condition()
        self._version = 0
        self._closed = False
        self._subscription: Cancellable | None = None

    def attach(self, source: EventSource) -> None:
        """Start counting ``source``'s events."""
        self._subscription = source.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        self.bump()

    @property
    def version(self) -> int:
        return self._version

    @property
    def closed(self) -> bool:
        return self._closed

    def bump(self) -> None:
        """Something changed (an event arrived, or an action was taken)."""
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until the version differs from ``seen`` (True), ``timeout`` seconds pass or
        the hub closes (False)."""
        with self._cond:
            return (
                self._cond.wait_for(lambda: self._closed or self._version != seen, timeout)
                and not self._closed
            )

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the hub closes first; returns False once closed (a throttle
        between two renders that never delays a shutdown)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed, seconds)
            return not self._closed

    def close(self) -> None:
        """Unsubscribe and wake every waiting stream (they end)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):  # a stopping system's bus may be gone
                subscription.cancel()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
