"""`Subscription`: what `System.subscribe` returns."""

from __future__ import annotations

import contextlib
from typing import Any

import pykka

from rnix_actors.errors import SystemStopped, WouldDeadlock
from rnix_actors.kernel.asking import ask
from rnix_actors.messages.bus import Unsubscribe

ASK_TIMEOUT = 30.0


class Subscription:
    """One subscriber of the event bus; `cancel` it (or leave its ``with`` block) to stop.

    Use ``with system.subscribe(cb) as sub:`` to cancel on exit. A subscription also ends
    when the system stops.
    """

    def __init__(self, bus: Any, key: int) -> None:  # an ActorRef or the bus's ServiceRef
        self._bus = bus
        self.key = key

    def cancel(self) -> None:
        """Stop the deliveries: when it returns, the callback is not called again (the bus
        handles it in order, after the events already queued). Cancelling twice, or after
        the system stopped, does nothing. From the callback itself it raises `WouldDeadlock`
        (it waits for the bus, whose thread runs the callback): there, use `cancel_soon`."""
        # Asked even of a bus that is down: a restarting bus must not bring the callback back.
        try:
            ask(self._bus, Unsubscribe(self.key), ASK_TIMEOUT, "event bus")
        except SystemStopped:  # it stopped meanwhile: nothing to end
            pass
        except WouldDeadlock:
            raise WouldDeadlock(
                "Subscription.cancel() from the callback itself waits for the event bus, "
                "whose thread runs the callback: use cancel_soon() there"
            ) from None

    def cancel_soon(self) -> None:
        """Ask the bus to stop the deliveries without waiting (callbacks may see a few more
        events); safe from any thread, including the callback's."""
        with contextlib.suppress(pykka.ActorDeadError):  # stopped: nothing to end
            self._bus.tell(Unsubscribe(self.key))

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()
