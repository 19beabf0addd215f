"""`EventStream`: the events of a system as an async iterator, through a bounded queue.

The event bus calls the stream's callback in its own thread; the callback appends to a queue of
at most ``maxsize`` events and wakes the consumer only when it waits, so a busy stream costs one
lock per event and no loop wake-up. The bus never waits for a consumer: when the queue is full
the **oldest** event is dropped, and the consumer is told, in order, by an `EventsDropped` item
before the first event that followed the gap (and by `EventStream.dropped`, the total).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType

import attrs

from rnix_actors.messages.events import Event
from rnix_actors.subscription import Subscription

DEFAULT_MAXSIZE = 10_000


@attrs.frozen
class EventsDropped:
    """``count`` events were dropped here because the consumer fell behind (drop-oldest)."""

    count: int


class EventStream:
    """``async for item in system.events(...)``: each item is an `Event` or `EventsDropped`.

    Subscribed from the moment `AsyncSystem.events` returns (an event published after that is
    not missed unless dropped). It ends (``StopAsyncIteration``) after `aclose`, at the end of
    its ``async with`` block, or when the system stops; events queued before that are still
    delivered.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        maxsize: int,
        subscribe: Callable[[Callable[[Event], None]], Subscription],
        on_close: Callable[[EventStream], None] = lambda stream: None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1 (got {maxsize})")
        self.maxsize = maxsize
        self.dropped = 0
        self._loop = loop
        self._lock = threading.Lock()  # the queue and waiter: the bus's thread and the loop's
        self._queue: deque[Event] = deque()
        self._gap = 0  # dropped since the consumer last heard of it
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._on_close = on_close
        self._subscription = subscribe(self._push)

    # -- the bus's side (its thread) ----------------------------------------------------------
    def _push(self, event: Event) -> None:
        with self._lock:
            if self._closed:
                return
            if len(self._queue) >= self.maxsize:
                self._queue.popleft()
                self._gap += 1
                self.dropped += 1
            self._queue.append(event)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._wake(waiter)

    def _wake(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(_resolve, waiter)

    # -- the consumer's side (the loop) --------------------------------------------------------
    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event | EventsDropped:
        while True:
            with self._lock:
                if self._gap:
                    gap, self._gap = self._gap, 0
                    return EventsDropped(gap)
                if self._queue:
                    return self._queue.popleft()
                if self._closed:
                    raise StopAsyncIteration
                waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None

    def pending(self) -> int:
        """Events queued and not yet consumed."""
        with self._lock:
            return len(self._queue)

    def close_soon(self) -> None:
        """End the stream without waiting for the bus (safe from any thread)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiter, self._waiter = self._waiter, None
        self._subscription.cancel_soon()
        if waiter is not None:
            self._wake(waiter)
        self._on_close(self)

    async def aclose(self) -> None:
        """Unsubscribe; the consumer gets what is queued, then the end of the stream."""
        self.close_soon()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
