"""`ServiceRef`: the stable reference to a system service that its supervisor may restart.

A service (the event bus, the process log, the kernel, the immune daemon...) is one Pykka
actor at a time, but it is an identity for everyone who talks to it: the kernel tells the bus
its events, every agent process holds the kernel. A `ServiceRef` is handed out once and keeps
that identity; when the application supervisor restarts the service it points the same
`ServiceRef` at the new actor, so nobody holds a dead ref after a restart.

It quacks like the `pykka.ActorRef` it stands for (``tell``, ``ask``, ``proxy``, ``stop``,
``is_alive``). Between a crash and the restart (a few milliseconds on the supervisor's thread)
the service has no actor: a ``tell`` then is held, in order, and delivered to the restarted
actor before anything told after it (an event published at that moment reaches the new bus,
a process row the new process log; never an exception in the sender). Only what was already
in the dead actor's inbox is gone, which is why a restarted service rebuilds its state from
its owner (the process log from the live table, the bus's subscribers from `BusRef`). At most
`HOLD_LIMIT` messages are held; beyond that, and once the service is retired or the system
failed, a ``tell`` is dropped and counted in ``dropped``. An ``ask`` while the service is down
raises `pykka.ActorDeadError` as a dead ref would. ``stop`` retires the service (see `stop`).
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import pykka

HOLD_LIMIT = 10_000


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
        # Taken only off the hot path: by a tell that found no live actor, and by `point`, so
        # that the messages held while the service is down are delivered before any later one.
        self._hold_lock = threading.Lock()
        self._held: deque[Any] = deque()
        self._holding = True  # False once retired: nothing will serve what is held

    def __repr__(self) -> str:
        return f"<ServiceRef {self.name} #{self.incarnation}>"

    def set_retire(self, retire: Callable[[float | None], None]) -> None:
        """The supervisor's: what `stop` does."""
        self._retire = retire

    @property
    def current(self) -> pykka.ActorRef[Any] | None:
        """The actor now serving (None while the service is down)."""
        return self._ref

    def point(self, ref: pykka.ActorRef[Any] | None, hold: bool = True) -> None:
        """The service's supervisor: ``ref`` serves from now on, after the messages held
        while it was down. None: it is down, and with ``hold`` false it will stay down (what
        is held is dropped)."""
        with self._hold_lock:
            if ref is None:
                self._ref = None
                self._holding = hold
                if not hold:
                    self.dropped += len(self._held)
                    self._held.clear()
                return
            self.incarnation += 1
            self._holding = True
            try:
                while self._held:
                    ref.tell(self._held[0])
                    self._held.popleft()
            except pykka.ActorDeadError:  # died at once: its successor gets the rest
                pass
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
        if ref is not None:
            try:
                ref.tell(message)
                return
            except pykka.ActorDeadError:  # crashed, its supervisor has not restarted it yet
                pass
        with self._hold_lock:
            ref = self._ref
            if ref is not None and not self._held:
                try:
                    ref.tell(message)  # restarted meanwhile
                    return
                except pykka.ActorDeadError:
                    pass
            if self._holding and len(self._held) < HOLD_LIMIT:
                self._held.append(message)
            else:
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
