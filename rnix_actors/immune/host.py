"""What the immune system needs from the system it watches (`rnix_actors.System` fits).

Defined here, structurally, so that the immune package never imports the public API above
it: the kernel knows nothing of the immune system, and the immune system knows
the kernel only through events, guards and signals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from rnix_actors.kernel.process import ProcessInfo, Signal
from rnix_actors.messages.events import Event
from rnix_actors.messages.guards import Guard


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class ImmuneHost(Protocol):
    def subscribe(
        self, callback: Callable[[Event], None], syscalls: Iterable[str] | None = None
    ) -> Cancellable:
        """Call ``callback`` for every event (in the event bus's thread)."""
        ...

    def publish(self, event: Event) -> None:
        """Publish ``event`` on the event bus (subscribers and the process's log)."""
        ...

    def add_guard(self, guard: Guard) -> None:
        """Install a guard for processes spawned from now on."""
        ...

    def remove_guard(self, guard: Guard) -> None:
        """Processes spawned from now on are not shown to ``guard``."""
        ...

    def kill(self, pid: int, signal: Signal | str = ..., origin: str = ...) -> str: ...

    def resume(self, pid: int, origin: str = ..., retry: bool = ...) -> str: ...

    def info(self, pid: int) -> ProcessInfo:
        """Raises `rnix_actors.errors.NoSuchProcess` for an unknown pid."""
        ...

    def ps(self) -> list[ProcessInfo]:
        """The live (not finished) processes."""
        ...
