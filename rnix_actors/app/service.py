"""`ServiceRef`: the stable reference to a system service that its supervisor may restart.

A service (the event bus, the process log, the kernel, the immune daemon...) is one Pykka
actor at a time, but it is an identity for everyone who talks to it: the kernel tells the bus
its events, every agent process holds the kernel. A `ServiceRef` is handed out once and keeps
that identity; when the application supervisor restarts the service it points the same
`ServiceRef` at the new actor, so nobody holds a dead ref after a restart.

It quacks like the `pykka.ActorRef` it stands for (``tell``, ``ask``, ``proxy``, ``stop``,
``is_alive``). Between a crash and the restart (a few milliseconds on the supervisor's thread)
the service has no actor: a ``tell`` then is dropped and counted in ``dropped`` (an event
published at that moment is lost, never an exception in the sender), an ``ask`` raises
`pykka.ActorDeadError` as a dead ref would. ``stop`` retires the service (see `stop`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pykka


class ServiceRef:
    """The current actor of the service ``name`` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        ref: pykka.ActorRef[Any] | None = None,
        retire: Callable[[float | None], None] | None = None,
    ) -> None:
        self.name = name
        self._retire = retire
        # One attribute, read once per call: re-pointing it needs no lock (an assignment is
        # atomic), which keeps the bus's hot path (every event is a ``tell`` here) lock-free.
        self._ref = ref
        self.dropped = 0
        self.incarnation = 0 if ref is None else 1

    def __repr__(self) -> str:
        return f"<ServiceRef {self.name} #{self.incarnation}>"

    def set_retire(self, retire: Callable[[float | None], None]) -> None:
        """The supervisor's: what `stop` does."""
        self._retire = retire

    @property
    def current(self) -> pykka.ActorRef[Any] | None:
        """The actor now serving (None while the service is down)."""
        return self._ref

    def point(self, ref: pykka.ActorRef[Any] | None) -> None:
        """The service's supervisor: ``ref`` serves from now on (None: it is down)."""
        if ref is not None:
            self.incarnation += 1
        self._ref = ref

    @property
    def actor_urn(self) -> str:
        ref = self._ref
        return "" if ref is None else ref.actor_urn

    @property
    def actor_inbox(self) -> Any:
        """The current actor's inbox (`rnix_actors.aio` queues its asks there)."""
        ref = self._ref
        if ref is None:
            raise pykka.ActorDeadError(f"{self.name} is not running (restarting or stopped)")
        return ref.actor_inbox

    def tell(self, message: Any) -> None:
        ref = self._ref
        if ref is None:
            self.dropped += 1
            return
        try:
            ref.tell(message)
        except pykka.ActorDeadError:  # crashed, its supervisor has not restarted it yet
            self.dropped += 1

    def ask(self, message: Any, block: bool = True, timeout: float | None = None) -> Any:
        ref = self._ref
        if ref is None:
            raise pykka.ActorDeadError(f"{self.name} is not running (restarting or stopped)")
        return ref.ask(message, block=block, timeout=timeout)

    def proxy(self) -> Any:
        ref = self._ref
        if ref is None:
            raise pykka.ActorDeadError(f"{self.name} is not running (restarting or stopped)")
        return ref.proxy()

    def is_alive(self) -> bool:
        ref = self._ref
        return ref is not None and ref.is_alive()

    def stop(self, block: bool = True, timeout: float | None = None) -> Any:
        """Retire the service: its supervisor stops it and forgets it (no restart). To see
        what a crash does, stop ``current`` instead: that one is restarted."""
        if self._retire is not None:
            self._retire(timeout)
            return True
        ref = self._ref
        if ref is None:
            return None
        with contextlib.suppress(pykka.ActorDeadError):
            return ref.stop(block=block, timeout=timeout)
        return None
