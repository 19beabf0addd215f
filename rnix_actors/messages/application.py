"""The application supervisor's protocol: the system's own services under one root.

`rnix_actors.app.Application` answers these; `rnix_actors.System` is its only client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from rnix_actors.messages.links import ExitReason


@attrs.frozen(eq=False)
class ServiceSpec:
    """One service of the system: how to start one incarnation, how to stop it.

    ``start`` runs on the application's thread and returns the new actor's ref (an
    `rnix_actors.kernel.base.RnixActor`: its endpoint is what the application links to).
    ``stop(ref, timeout)`` stops one incarnation in order (flush, then stop); it must not
    raise. ``restart`` is the supervision restart type (``permanent``: restarted after any
    exit). ``handle``: a ready `ServiceRef` (the bus's remembers its subscribers). A
    ``vital`` service is one the system cannot run without (the kernel): when it ends, the
    application stops every other service in reverse order and the system fails with that
    service's reason, instead of restarting it.
    """

    name: str
    start: Callable[[], Any]
    stop: Callable[[Any, float], None]
    restart: str = "permanent"
    vital: bool = False
    handle: Any = None  # the ServiceRef to serve through (None: a new one)


@attrs.frozen
class AddService:
    """Ask: start ``spec`` now, as the last child; answered with its `ServiceRef`."""

    spec: ServiceSpec


@attrs.frozen
class RemoveService:
    """Ask: stop the service ``name`` (if running) and forget it."""

    name: str
    timeout: float = 10.0


@attrs.frozen
class StopApplication:
    """Ask: stop every service in reverse start order; answered when all are stopped."""

    timeout: float = 10.0


@attrs.frozen
class QueryServices:
    """Ask: a `ServiceView` per service, in start order."""


@attrs.frozen
class ServiceView:
    """One service as its supervisor sees it."""

    name: str
    status: str  # running restarting stopped done failed
    restarts: int
    incarnation: int
    last_exit: str


@attrs.frozen
class ServiceFailed:
    """The system failed: the service ``name`` ended and could not be restarted."""

    name: str
    reason: ExitReason


@attrs.frozen
class StartFailed:
    """Application → itself: restarting the service ``name`` failed (``reason``); it counts
    as that incarnation's exit, so restart intensity decides what follows."""

    name: str
    incarnation: int
    reason: str
