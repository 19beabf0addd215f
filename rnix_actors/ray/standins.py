"""What a process on a host holds where a local process holds the kernel's parts.

An `AgentProcess` on a Ray host runs unchanged: its ``spec.kernel``, event bus, checkpoint
store and the watcher of its endpoint are these stand-ins, which put what it sends into the
host's outbox (or ask the head and wait for the answer) instead of reaching a local actor.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol

from rnix_actors.messages.events import EventBatch
from rnix_actors.messages.links import ExitReason
from rnix_actors.ray.outbox import Outbox
from rnix_actors.ray.wire import CheckpointWrite, Events

ASK_TIMEOUT = 10.0
WRITE_TIMEOUT = 30.0  # seconds a process waits for the head to write its checkpoint


class Host(Protocol):
    """The calls of `rnix_actors.ray.host.AgentHost` the stand-ins make."""

    def to_kernel(self, message: object) -> None: ...

    def ask_head(self, message: object, timeout: float) -> Any: ...

    def ended(self, pid: int, reason: ExitReason) -> None: ...


class HeadKernel:
    """What an agent here holds as ``spec.kernel``: tells and asks travel to the head."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def tell(self, message: object) -> None:
        self._host.to_kernel(message)

    def ask(self, message: object, block: bool = True, timeout: float | None = None) -> Any:
        return self._host.ask_head(message, ASK_TIMEOUT if timeout is None else timeout)


class HeadBus:
    """What an agent here holds as its event bus: events go to the outbox, for the head's."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def tell(self, message: object) -> None:
        if isinstance(message, EventBatch):
            self._outbox.put(Events(message.events))
        else:
            self._outbox.put(Events((message,)))


class HeadCheckpoints:
    """Stands in for the `CheckpointStore` of a process here: each checkpoint is committed by
    the head's store, and the process waits until it is durable, as it would locally."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def append(
        self, pid: int, seq: int, step: int, kind: str, first: int, messages: int, data: str
    ) -> None:
        write = CheckpointWrite(pid, seq, step, kind, first, messages, data)
        try:
            self._host.ask_head(write, WRITE_TIMEOUT)
        except Exception as exc:  # the Checkpointer logs a store error and goes on
            raise sqlite3.OperationalError(f"the head did not write it: {exc}") from None


class Watcher:
    """Stands in for an actor ref: the `Down` of each hosted process goes to the outbox."""

    def __init__(self, host: Host) -> None:
        self._host = host

    def tell(self, message: object) -> None:
        pid = getattr(message, "pid", None)
        reason = getattr(message, "reason", None)
        if isinstance(pid, int) and isinstance(reason, ExitReason):
            self._host.ended(pid, reason)
