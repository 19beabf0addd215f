"""The application supervisor: the root of the system's own services.

It is a supervisor in the OTP sense, on the same functional core as the trees users start
(`rnix_actors.supervision.core.SupervisorCore`: restart types, restart intensity, OTP 24's
``auto_shutdown``): it traps exits and is linked to every service actor it starts, so a
service's exit reaches it straight from the service's own teardown. Services are added in
start order (event bus, process log, kernel, immune daemon, topology, planner) and stopped in
reverse. There is no store service: each one that keeps state opens its own connection to
the store (`rnix_actors.store.db.Store.open_for`), so a broken connection fails only its
owner, and the owner's restart reopens it.

- A service that crashes is restarted (``permanent``) at once, and its `ServiceRef` is pointed
  at the new actor, so nobody holding the service sees a dead ref. More than ``max_restarts``
  restarts within ``max_window`` seconds and the application gives up: the system fails.
- A ``vital`` service (the kernel) is never restarted: it is ``temporary`` and significant,
  and the application runs ``auto_shutdown: any_significant``. When it ends, the other services
  stop in reverse order and the system fails with the kernel's reason (the kernel's own
  teardown has ended every process with a typed reason first).
- The application's own actor ending unasked (a crash; anything but `System.stop`) fails the
  system too, once it has stopped the services in reverse order (their processes end as a
  ``shutdown``): the system never runs on without its supervisor.

Failing calls ``on_failure(service, reason)`` once (the `System` facade turns it into
`SystemFailed` for every later call) and logs why; the application actor stays up to answer
`StopApplication` and `QueryServices`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from rnix_actors.app.service import ServiceRef
from rnix_actors.kernel.base import RnixActor, ThreadTracker
from rnix_actors.kernel.links import Endpoint, link
from rnix_actors.messages.application import (
    AddService,
    QueryServices,
    RemoveService,
    ServiceSpec,
    ServiceView,
    StartFailed,
    StopApplication,
)
from rnix_actors.messages.links import Exit, ExitKind, ExitReason
from rnix_actors.supervision.core import Action, Finished, GiveUp, StartChild, SupervisorCore
from rnix_actors.supervision.spec import AutoShutdown, ChildSpec, Restart, Strategy, SupervisorSpec

log = logging.getLogger(__name__)

ORIGIN = "application"
_SHUTDOWN = ExitReason(ExitKind.SHUTDOWN, ORIGIN, "system stop")
ENDPOINT_TIMEOUT = 10.0
ASK_TIMEOUT = 10.0


@attrs.define
class _Service:
    spec: ServiceSpec
    handle: ServiceRef
    endpoint: Endpoint | None = None
    incarnation: int = 0


class Application(RnixActor):
    def __init__(
        self,
        on_failure: Callable[[str, ExitReason], None],
        tracker: ThreadTracker | None = None,
        max_restarts: int = 3,
        max_window: float = 60.0,
    ) -> None:
        super().__init__(tracker, Endpoint(ORIGIN))
        self.endpoint.trap_exit = True
        spec = SupervisorSpec(
            "application",
            Strategy.ONE_FOR_ONE,
            (),
            max_restarts,
            max_window,
            auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
        )
        self.core = SupervisorCore(spec, time.monotonic)
        self.services: dict[str, _Service] = {}
        self.report_failure = on_failure
        self.failure: ExitReason | None = None
        self.at_end(self._ended)

    def _ended(self) -> None:
        """However this actor ends: unless the system asked it to stop, the system fails (its
        services are stopped in reverse order first, before their links to it fire)."""
        if self.failure is None and self.exit_reason is not _SHUTDOWN:
            self._fail("application", "the application supervisor ended unasked")

    def handle(self, message: Any) -> Any:
        match message:
            case Exit():
                self._exited(message)
            case StartFailed(name=name, incarnation=incarnation, reason=reason):
                self._act(name, self.core.exited(name, incarnation, True, reason))
            case AddService(spec=spec):
                return self._add(spec)
            case RemoveService(name=name, timeout=timeout):
                self._remove(name, timeout)
            case StopApplication(timeout=timeout):
                self._stop_all(timeout)
                # Asked to stop: when this actor ends, it ends as a shutdown, not a crash.
                self.exit_reason = _SHUTDOWN
            case QueryServices():
                return self._views()
            case _:
                self.unhandled(message)
        return None

    # -- starting -----------------------------------------------------------------------------
    def _add(self, spec: ServiceSpec) -> ServiceRef:
        restart = Restart.TEMPORARY if spec.vital else Restart(spec.restart)
        action = self.core.add(ChildSpec(spec.name, restart=restart, significant=spec.vital))
        handle = spec.handle if spec.handle is not None else ServiceRef(spec.name)
        handle.set_retire(lambda timeout: self._retire(spec.name, timeout))
        service = _Service(spec, handle)
        self.services[spec.name] = service
        try:
            self._start(action.name, raise_error=True)
        except BaseException:
            self.core.stopping(spec.name)
            self.core.delete(spec.name)
            del self.services[spec.name]
            raise
        return service.handle

    def _start(self, name: str, raise_error: bool = False) -> None:
        service = self.services[name]
        try:
            ref = service.spec.start()
            endpoint: Endpoint = ref.proxy().endpoint.get(timeout=ENDPOINT_TIMEOUT)
        except Exception as exc:
            if raise_error:
                raise
            incarnation = self.core.started(name, None)
            reason = f"start failed: {type(exc).__name__}: {exc}"
            log.error("service %s could not restart: %s", name, reason)
            self.actor_ref.tell(StartFailed(name, incarnation, reason))
            return
        service.incarnation = self.core.started(name, None)
        service.endpoint = endpoint
        service.handle.point(ref)
        link(self.endpoint, endpoint)  # already dead: its noproc exit is queued for us now

    # -- exits --------------------------------------------------------------------------------
    def _exited(self, exit: Exit) -> None:
        service = next((s for s in self.services.values() if s.endpoint is exit.source), None)
        if service is None:
            return  # an incarnation already replaced or removed
        name = service.spec.name
        service.endpoint = None
        service.handle.point(None)
        if self.core.children[name].status == "running":
            log.warning("service %s ended: %s", name, exit.reason)
        self._act(name, self.core.exited(name, service.incarnation, True, str(exit.reason)))

    def _act(self, name: str, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case StartChild(name=restarted):
                    log.warning("restarting service %s", restarted)
                    self._start(restarted)
                case GiveUp(child=child, reason=reason):
                    detail = (
                        f"service {child} crashed more than {self.core.spec.max_restarts} "
                        f"times in {self.core.spec.max_window:g}s (last exit: {reason})"
                    )
                    self._fail(child, detail)
                    return
                case Finished():
                    last = self.core.children[name].last_exit
                    self._fail(name, f"service {name} ended: {last}")
                    return
                case _:  # StopChild: one_for_one stops no sibling to restart one
                    pass

    def _fail(self, name: str, detail: str) -> None:
        if self.failure is not None:
            return
        self.failure = ExitReason(ExitKind.FAILED, ORIGIN, f"the system failed: {detail}")
        log.error("%s; stopping the other services", self.failure.detail)
        self._stop_all(10.0)
        try:
            self.report_failure(name, self.failure)
        except Exception:
            log.exception("failure callback raised")

    # -- stopping -----------------------------------------------------------------------------
    def _stop_all(self, timeout: float) -> None:
        for name in reversed(list(self.services)):
            self._stop_one(name, timeout)

    def _stop_one(self, name: str, timeout: float) -> None:
        service = self.services[name]
        self.core.stopping(name)  # its exit is expected now: no restart
        ref = service.handle.current
        service.endpoint = None
        if ref is None:
            return
        try:
            service.spec.stop(ref, timeout)
        except Exception:
            log.exception("service %s did not stop cleanly", name)
        service.handle.point(None, hold=False)
        if ref.is_alive():  # stop() queues behind the inbox; a stuck actor is abandoned
            try:
                ref.stop(timeout=timeout)
            except (pykka.Timeout, pykka.ActorDeadError):
                log.warning("service %s did not stop within %.1fs", name, timeout)

    def _retire(self, name: str, timeout: float | None) -> None:
        """`ServiceRef.stop`: from the application's own thread (a service's stop function
        stopping its actor) the actor stops here; from any other, the application is asked."""
        wait = ASK_TIMEOUT if timeout is None else timeout
        if threading.current_thread() is self.thread:
            ref = self.services[name].handle.current if name in self.services else None
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                    ref.stop(timeout=wait)
            return
        with contextlib.suppress(pykka.ActorDeadError):  # the application already stopped
            self.actor_ref.ask(RemoveService(name, wait), timeout=wait + ASK_TIMEOUT)

    def _remove(self, name: str, timeout: float) -> None:
        if name not in self.services:
            return
        self._stop_one(name, timeout)
        self.core.delete(name)
        del self.services[name]

    def _views(self) -> tuple[ServiceView, ...]:
        return tuple(
            ServiceView(
                name,
                self.core.children[name].status,
                self.core.children[name].restarts,
                service.handle.incarnation,
                self.core.children[name].last_exit,
            )
            for name, service in self.services.items()
        )
