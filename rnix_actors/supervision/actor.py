"""The Supervisor actor: executes the decisions of `SupervisorCore` (Erlang/OTP semantics).

A supervisor traps exits and is linked to every child it starts, as in OTP: a child's `Exit`
comes straight from the child's own thread, not through a relay. A nested supervisor is a
`Supervisor` actor it starts itself, linked at construction. An agent child is a kernel
process: the supervisor sends the kernel a spawn request carrying its endpoint, and the kernel
links the new process to it before the process runs its first message. Spawning stays a kernel
request because the kernel is the single owner of PIDs and of the process table (and of spawn
safety: devices, depth, guards); the hop this design removes is the exit relay, not the spawn.

If the supervisor itself ends (a crash in its code, a Pykka-level stop), its subtree goes down
with it: it kills its children before its own exit reaches its parent, and its links end any
child it could not reach. Its parent restarts it like any other child.
"""

from __future__ import annotations

import contextlib
from typing import Any

import attrs

from rnix_actors.errors import RnixError
from rnix_actors.kernel.base import RnixActor
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.links import link as link_endpoints
from rnix_actors.kernel.process import ProcessState
from rnix_actors.kernel.resumption import Restored
from rnix_actors.messages.links import Exit, ExitKind, ExitReason
from rnix_actors.messages.supervision import (
    AddChild,
    ChildStartFailed,
    CountChildren,
    DeleteChild,
    GetChildSpec,
    QueryTree,
    RestartChild,
    RestartDue,
    StartDeferred,
    StartDynamicChild,
    StopSupervisor,
    TerminateChild,
    WhichChildren,
)
from rnix_actors.supervision.children import LiveChildren, NestedSupervisor
from rnix_actors.supervision.core import (
    Action,
    Finished,
    GiveUp,
    StartChild,
    StopChild,
    SupervisorCore,
)
from rnix_actors.supervision.escalation import escalation_reason, migrated_spec, offer_migration
from rnix_actors.supervision.outbox import EventOutbox
from rnix_actors.supervision.spawning import SupervisorDeps, spawn_child, start_answers
from rnix_actors.supervision.spec import ChildSpec, Strategy, SupervisorSpec, validate
from rnix_actors.supervision.views import SupervisorView, agent_name, supervisor_view

__all__ = ["Supervisor", "SupervisorDeps"]


class Supervisor(RnixActor):
    def __init__(
        self,
        spec: SupervisorSpec,
        deps: SupervisorDeps,
        path: str,
        parent: Endpoint | None,
        endpoint: Endpoint | None = None,
    ) -> None:
        super().__init__(deps.tracker, endpoint or Endpoint(f"supervisor {path}"))
        self.endpoint.trap_exit = True
        self.spec = spec
        self.deps = deps
        self.path = path
        self.origin = f"supervisor {path}"
        self.parent = parent
        self.core = SupervisorCore(spec, deps.clock)
        self.reason = ""
        self.children = LiveChildren(deps.kernel, deps.table, path)
        self._farewell_done = False
        self._deferred: list[str] = []  # restarts waiting for StartDeferred (a storm)
        self.events = EventOutbox(deps.bus, path)
        if parent is not None:  # before it runs: a parent that is already gone is noproc
            link_endpoints(self.endpoint, parent)

    # -- lifecycle --------------------------------------------------------------------------
    def started(self) -> None:
        self.deps.on_start(self.path, self.actor_ref)
        self.events.add(
            "SupervisorStart",
            strategy=str(self.spec.strategy),
            max_restarts=self.spec.max_restarts,
            max_window=self.spec.max_window,
        )
        self._execute(self.core.initial_actions())
        self.events.flush()

    def crashed(self, where: str, exc: BaseException) -> None:
        self.core.status = "escalated"
        self.reason = f"supervisor crashed in {where}: {type(exc).__name__}: {exc}"
        self.exit_reason = ExitReason(ExitKind.ERROR, self.origin, self.reason)
        try:
            self._stop_all(kill=True)  # before the parent hears of it: no orphan
        finally:
            self._farewell()

    def stopped(self) -> None:
        if self.exit_reason is None:  # a Pykka-level stop: the subtree goes down, as a crash
            self.core.status = "escalated"
            self.reason = "supervisor stopped without a reason (killed)"
            self.exit_reason = ExitReason(ExitKind.KILLED, self.origin, self.reason)
            with contextlib.suppress(Exception):
                self._stop_all(kill=True)
        self._farewell()

    def _farewell(self) -> None:
        """Once, before the links hear of the exit: leave the final view behind."""
        if self._farewell_done:
            return
        self._farewell_done = True
        self.children.cancel_timers()
        self.events.flush()
        view = self.view()
        self.endpoint.result = view
        self.deps.on_exit(self.path, self.actor_ref, view)

    def _end(self, kind: ExitKind, status: str, reason: str) -> None:
        self.core.status = status
        self.reason = reason
        self.exit_reason = ExitReason(kind, self.origin, reason)
        self._farewell()  # before an ask that stopped it is answered
        self.stop()

    # -- messages -----------------------------------------------------------------------------
    def handle(self, message: Any) -> Any:
        if not self.endpoint.alive:  # killed from outside while busy: take the subtree down
            self.stop()
            return None
        try:
            return self._handle(message)
        finally:
            self.events.flush()

    def _handle(self, message: Any) -> Any:
        match message:
            case Exit():
                self._exit_arrived(message)
            case StartDeferred():
                names, self._deferred = self._deferred, []
                self._start_many(names)
            case ChildStartFailed(name=name, incarnation=incarnation, reason=reason):
                why = ExitReason(ExitKind.ERROR, self.origin, reason)
                self._child_down(name, incarnation, why, None)
            case RestartDue(name=name, ticket=ticket):
                if self.children.due(name, ticket):
                    self._start_many([name])
            case StopSupervisor(kill=kill, origin=origin, keep=keep):
                self.events.add("SupervisorStop", origin=origin, kill=kill)
                if keep:
                    self._leave_resumable()
                self.children.stopper.keep = keep
                self._stop_all(kill)
                self._end(ExitKind.SHUTDOWN, "stopped", f"stopped by {origin}")
            case QueryTree():
                return self.view()
            case _:
                return self._manage(message)
        return None

    def _manage(self, message: Any) -> Any:
        """OTP's management calls; a bad request raises `RnixError` to the caller only."""
        match message:
            case StartDynamicChild(intent=intent):
                action = self.core.add_dynamic(intent)
                self._execute([action])
                return action.name
            case AddChild(spec=spec):
                return self._add_child(spec)
            case TerminateChild(name=name):
                running = self.core.child(name).status in ("starting", "running", "restarting")
                self._stop_children([name], kill=False)
                self.core.terminate(name)
                return running
            case RestartChild(name=name):
                self._execute([self.core.restart(name)])
                return self.core.children[name].pid
            case DeleteChild(name=name):
                self.core.delete(name)
                self.children.final_views.pop(name, None)
            case GetChildSpec(name=name):
                return self.core.child(name).spec
            case WhichChildren():
                return self.view().children
            case CountChildren():
                return self.core.counts()
            case _:
                self.unhandled(message)
        return None

    def _add_child(self, spec: ChildSpec) -> str:
        if self.core.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            raise RnixError(
                f"{self.path} is simple_one_for_one: start_child takes an intent, not a ChildSpec"
            )
        probe = attrs.evolve(self.spec, children=(spec,))
        validate(probe, self.deps.known_agent, "<start_child>", self.path)
        self._execute([self.core.add(spec)])
        return spec.name

    def _exit_arrived(self, exit: Exit) -> None:
        if exit.source is self.parent:
            # OTP: a supervisor whose parent ends stops its children and ends the same way.
            self._stop_all(kill=False)
            self._end(exit.reason.kind, "stopped", f"parent exited: {exit.reason}")
            return
        name, incarnation = self.children.exited(exit)
        if name:
            self._child_down(name, incarnation, exit.reason, exit.pid)
        else:  # stale: an incarnation this supervisor already replaced or stopped
            why = exit.reason
            self.events.add(
                "SupervisorStaleExit",
                child_pid=exit.pid,
                source=exit.source.label,
                kind=str(why.kind),
                origin=why.origin,
                reason=str(why),
            )

    # -- children -------------------------------------------------------------------------------
    def _child_down(self, name: str, incarnation: int, why: ExitReason, pid: int | None) -> None:
        abnormal, reason = why.abnormal, str(why)
        self.events.add(
            "SupervisorChildExit",
            child=name,
            child_pid=pid,
            abnormal=abnormal,
            kind=str(why.kind),
            origin=why.origin,
            reason=reason,
        )
        self._execute(self.core.exited(name, incarnation, abnormal, reason))

    def _execute(self, actions: list[Action]) -> None:
        stops = [a.name for a in actions if isinstance(a, StopChild)]
        if stops:  # the core lists them first, in reverse start order
            self._stop_children(stops, kill=False, mark=False)
        starts = [a.name for a in actions if isinstance(a, StartChild) and a.delay <= 0]
        if starts and not stops and self._more_exits_queued():
            # A storm: more messages (likely exits) are queued. Their restarts join this one
            # and leave together, pipelined (one kernel round trip instead of one each).
            if not self._deferred:
                self.actor_ref.tell(StartDeferred())
            self._deferred.extend(starts)
        elif starts:
            self._start_many(starts)
        for action in actions:
            match action:
                case StartChild(name=name, delay=delay) if delay > 0:
                    self._start_later(name, delay)
                case GiveUp(child=child, reason=reason):
                    self._give_up(child, reason)
                    return
                case Finished(reason=reason, shutdown=shutdown):
                    self._stop_all(kill=False)
                    self.events.add("SupervisorExit", reason=reason)
                    kind = ExitKind.SHUTDOWN if shutdown else ExitKind.NORMAL
                    self._end(kind, "completed", reason)
                    return

    def _more_exits_queued(self) -> bool:
        return (
            self.core.strategy
            in (
                Strategy.ONE_FOR_ONE,
                Strategy.SIMPLE_ONE_FOR_ONE,
            )
            and not self.actor_inbox.empty()
        )

    def _start_many(self, names: list[str]) -> None:
        """Start children in order. Spawn requests are pipelined (all sent, then all answered:
        the kernel handles them in order), so a one_for_all restart does not pay a round trip
        per child. A child that cannot start is handled later, as a message (OTP's
        ``try_again_restart``): never by recursing into a restart while this one runs."""
        pending: list[tuple[str, Any]] = []
        for name in names:
            child = self.core.children.get(name)
            if child is None or child.status not in ("starting", "restarting"):
                continue
            if child.incarnation:
                self.events.add(
                    "SupervisorRestart",
                    child=name,
                    restarts=child.restarts,
                    old_pid=child.pid,
                    strategy=str(self.spec.strategy),
                )
            if child.spec.supervisor is not None:
                self._start_sub(name, child.spec.supervisor)
                continue
            try:
                first = not child.incarnation
                future = spawn_child(self.deps, self.path, self.endpoint, child.spec, first)
                pending.append((name, future))
            except RnixError as exc:
                pending.append((name, exc))
        self.events.flush()
        for name, got in start_answers(pending):
            if isinstance(got, Exception):
                incarnation = self.core.started(name, None)
                self.actor_ref.tell(ChildStartFailed(name, incarnation, f"start failed: {got}"))
                continue
            pid = got.pid if isinstance(got, Restored) else got
            incarnation = self.core.started(name, pid)
            self.children.agents[pid] = (name, incarnation)
            extra = {"resumed": True} if isinstance(got, Restored) else {}
            self.events.add(
                "SupervisorChildStart", child=name, child_pid=pid, incarnation=incarnation, **extra
            )

    def _start_sub(self, name: str, spec: SupervisorSpec) -> None:
        incarnation = self.core.started(name, None)
        path = f"{self.path}/{name}"
        endpoint = Endpoint(f"supervisor {path}")
        ref = Supervisor.start(spec, self.deps, path, self.endpoint, endpoint)
        self.children.subs[name] = NestedSupervisor(ref, endpoint, incarnation)
        self.events.add("SupervisorChildStart", child=name, incarnation=incarnation)

    def _start_later(self, name: str, delay: float) -> None:
        self.events.add("SupervisorBackoff", child=name, delay_s=round(delay, 3))
        self.children.start_later(name, delay, self.actor_ref)

    def _stop_children(self, names: list[str], kill: bool, mark: bool = True) -> None:
        """Stop children in the given order (callers pass reverse start order); see
        `Stopper`. ``mark=False`` when the core already decided (and may restart them)."""
        targets = self.children.release(self.core, names, mark)
        self.events.flush()
        self.children.stop(targets, kill)

    def _leave_resumable(self) -> None:
        """Unlink the live ``resume: true`` agent children and forget them: the system's
        graceful stop keeps them (suspended, or lost if still running) to resume later."""
        for name, pid in self.children.leave_resumable(self.core, self.endpoint):
            self.events.add("SupervisorChildKept", child=name, child_pid=pid)

    def _stop_all(self, kill: bool) -> None:
        self._stop_children(list(reversed(self.core.children)), kill)

    # -- giving up: migration, then escalation ----------------------------------------------
    def _give_up(self, name: str, reason: str) -> None:
        self.events.add(
            "SupervisorShutdown",
            child=name,
            reason="max_restarts_exceeded",
            max_restarts=self.spec.max_restarts,
            max_window=self.spec.max_window,
        )
        self.events.flush()
        child = self.core.children[name]
        if child.pid is not None:
            # The exit reached us from the child itself; the planner learns its record from
            # the kernel's Exit event, published just before the kernel marks it dead.
            self.deps.table.wait_for(child.pid, lambda p: p.state is ProcessState.DEAD, 5.0)
        answer = offer_migration(self.deps.planner(), self.path, name, child)
        new_spec = None if answer is None else migrated_spec(child.spec, answer)
        if answer is not None and new_spec is not None:
            self.events.add(
                "SupervisorMigration",
                child=name,
                original=agent_name(child.spec.agent),
                substitute=answer.substitute,
                reason=answer.reason,
            )
            self._execute([self.core.replace_spec(name, new_spec)])
            return
        self._stop_all(kill=False)
        reason = escalation_reason(self.spec, name, reason, answer)
        self.events.add("SupervisorEscalate", child=name, reason=reason)
        self._end(ExitKind.ESCALATED, "escalated", reason)

    # -- views --------------------------------------------------------------------------
    def view(self) -> SupervisorView:
        sub_views = self.children.sub_views()
        return supervisor_view(self.core, self.path, self.reason, sub_views, self.deps.table)
