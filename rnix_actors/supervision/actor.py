"""The Supervisor actor: executes the decisions of `SupervisorCore` (DESIGN §3, §7).

Agent children are kernel processes whose owner is this actor (the kernel tells it
`ProcessExited`); supervisor children are nested `Supervisor` actors that tell it
`SupervisorExited`. Stopping a child blocks this actor for at most the child's ``shutdown``
time, as an OTP supervisor does: SIGTERM, wait, SIGKILL, move on.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from rnix_actors.errors import RnixError
from rnix_actors.kernel.base import RnixActor, ThreadTracker
from rnix_actors.kernel.process import ProcessState, Signal
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.messages.events import Event, EventBatch
from rnix_actors.messages.kernel import ProcessExited, SendSignal, SendSignals, SpawnRequest
from rnix_actors.supervision.core import (
    Action,
    Finished,
    GiveUp,
    StartChild,
    StopChild,
    SupervisorCore,
)
from rnix_actors.supervision.messages import (
    MigrationAnswer,
    MigrationOffer,
    QueryTree,
    RestartDue,
    StartDynamicChild,
    StopSupervisor,
    SupervisorExited,
)
from rnix_actors.supervision.spec import ChildSpec, SupervisorSpec
from rnix_actors.supervision.views import SupervisorView, agent_name, supervisor_view
from rnix_actors.templates import AgentTemplate

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0
KILL_WAIT = 5.0


@attrs.frozen
class SupervisorDeps:
    kernel: Any  # ActorRef[Kernel]
    bus: Any  # ActorRef[EventBus]
    table: ProcessTable
    resolve_agent: Callable[[ChildSpec, str], AgentTemplate | str]
    planner: Callable[[], Any]  # -> ActorRef of the migration planner, or None
    on_root_exit: Callable[[SupervisorView], None]  # the root's final view
    tracker: ThreadTracker | None = None
    clock: Callable[[], float] = time.monotonic


@attrs.frozen
class _Parent:
    ref: Any  # ActorRef[Supervisor]
    name: str
    incarnation: int


class Supervisor(RnixActor):
    def __init__(
        self, spec: SupervisorSpec, deps: SupervisorDeps, path: str, parent: _Parent | None
    ) -> None:
        super().__init__(deps.tracker)
        self.spec = spec
        self.deps = deps
        self.path = path
        self.parent = parent
        self.core = SupervisorCore(spec, deps.clock)
        self.reason = ""
        self.pids: dict[int, tuple[str, int]] = {}  # pid -> (child name, incarnation)
        self.subs: dict[str, pykka.ActorRef[Supervisor]] = {}
        self.final_views: dict[str, SupervisorView | None] = {}
        self.timers: dict[str, threading.Timer] = {}
        self._tickets = itertools.count(1)
        self._pending: dict[str, int] = {}
        # Events wait here until the supervisor has acted or is about to block, then go to
        # the bus in one message: a restart's spawn request leaves before its events do.
        self._outbox: list[Event] = []

    # -- lifecycle --------------------------------------------------------------------------
    def started(self) -> None:
        self._event(
            "SupervisorStart",
            strategy=str(self.spec.strategy),
            max_restarts=self.spec.max_restarts,
            max_window=self.spec.max_window,
        )
        self._execute(self.core.initial_actions())
        self._flush_events()

    def crashed(self, where: str, exc: BaseException) -> None:
        self.core.status = "escalated"
        self.reason = f"supervisor crashed in {where}: {type(exc).__name__}: {exc}"
        self._stop_all(kill=True)
        self._report_exit(abnormal=True)

    def handle(self, message: Any) -> Any:
        try:
            return self._handle(message)
        finally:
            self._flush_events()

    def _handle(self, message: Any) -> Any:
        match message:
            case ProcessExited(pid=pid, exit=exit_status):
                name, incarnation = self.pids.pop(pid, ("", 0))
                if name:
                    self._child_down(name, incarnation, not exit_status.ok, exit_status.reason, pid)
            case SupervisorExited(name=name, incarnation=inc, abnormal=abnormal, reason=reason):
                self.subs.pop(name, None)
                self.final_views[name] = message.view
                self._child_down(name, inc, abnormal, reason, None)
            case RestartDue(name=name, ticket=ticket):
                if self._pending.get(name) == ticket:
                    del self._pending[name]
                    self.timers.pop(name, None)
                    self._start_many([name])
            case StopSupervisor(kill=kill, origin=origin):
                self._event("SupervisorStop", origin=origin, kill=kill)
                self._stop_all(kill)
                self.core.status = "stopped"
                self.reason = f"stopped by {origin}"
                if self.parent is None:
                    self.deps.on_root_exit(self.view())
                self.stop()
            case StartDynamicChild(intent=intent):
                action = self.core.add_dynamic(intent)
                self._execute([action])
                return action.name
            case QueryTree():
                return self.view()
        return None

    # -- children ---------------------------------------------------------------------------
    def _child_down(
        self, name: str, incarnation: int, abnormal: bool, reason: str, pid: int | None
    ) -> None:
        self._event(
            "SupervisorChildExit", child=name, child_pid=pid, abnormal=abnormal, reason=reason
        )
        self._execute(self.core.exited(name, incarnation, abnormal, reason))

    def _execute(self, actions: list[Action]) -> None:
        stops = [a.name for a in actions if isinstance(a, StopChild)]
        if stops:  # the core lists them first, in reverse start order
            self._stop_children(stops, kill=False, mark=False)
        starts = [a.name for a in actions if isinstance(a, StartChild) and a.delay <= 0]
        if starts:
            self._start_many(starts)
        for action in actions:
            match action:
                case StartChild(name=name, delay=delay) if delay > 0:
                    self._start_later(name, delay)
                case GiveUp(child=child, reason=reason):
                    self._give_up(child, reason)
                    return
                case Finished(reason=reason):
                    self.reason = reason
                    self._event("SupervisorExit", reason=reason)
                    self._report_exit(abnormal=False)
                    self.stop()
                    return

    def _start_many(self, names: list[str]) -> None:
        """Start children in order. Spawn requests are pipelined (all sent, then all answered:
        the kernel handles them in order), so a one_for_all restart does not pay a round trip
        per child."""
        pending: list[tuple[str, Any]] = []
        for name in names:
            child = self.core.children[name]
            if child.status not in ("starting", "restarting"):
                continue
            if child.incarnation:
                self._event(
                    "SupervisorRestart",
                    child=name,
                    restarts=child.restarts,
                    old_pid=child.pid,
                    strategy=str(self.spec.strategy),
                )
            if child.spec.supervisor is not None:
                incarnation = self.core.started(name, None)
                parent = _Parent(self.actor_ref, name, incarnation)
                path = f"{self.path}/{name}"
                self.subs[name] = Supervisor.start(child.spec.supervisor, self.deps, path, parent)
                continue
            try:
                pending.append((name, self._spawn(child.spec)))
            except RnixError as exc:
                pending.append((name, exc))
        self._flush_events()
        for name, answer in pending:
            try:
                if isinstance(answer, Exception):
                    raise answer
                pid: int = answer.get(timeout=ASK_TIMEOUT)
            except (RnixError, pykka.ActorDeadError, pykka.Timeout) as exc:
                # A start failure is a failure of that child: the strategy and intensity decide.
                incarnation = self.core.started(name, None)
                self._child_down(name, incarnation, True, f"start failed: {exc}", None)
                continue
            incarnation = self.core.started(name, pid)
            self.pids[pid] = (name, incarnation)
            self._event("SupervisorChildStart", child=name, child_pid=pid, incarnation=incarnation)

    def _spawn(self, spec: ChildSpec) -> Any:
        """Send the spawn request; returns the future of the new PID."""
        agent = self.deps.resolve_agent(spec, self.path)
        request = SpawnRequest(
            template=agent,
            intent=spec.intent,
            devices=spec.devices,
            max_steps=spec.max_steps,
            owner=self.actor_ref,
            origin=f"supervisor {self.path}",
        )
        return self.deps.kernel.ask(request, block=False)

    def _start_later(self, name: str, delay: float) -> None:
        ticket = next(self._tickets)
        self._pending[name] = ticket
        ref = self.actor_ref

        def due() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(RestartDue(name, ticket))

        timer = threading.Timer(delay, due)
        timer.daemon = True
        self.timers[name] = timer
        self._event("SupervisorBackoff", child=name, delay_s=round(delay, 3))
        timer.start()

    def _stop_children(self, names: list[str], kill: bool, mark: bool = True) -> None:
        """Stop children in the given order (callers pass reverse start order).

        Each agent child is sent SIGTERM in that order, then each is given its own ``shutdown``
        time from that moment before SIGKILL: the grace periods overlap instead of adding up
        (OTP waits for each child in turn; agents finishing a step would make that slow).
        ``mark=False`` when the core already decided (and may restart them).
        """
        self._flush_events()
        origin = f"supervisor {self.path}"
        waiting: list[tuple[int, float]] = []
        for name in names:
            child = self.core.children.get(name)
            if child is None:
                continue
            if mark:
                self.core.stopping(name)
            if name in self.timers:
                self.timers.pop(name).cancel()
                self._pending.pop(name, None)
            sub = self.subs.pop(name, None)
            if sub is not None:
                self._stop_sub(name, sub, kill, child.spec.shutdown)
            elif child.pid is not None and self.pids.pop(child.pid, None) is not None:
                grace = 0.0 if kill else child.spec.shutdown
                waiting.append((child.pid, grace))
        for sig, graceful in ((Signal.SIGTERM, True), (Signal.SIGKILL, False)):
            pids = tuple(pid for pid, grace in waiting if (grace > 0) == graceful)
            if pids:
                self._signal_many(pids, sig, origin)
        now = time.monotonic()
        for pid, grace in waiting:
            deadline = now + grace
            left = max(0.0, deadline - time.monotonic())
            if self.deps.table.wait_for(pid, _dead, left) is not None:
                continue
            self._signal(pid, Signal.SIGKILL, origin)
            if self.deps.table.wait_for(pid, _dead, KILL_WAIT) is None:
                log.warning("%s: PID %d did not die after SIGKILL; abandoned", self.path, pid)

    def _stop_sub(
        self, name: str, sub: pykka.ActorRef[Supervisor], kill: bool, shutdown: float
    ) -> None:
        self._flush_events()
        try:
            sub.ask(
                StopSupervisor(kill, f"supervisor {self.path}"),
                block=True,
                timeout=max(ASK_TIMEOUT, shutdown * 4),
            )
        except (pykka.ActorDeadError, pykka.Timeout):
            log.warning("%s: child supervisor %s did not stop in time", self.path, name)

    def _signal_many(self, pids: tuple[int, ...], sig: Signal, origin: str) -> None:
        try:
            self.deps.kernel.ask(SendSignals(pids, sig, origin), block=True, timeout=ASK_TIMEOUT)
        except (RnixError, pykka.ActorDeadError, pykka.Timeout) as exc:
            log.warning("%s: %s to PIDs %s failed: %s", self.path, sig, pids, exc)

    def _signal(self, pid: int, sig: Signal, origin: str) -> None:
        try:
            self.deps.kernel.ask(SendSignal(pid, sig, origin), block=True, timeout=ASK_TIMEOUT)
        except (RnixError, pykka.ActorDeadError, pykka.Timeout) as exc:
            log.warning("%s: %s to PID %d failed: %s", self.path, sig, pid, exc)

    def _stop_all(self, kill: bool) -> None:
        self._stop_children(list(reversed(self.core.children)), kill)

    # -- giving up: migration, then escalation ----------------------------------------------
    def _give_up(self, name: str, reason: str) -> None:
        self._event(
            "SupervisorShutdown",
            child=name,
            reason="max_restarts_exceeded",
            max_restarts=self.spec.max_restarts,
            max_window=self.spec.max_window,
        )
        answer = self._offer_migration(name, reason)
        if answer is not None and answer.decision == "migrated" and answer.substitute:
            spec = self.core.children[name].spec
            new_spec = attrs.evolve(
                spec,
                agent=answer.substitute,
                intent=answer.intent or spec.intent,
                devices=answer.devices if answer.devices is not None else spec.devices,
            )
            self._event(
                "SupervisorMigration",
                child=name,
                original=agent_name(spec.agent),
                substitute=answer.substitute,
                reason=answer.reason,
            )
            self._execute([self.core.replace_spec(name, new_spec)])
            return
        self._stop_all(kill=False)
        self.core.status = "escalated"
        why = "" if answer is None else f"; migration {answer.decision}: {answer.reason}"
        self.reason = (
            f"max_restarts_exceeded: child {name!r} needed more than "
            f"{self.spec.max_restarts} restarts in {self.spec.max_window}s "
            f"(last exit: {reason}){why}"
        )
        self._event("SupervisorEscalate", child=name, reason=self.reason)
        self._report_exit(abnormal=True)
        self.stop()

    def _offer_migration(self, name: str, reason: str) -> MigrationAnswer | None:
        planner = self.deps.planner()
        child = self.core.children[name]
        if planner is None or child.spec.supervisor is not None:
            return None
        offer = MigrationOffer(
            supervisor=self.path,
            child=name,
            template=agent_name(child.spec.agent),
            intent=child.spec.intent,
            exit_reason=reason,
            last_pid=child.pid,
            devices=child.spec.devices,
        )
        self._flush_events()
        try:
            answer = planner.ask(offer, block=True, timeout=ASK_TIMEOUT)
        except Exception as exc:  # a broken planner must not stop the escalation
            log.warning("%s: migration planner failed: %s", self.path, exc)
            return MigrationAnswer("declined", f"planner failed: {exc}")
        if not isinstance(answer, MigrationAnswer):
            return MigrationAnswer("declined", f"planner answered {type(answer).__name__}")
        return answer

    def _report_exit(self, abnormal: bool) -> None:
        self._flush_events()
        for timer in self.timers.values():
            timer.cancel()
        if self.parent is None:
            self.deps.on_root_exit(self.view())
            return
        message = SupervisorExited(
            self.parent.name, self.parent.incarnation, abnormal, self.reason, self.view()
        )
        with contextlib.suppress(pykka.ActorDeadError):
            self.parent.ref.tell(message)

    def stopped(self) -> None:
        self._flush_events()
        for timer in self.timers.values():
            timer.cancel()

    # -- views and events -------------------------------------------------------------------
    def view(self) -> SupervisorView:
        sub_views: dict[str, SupervisorView | None] = dict(self.final_views)
        for name, sub in self.subs.items():
            try:
                sub_views[name] = sub.ask(QueryTree(), block=True, timeout=2.0)
            except (pykka.ActorDeadError, pykka.Timeout):
                sub_views[name] = None  # busy stopping its own children: shown without
        return supervisor_view(self.core, self.path, self.reason, sub_views, self.deps.table)

    def _event(self, syscall: str, child_pid: int | None = None, **args: Any) -> None:
        args["path"] = self.path
        if child_pid is not None:
            args["child_pid"] = child_pid
        self._outbox.append(
            Event(
                ts=time.time(),
                pid=child_pid or 0,
                template="supervisor",
                step=0,
                syscall=syscall,
                args=args,
            )
        )

    def _flush_events(self) -> None:
        if self._outbox:
            events, self._outbox = tuple(self._outbox), []
            with contextlib.suppress(pykka.ActorDeadError):
                self.deps.bus.tell(EventBatch(events))


def _dead(info: Any) -> bool:
    return bool(info.state is ProcessState.DEAD)
