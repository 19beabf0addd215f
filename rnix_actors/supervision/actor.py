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
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from rnix_actors.errors import RnixError
from rnix_actors.kernel.base import RnixActor, ThreadTracker
from rnix_actors.kernel.eventbus import EventBus
from rnix_actors.kernel.kernel import Kernel
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.links import link as link_endpoints
from rnix_actors.kernel.links import unlink as unlink_endpoints
from rnix_actors.kernel.process import ProcessState
from rnix_actors.kernel.resumption import Restore, Restored
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.messages.events import Event, EventBatch
from rnix_actors.messages.kernel import SpawnRequest
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
from rnix_actors.supervision.core import (
    Action,
    Finished,
    GiveUp,
    StartChild,
    StopChild,
    SupervisorCore,
)
from rnix_actors.supervision.escalation import migrated_spec, offer_migration
from rnix_actors.supervision.spec import ChildSpec, Strategy, SupervisorSpec, validate
from rnix_actors.supervision.stopping import AgentChild, Stopper, SupervisorChild, Target
from rnix_actors.supervision.views import SupervisorView, agent_name, supervisor_view
from rnix_actors.templates import AgentTemplate

ASK_TIMEOUT = 10.0


@attrs.frozen
class SupervisorDeps:
    kernel: pykka.ActorRef[Kernel]
    bus: pykka.ActorRef[EventBus]
    table: ProcessTable
    resolve_agent: Callable[[ChildSpec, str], AgentTemplate | str]
    known_agent: Callable[[str], bool]
    planner: Callable[[], Any]  # -> ActorRef of the migration planner, or None
    on_start: Callable[[str, Any], None]  # (path, ref): a supervisor is running
    on_exit: Callable[[str, Any, SupervisorView], None]  # (path, ref, final view)
    tracker: ThreadTracker | None = None
    clock: Callable[[], float] = time.monotonic
    # Run in the supervisor's thread before a spawn: a replay script is parsed here, never
    # on the kernel's thread (`rnix_actors.kernel.spawning.prepare_in_caller`).
    prepare_spawn: Callable[[AgentTemplate | str], None] | None = None
    prepare_restore: Callable[[int], None] | None = None  # the same, before a resume
    # A child path (/review/analyst) -> the PID to resume from its checkpoint instead of
    # starting the child afresh (each PID is handed out once); None: start afresh.
    resumable: Callable[[str], int | None] = lambda path: None


@attrs.frozen
class _Sub:
    ref: pykka.ActorRef[Supervisor]
    endpoint: Endpoint
    incarnation: int


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
        self.agents: dict[int, tuple[str, int]] = {}  # pid -> (child name, incarnation)
        self.subs: dict[str, _Sub] = {}
        self.final_views: dict[str, SupervisorView | None] = {}
        self.timers: dict[str, threading.Timer] = {}
        self.stopper = Stopper(deps.kernel, deps.table, path)
        self._tickets = itertools.count(1)
        self._pending: dict[str, int] = {}
        self._farewell_done = False
        self._deferred: list[str] = []  # restarts waiting for StartDeferred (a storm)
        # Events wait here until the supervisor has acted or is about to block, then go to
        # the bus in one message: a restart's spawn request leaves before its events do.
        self._outbox: list[Event] = []
        if parent is not None:  # before it runs: a parent that is already gone is noproc
            link_endpoints(self.endpoint, parent)

    # -- lifecycle --------------------------------------------------------------------------
    def started(self) -> None:
        self.deps.on_start(self.path, self.actor_ref)
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
        for timer in self.timers.values():
            timer.cancel()
        self._flush_events()
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
            self._flush_events()

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
                if self._pending.get(name) == ticket:
                    del self._pending[name]
                    self.timers.pop(name, None)
                    self._start_many([name])
            case StopSupervisor(kill=kill, origin=origin, keep=keep):
                self._event("SupervisorStop", origin=origin, kill=kill)
                if keep:
                    self._leave_resumable()
                self.stopper.keep = keep
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
                self.final_views.pop(name, None)
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
        if exit.pid is not None:
            name, incarnation = self.agents.pop(exit.pid, ("", 0))
        else:
            name, incarnation = self._sub_of(exit.source)
            if name:
                del self.subs[name]
                self.final_views[name] = exit.result
        if name:
            self._child_down(name, incarnation, exit.reason, exit.pid)
        else:  # stale: an incarnation this supervisor already replaced or stopped
            why = exit.reason
            self._event(
                "SupervisorStaleExit",
                child_pid=exit.pid,
                source=exit.source.label,
                kind=str(why.kind),
                origin=why.origin,
                reason=str(why),
            )

    def _sub_of(self, endpoint: Endpoint) -> tuple[str, int]:
        for name, sub in self.subs.items():
            if sub.endpoint is endpoint:
                return name, sub.incarnation
        return "", 0

    # -- children -------------------------------------------------------------------------------
    def _child_down(self, name: str, incarnation: int, why: ExitReason, pid: int | None) -> None:
        abnormal, reason = why.abnormal, str(why)
        self._event(
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
                    self._event("SupervisorExit", reason=reason)
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
                self._event(
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
                pending.append((name, self._spawn(child.spec, first=not child.incarnation)))
            except RnixError as exc:
                pending.append((name, exc))
        self._flush_events()
        for name, answer in pending:
            try:
                if isinstance(answer, Exception):
                    raise answer
                got: int | Restored = answer.get(timeout=ASK_TIMEOUT)
            except (RnixError, pykka.ActorDeadError, pykka.Timeout) as exc:
                incarnation = self.core.started(name, None)
                self.actor_ref.tell(ChildStartFailed(name, incarnation, f"start failed: {exc}"))
                continue
            pid = got.pid if isinstance(got, Restored) else got
            incarnation = self.core.started(name, pid)
            self.agents[pid] = (name, incarnation)
            extra = {"resumed": True} if isinstance(got, Restored) else {}
            self._event(
                "SupervisorChildStart", child=name, child_pid=pid, incarnation=incarnation, **extra
            )

    def _start_sub(self, name: str, spec: SupervisorSpec) -> None:
        incarnation = self.core.started(name, None)
        path = f"{self.path}/{name}"
        endpoint = Endpoint(f"supervisor {path}")
        ref = Supervisor.start(spec, self.deps, path, self.endpoint, endpoint)
        self.subs[name] = _Sub(ref, endpoint, incarnation)
        self._event("SupervisorChildStart", child=name, incarnation=incarnation)

    def _spawn(self, spec: ChildSpec, first: bool = False) -> Any:
        """Send the spawn request (the new process is linked to this supervisor before it
        runs); returns the future of the new PID. The first start of a ``resume`` child with
        a checkpoint left by a previous system resumes it instead (a future of `Restored`)."""
        child_path = f"{self.path}/{spec.name}"
        resumable = self.deps.resumable(child_path) if first and spec.resume else None
        if resumable is not None:
            if self.deps.prepare_restore is not None:
                self.deps.prepare_restore(resumable)  # its replay script parses here
            restore = Restore(resumable, self.origin, link=self.endpoint, devices=spec.devices)
            return self.deps.kernel.ask(restore, block=False)
        agent = self.deps.resolve_agent(spec, self.path)
        if self.deps.prepare_spawn is not None:
            self.deps.prepare_spawn(agent)
        request = SpawnRequest(
            template=agent,
            intent=spec.intent,
            devices=spec.devices,
            max_steps=spec.max_steps,
            origin=self.origin,
            link=self.endpoint,
            supervisor_child=child_path,
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
        """Stop children in the given order (callers pass reverse start order); see
        `Stopper`. ``mark=False`` when the core already decided (and may restart them)."""
        targets: list[Target] = []
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
                shutdown = child.spec.shutdown_time
                targets.append(SupervisorChild(name, sub.ref, sub.endpoint, shutdown))
            elif child.pid is not None and self.agents.pop(child.pid, None) is not None:
                targets.append(AgentChild(name, child.pid, child.spec.shutdown_time))
        self._flush_events()
        self.final_views.update(self.stopper.stop(targets, kill))

    def _leave_resumable(self) -> None:
        """Unlink the live ``resume: true`` agent children and forget them: the system's
        graceful stop keeps them (suspended, or lost if still running) to resume later."""
        for pid, (name, _) in list(self.agents.items()):
            child = self.core.children.get(name)
            if child is None or not child.spec.resume:
                continue
            for other in self.endpoint.links:
                if other.pid == pid:
                    unlink_endpoints(self.endpoint, other)
            del self.agents[pid]
            self._event("SupervisorChildKept", child=name, child_pid=pid)

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
        self._flush_events()
        child = self.core.children[name]
        if child.pid is not None:
            # The exit reached us from the child itself; the planner learns its record from
            # the kernel's Exit event, published just before the kernel marks it dead.
            self.deps.table.wait_for(child.pid, lambda p: p.state is ProcessState.DEAD, 5.0)
        answer = offer_migration(self.deps.planner(), self.path, name, child)
        new_spec = None if answer is None else migrated_spec(child.spec, answer)
        if answer is not None and new_spec is not None:
            self._event(
                "SupervisorMigration",
                child=name,
                original=agent_name(child.spec.agent),
                substitute=answer.substitute,
                reason=answer.reason,
            )
            self._execute([self.core.replace_spec(name, new_spec)])
            return
        self._stop_all(kill=False)
        why = "" if answer is None else f"; migration {answer.decision}: {answer.reason}"
        reason = (
            f"max_restarts_exceeded: child {name!r} needed more than "
            f"{self.spec.max_restarts} restarts in {self.spec.max_window}s "
            f"(last exit: {reason}){why}"
        )
        self._event("SupervisorEscalate", child=name, reason=reason)
        self._end(ExitKind.ESCALATED, "escalated", reason)

    # -- views and events -------------------------------------------------------------------
    def view(self) -> SupervisorView:
        sub_views: dict[str, SupervisorView | None] = dict(self.final_views)
        for name, sub in self.subs.items():
            try:
                sub_views[name] = sub.ref.ask(QueryTree(), block=True, timeout=2.0)
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
