"""Asking a system actor from the public API, with our errors instead of Pykka's.

Pykka raises ``pykka.ActorDeadError`` when the actor stopped (the system is stopping) and
``pykka.Timeout`` when it did not answer; neither is part of our API. `ask` turns them into
`SystemStopped` and `Unresponsive`; an actor that crashed answering (`Fatal`: a service
whose supervisor restarts it) is `Unresponsive` too. An ask made on the asked actor's own
thread (a `subscribe` callback asking the event bus) would wait on itself: `WouldDeadlock`,
at once. The actor's own exceptions (`SpawnError`, `NoSuchProcess`, ...) pass through
unchanged.
"""

from __future__ import annotations

from typing import Any

import pykka

from rnix_actors.errors import SystemStopped, Unresponsive, WouldDeadlock
from rnix_actors.kernel.base import Fatal, current_actor_urn


def ask(ref: Any, message: Any, timeout: float, what: str) -> Any:
    """``ref.ask(message)`` within ``timeout`` seconds; ``what`` names the actor in errors.
    ``ref`` is a `pykka.ActorRef` or anything that asks like one (a `ServiceRef`)."""
    here = current_actor_urn()
    if here is not None and here == getattr(ref, "actor_urn", None):
        raise WouldDeadlock(
            f"this call waits for the {what} and runs on the {what}'s own thread (a subscribe "
            "callback runs on the event bus's): it would wait on itself; make it from "
            "another thread"
        )
    try:
        return ref.ask(message, block=True, timeout=timeout)
    except pykka.ActorDeadError:
        raise SystemStopped(f"the system is stopping: the {what} is gone") from None
    except pykka.Timeout:
        raise unresponsive(what, timeout) from None
    except Fatal as exc:
        raise Unresponsive(
            f"the {what} crashed ({exc}); its supervisor restarts it, and the request may "
            "still take effect"
        ) from None


def unresponsive(what: str, timeout: float) -> Unresponsive:
    """The error for the actor ``what`` that did not answer within ``timeout`` seconds."""
    return Unresponsive(
        f"the {what} did not answer within {timeout:g}s (overloaded, or stuck behind a "
        "long call); the request may still take effect"
    )
