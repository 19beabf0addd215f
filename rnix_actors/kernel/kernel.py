"""The kernel actor: owns the process table, spawns, routes signals and collects exits.

It is the single writer of the table and the store's process rows (which it sends to the
`ProcessLog`, so that no exit or spawn waits for the disk on its thread). It never ``ask``s an agent
process (agents may ask it), so no call cycle can deadlock. SIGKILL is authoritative: the kernel
records the exit at once and cancels the process's token, even if its thread is still busy.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pykka

from rnix_actors.drivers.base import Driver
from rnix_actors.errors import BadWorkdir, NoSuchProcess, RnixError, SpawnError
from rnix_actors.kernel import links
from rnix_actors.kernel.agent import AgentProcess
from rnix_actors.kernel.base import RnixActor, ThreadTracker
from rnix_actors.kernel.deadlines import Deadline, Deadlines
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.kernel.eventbus import EventBus
from rnix_actors.kernel.launch import Launcher, ProcessHandle
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.process import (
    ExitCode,
    ExitStatus,
    ProcessInfo,
    ProcessState,
    Signal,
    check_transition,
)
from rnix_actors.kernel.processlog import ProcessLog
from rnix_actors.kernel.resumption import (
    Recovered,
    Restore,
    Restored,
    checkpointer_for,
    plan_restore,
    seek_driver,
)
from rnix_actors.kernel.spawning import plan_spawn, prepare_in_caller
from rnix_actors.kernel.spec import ProcessControl, ProcessSpec
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.kernel.threads import AgentThreads
from rnix_actors.kernel.treebounds import TreeBounds, TreeLimits
from rnix_actors.messages.events import Event
from rnix_actors.messages.guards import Guard
from rnix_actors.messages.kernel import (
    AddGuard,
    DeliverMail,
    GraceExpired,
    ProcessExited,
    ProcessLost,
    ProcessStateChanged,
    QueryTable,
    RemoveGuard,
    SendSignal,
    SendSignals,
    Shutdown,
    SpawnRequest,
)
from rnix_actors.messages.links import ExitKind, ExitReason
from rnix_actors.messages.process import Pause, Reaped, Resume, Terminate
from rnix_actors.messages.processlog import FirstCheckpoint
from rnix_actors.store.checkpoints import CheckpointStore
from rnix_actors.store.db import Store
from rnix_actors.templates import AgentTemplate, Skill

log = logging.getLogger(__name__)


@attrs.frozen
class KernelDeps:
    """Everything the kernel works with, built by `rnix_actors.System`."""

    store: Store  # PIDs are allocated here, synchronously
    table: ProcessTable
    bus: pykka.ActorRef[EventBus]
    process_log: pykka.ActorRef[ProcessLog]  # process rows reach the store through it
    devices: DeviceRegistry
    drivers: Callable[[str], Driver | None]
    templates: Callable[[str], AgentTemplate | None]
    skills: Callable[[], dict[str, Skill]]
    workdir: Path
    sigterm_grace: float = 10.0
    tracker: ThreadTracker | None = None
    threads: AgentThreads | None = None  # where agent processes run
    bounds: TreeLimits = attrs.field(
        factory=TreeLimits
    )  # breadth, size and rate bounds of process trees
    checkpoints: CheckpointStore | None = None  # None: processes write no checkpoints
    # The work dir a resumed process returns to, resolved if agents may still work there,
    # else `BadWorkdir` (the config may have changed since it was spawned).
    check_workdir: Callable[[Path], Path] | None = None
    launcher: Launcher | None = None  # None: processes run here (threads of this process)


@attrs.define
class _Live:
    ref: ProcessHandle
    control: ProcessControl
    driver: Driver
    owner: pykka.ActorRef[Any] | None
    agent_spawn: bool
    endpoint: Endpoint
    timer: Deadline | None = None  # the SIGTERM grace period


class Kernel(RnixActor):
    def __init__(self, deps: KernelDeps) -> None:
        super().__init__(deps.tracker, Endpoint("kernel"))
        self.deps = deps
        self.live: dict[int, _Live] = {}
        self.guards: tuple[Guard, ...] = ()
        self.deadlines = Deadlines("KernelDeadlines")
        self.bounds = TreeBounds(deps.bounds)
        self.dormant: set[int] = set()  # suspended by a previous system: resume on SIGRESUME

    def handle(self, message: Any) -> Any:
        match message:
            case SpawnRequest():
                return self._spawn(message)
            case SendSignal(pid=pid, signal=sig, origin=origin, grace=grace, retry=retry):
                return self._signal(pid, sig, origin, grace, retry)
            case SendSignals(pids=pids, signal=sig, origin=origin, grace=grace):
                return [self._signal_one_of(p, sig, origin, grace) for p in pids]
            case ProcessStateChanged():
                self._state_changed(message)
            case ProcessExited(pid=pid, exit=exit_status):
                self._exited(pid, exit_status, message.tokens_used, message.steps)
            case DeliverMail(recipient=pid):
                live = self.live.get(pid)
                if live is None:
                    raise NoSuchProcess(pid)
                try:
                    live.ref.tell(message)
                except pykka.ActorDeadError:  # its exit is queued behind this message
                    raise NoSuchProcess(pid) from None
                return "delivered"
            case ProcessLost(pid=pid, reason=reason, origin=origin):
                if pid in self.live:
                    self._force_exit(pid, reason, origin, ExitKind.NODE_LOST)
            case GraceExpired(pid=pid, origin=origin):
                if pid in self.live:
                    self._publish(
                        pid,
                        "Signal",
                        {"signal": "SIGKILL", "origin": origin, "escalation": "grace_timeout"},
                    )
                    self._force_exit(
                        pid,
                        f"killed by SIGKILL from {origin} (SIGTERM grace period expired)",
                        origin,
                    )
            case AddGuard(guard=guard):
                self.guards = (*self.guards, guard)
            case RemoveGuard(guard=guard):
                self.guards = tuple(g for g in self.guards if g is not guard)
            case QueryTable():
                return self.deps.table.list()
            case Restore(pid=pid, origin=origin, retry=retry, link=link, devices=devices):
                return self._restore(pid, origin, retry, link, devices)
            case Recovered(infos=infos):
                for info in infos:
                    self.deps.table.put(info)
                    self.dormant.add(info.pid)
            case Shutdown(origin=origin, keep=keep):
                for pid in sorted(self.live, reverse=True):
                    if keep:
                        self._abandon(pid, f"system stop from {origin}", origin)
                    else:
                        reason = f"killed by SIGKILL from {origin} (system stop)"
                        self._force_exit(pid, reason, origin, ExitKind.SHUTDOWN)
            case _:
                self.unhandled(message)
        return None

    # -- spawning ------------------------------------------------------------------------------
    def _spawn(self, req: SpawnRequest) -> int:
        parent = self._parent(req.parent_pid) if req.parent_pid else None
        plan = plan_spawn(req, parent, self.deps.templates, self.deps.drivers, self.deps.skills())
        self.bounds.admit(req.parent_pid, req.agent_spawn)
        template, depth, devices = plan.template, plan.depth, plan.devices
        pid = self.deps.store.allocate_pid()
        info = ProcessInfo(
            pid=pid,
            uuid=str(uuid.uuid4()),
            ppid=req.parent_pid,
            template=template.name,
            intent=req.intent,
            state=ProcessState.CREATED,
            depth=depth,
            allowed_devices=tuple(sorted(devices)),
            created_at=time.time(),
            token_budget=template.limits.max_tokens,
        )
        control = ProcessControl()
        budget = self.bounds.started(pid, req.parent_pid, req.agent_spawn, template.limits)
        endpoint = Endpoint(f"PID {pid} ({template.name})", pid)
        workdir = req.workdir or self.deps.workdir
        max_steps = template.limits.max_steps if req.max_steps is None else req.max_steps
        spec = ProcessSpec(
            pid=pid,
            uuid=info.uuid,
            ppid=req.parent_pid,
            depth=depth,
            template=template,
            intent=req.intent,
            allowed=devices,
            denied=frozenset(),
            workdir=workdir,
            max_steps=max_steps,
            model=plan.model,
            driver=plan.driver,
            devices=self.deps.devices,
            guards=self.guards,
            kernel=self.actor_ref,
            bus=self.deps.bus,
            control=control,
            tracker=self.deps.tracker,
            threads=self.deps.threads,
            tree_budget=budget,
            endpoint=endpoint,
            links=() if req.link is None else (req.link,),
            prepare_spawn=self._prepare_child,
            checkpointer=checkpointer_for(
                self.deps.checkpoints, info, plan.driver, plan.model, str(workdir), max_steps,
                req.origin, child=req.supervisor_child,
            ),
        )  # fmt: skip
        self.deps.table.put(info)  # the store sees the process once it runs: one row less
        start_args = {
            "intent": req.intent,
            "origin": req.origin,
            "depth": depth,
            "ppid": req.parent_pid,
            "parent_template": "" if parent is None else parent.template,
            "agent_spawn": req.agent_spawn,
            "allowed_devices": list(info.allowed_devices),
        }
        self._launch(info, spec, req.owner, req.agent_spawn, start_args)
        if parent is not None:
            # children are table-only (the store keeps ppid), so no write here
            self.deps.table.put(attrs.evolve(parent, children=(*parent.children, pid)))
        return pid

    def _launch(
        self,
        info: ProcessInfo,
        spec: ProcessSpec,
        owner: Any,
        agent_spawn: bool,
        start_args: dict[str, Any],
    ) -> None:
        """Publish the start, mark the process running and start its actor."""
        pid, control = info.pid, spec.control
        self.deps.table.track(pid, control.figures)
        self._publish(pid, "Start", start_args, template=info.template)
        # Running before the thread starts: its first step may already read /proc. The store
        # hears of it once the thread runs.
        running = attrs.evolve(info, state=ProcessState.RUNNING)
        if info.state is not ProcessState.RUNNING:
            check_transition(info.state, running.state, pid)
        self.deps.table.put(running)
        launcher = self.deps.launcher
        try:
            ref: ProcessHandle = (
                AgentProcess.start(spec) if launcher is None else launcher.launch(spec)
            )
        except Exception as exc:  # e.g. no thread could be started: record it, start nothing
            reason = f"start failed: {type(exc).__name__}: {exc}"
            self.bounds.exited(pid, failed_agent_spawn=False)
            if spec.endpoint is not None:
                origin = str(start_args["origin"])
                links.exit(spec.endpoint, ExitReason(ExitKind.ERROR, origin, reason))
            self.deps.table.put(attrs.evolve(running, state=ProcessState.ZOMBIE))
            self._save(
                attrs.evolve(
                    running,
                    state=ProcessState.DEAD,
                    exit_code=1,
                    exit_reason=reason,
                    exit_kind=str(ExitKind.ERROR),
                    ended_at=time.time(),
                ),
                check=True,
            )
            raise SpawnError(f"could not start PID {pid}: {reason}") from exc
        assert spec.endpoint is not None
        if launcher is not None:
            running = attrs.evolve(running, node=launcher.node_of(ref))
            self.deps.table.put(running)
        self.live[pid] = _Live(ref, control, spec.driver, owner, agent_spawn, spec.endpoint)
        if spec.checkpointer is not None and spec.resume is None:
            state, messages = spec.checkpointer.first(spec.intent)
            self.deps.process_log.tell(FirstCheckpoint(pid, state, messages))
        self.deps.process_log.tell(running)

    def _prepare_child(self, agent: str) -> None:
        """Called by an agent's own thread before its spawn (reads only the immutable deps)."""
        prepare_in_caller(agent, None, None, self.deps.templates, self.deps.drivers)

    def _restore(
        self,
        pid: int,
        origin: str,
        retry: bool = False,
        link: Any = None,
        devices: tuple[str, ...] | None = None,
    ) -> Restored:
        """Resume ``pid`` from its last checkpoint at depth 0 (same PID and UUID)."""
        if pid in self.live:
            raise SpawnError(f"PID {pid} is live: send it SIGRESUME (rnix resume {pid})")
        deps = self.deps
        plan = plan_restore(
            pid, deps.store, deps.checkpoints, deps.templates, deps.drivers, deps.skills(),
            deps.table.get(pid), retry, devices,
        )  # fmt: skip
        workdir = Path(plan.resumption.identity.workdir)
        if deps.check_workdir is not None:
            try:
                workdir = deps.check_workdir(workdir)
            except SpawnError as exc:
                raise BadWorkdir(f"cannot resume PID {pid}: {exc}") from None
        self.bounds.admit(0, False)
        info, resumption, ident = plan.info, plan.resumption, plan.resumption.identity
        seek_driver(plan.driver, resumption)
        control = ProcessControl()
        spec = ProcessSpec(
            pid=pid,
            uuid=info.uuid,
            ppid=0,
            depth=0,
            template=plan.template,
            intent=info.intent,
            allowed=frozenset(info.allowed_devices),
            denied=frozenset(),
            workdir=workdir,
            max_steps=ident.max_steps,
            model=ident.model,
            driver=plan.driver,
            devices=deps.devices,
            guards=self.guards,
            kernel=self.actor_ref,
            bus=deps.bus,
            control=control,
            tracker=deps.tracker,
            threads=deps.threads,
            tree_budget=self.bounds.started(pid, 0, False, plan.template.limits),
            checkpointer=checkpointer_for(
                deps.checkpoints, info, plan.driver, ident.model, str(workdir),
                ident.max_steps, ident.origin, resumption, ident.child,
            ),
            links=() if link is None else (link,),
            resume=resumption,
            endpoint=Endpoint(f"PID {pid} ({plan.template.name})", pid),
            prepare_spawn=self._prepare_child,
        )  # fmt: skip
        if spec.checkpointer is not None:
            try:
                spec.checkpointer.resumed(resumption)  # before it runs: nothing half-resumed
            except Exception:
                self.bounds.exited(pid, failed_agent_spawn=False)
                plan.driver.release(pid)
                raise
        self.dormant.discard(pid)
        start_args = {
            "intent": info.intent,
            "origin": origin,
            "depth": 0,
            "ppid": 0,
            "resumed_from_step": resumption.step,
            "allowed_devices": list(info.allowed_devices),
        }
        if plan.note:
            start_args["refused_call"] = plan.note
        self._launch(info, spec, None, False, start_args)
        return Restored(pid, plan.note)

    def _dormant_signal(self, pid: int, sig: Signal, origin: str, retry: bool = False) -> str:
        """A signal to a suspended process of a previous system (no actor yet)."""
        if sig is Signal.SIGRESUME:
            note = self._restore(pid, origin, retry).note
            return "resuming 1 process(es)" + (f"; {note}" if note else "")
        if sig is Signal.SIGPAUSE:
            return f"noop: PID {pid} is suspended"
        info = self.deps.table.get(pid)
        assert info is not None
        self.dormant.discard(pid)
        reason = f"{sig} while suspended (from {origin})"
        kind = ExitKind.KILLED if sig is Signal.SIGKILL else ExitKind.SIGNAL
        self._save(
            attrs.evolve(
                info, state=ProcessState.DEAD, exit_code=int(ExitCode.ERROR),
                exit_reason=reason, result=reason, ended_at=time.time(),
                exit_kind=str(kind), exit_origin=origin,
            ),
            check=True,
        )  # fmt: skip
        return f"{sig} delivered"

    def _abandon(self, pid: int, reason: str, origin: str) -> None:
        """Stop a live process without recording an exit: the store keeps its state."""
        live = self.live.pop(pid)
        if live.timer is not None:
            live.timer.cancel()
        live.control.cancel.cancel(reason)
        live.driver.release(pid)
        links.exit(live.endpoint, ExitReason(ExitKind.SHUTDOWN, origin, reason))
        _tell(live.ref, Reaped())

    def _parent(self, pid: int) -> ProcessInfo:
        info = self.deps.table.get(pid)
        if info is None or pid not in self.live:
            raise SpawnError(f"parent PID {pid} is not a live process")
        return info

    # -- signals -------------------------------------------------------------------------------
    def _signal_one_of(self, pid: int, sig: Signal, origin: str, grace: float | None) -> str:
        """One signal of a batch: a failure is this process's answer, never the batch's."""
        try:
            return self._signal(pid, sig, origin, grace)
        except RnixError as exc:
            return f"failed: {exc}"
        except Exception as exc:
            log.exception("%s to PID %d failed", sig, pid)
            return f"failed: {type(exc).__name__}: {exc}"

    def _signal(
        self, pid: int, sig: Signal, origin: str, grace: float | None = None, retry: bool = False
    ) -> str:
        info = self.deps.table.get(pid)
        if info is None:
            raise NoSuchProcess(pid)
        args: dict[str, Any] = {"signal": str(sig), "origin": origin}
        if grace is not None:
            args["grace"] = grace
        self._publish(pid, "Signal", args)
        if pid in self.dormant:
            return self._dormant_signal(pid, sig, origin, retry)
        if pid not in self.live:
            return f"noop: PID {pid} already exited"
        if sig is Signal.SIGPAUSE:
            affected = [
                p for p in self.deps.table.subtree(pid) if self._state(p) is ProcessState.RUNNING
            ]
            for p in affected:
                self.live[p].control.request_pause(origin)
                _tell(self.live[p].ref, Pause(origin))
            return f"pausing {len(affected)} process(es)"
        if sig is Signal.SIGRESUME:
            affected = [p for p in self.deps.table.subtree(pid) if p in self.live]
            for p in affected:
                self.live[p].control.pause.clear()
                _tell(self.live[p].ref, Resume(origin, retry and p == pid))
                if self._state(p) is ProcessState.SUSPENDED:
                    # A suspended process is idle, so it resumes as soon as it reads the
                    # message; record it now so that a wait() right after sees it running.
                    self._transition(p, ProcessState.RUNNING)
            return f"resuming {len(affected)} process(es)"
        # Terminating signals reach the whole subtree: a child only exists to serve its parent.
        for p in reversed(list(self.deps.table.subtree(pid))):
            self._terminate(p, sig, origin, grace)
        return f"{sig} delivered"

    def _terminate(self, pid: int, sig: Signal, origin: str, grace: float | None = None) -> None:
        live = self.live.get(pid)
        if live is None:
            return
        if sig is Signal.SIGKILL:
            self._force_exit(pid, f"killed by SIGKILL from {origin}", origin)
        elif self._state(pid) is ProcessState.SUSPENDED:
            self._force_exit(pid, f"{sig} while suspended (from {origin})", origin, ExitKind.SIGNAL)
        else:
            if sig is Signal.SIGINT:
                live.control.cancel.cancel(f"SIGINT from {origin}")
            live.control.request_stop(str(sig), origin)  # seen even behind a queued step
            # An actor that already ended refuses the message; its exit is queued for us.
            _tell(live.ref, Terminate(sig, origin))
            seconds = self.deps.sigterm_grace if grace is None else grace
            if live.timer is None and not math.isinf(seconds):
                live.timer = self.deadlines.schedule(
                    seconds, functools.partial(self._grace_expired, pid, origin)
                )

    def _grace_expired(self, pid: int, origin: str) -> None:
        # Runs on the deadlines thread: hand the decision back to the kernel's thread.
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(GraceExpired(pid, origin))

    # -- exits and state -----------------------------------------------------------------------
    def _state(self, pid: int) -> ProcessState | None:
        info = self.deps.table.get(pid)
        return None if info is None else info.state

    def _state_changed(self, msg: ProcessStateChanged) -> None:
        if msg.pid not in self.live or self._state(msg.pid) == msg.state:
            return
        info = self.deps.table.get(msg.pid)
        assert info is not None
        exit_status = msg.exit
        self._save(
            attrs.evolve(
                info,
                state=msg.state,
                exit_code=None if exit_status is None else int(exit_status.code),
                exit_reason="" if exit_status is None else exit_status.reason,
                exit_kind="" if exit_status is None else str(exit_status.kind),
                exit_origin="" if exit_status is None else exit_status.origin,
                tokens_used=msg.tokens_used,
                steps=msg.steps,
                cost_usd=max(info.cost_usd, self.live[msg.pid].control.figures.cost_usd),
            ),
            check=True,
        )

    def _exited(self, pid: int, exit_status: ExitStatus, tokens: int, steps: int) -> None:
        if pid not in self.live:
            return  # stale: already killed and reaped by the kernel
        info = self.deps.table.get(pid)
        assert info is not None
        self._finalize(info, exit_status, tokens, steps)

    def _force_exit(
        self, pid: int, reason: str, origin: str, kind: ExitKind = ExitKind.KILLED
    ) -> None:
        """SIGKILL is authoritative: the process is dead now, even if its thread is still in
        a call. Its links hear of it from here, since its own teardown may come much later."""
        live = self.live.get(pid)
        info = self.deps.table.get(pid)
        if live is None or info is None:
            return
        live.control.cancel.cancel(reason)
        status = ExitStatus(ExitCode.ERROR, reason, reason, kind, origin)
        self._finalize(info, status, info.tokens_used, info.steps)
        links.exit(live.endpoint, status.why)
        _tell(live.ref, Reaped())

    def _finalize(
        self, info: ProcessInfo, exit_status: ExitStatus, tokens: int, steps: int
    ) -> None:
        """Record the exit (→ zombie), reap (→ dead), then notify parent and owner."""
        pid = info.pid
        live = self.live.pop(pid)
        self.bounds.exited(pid, live.agent_spawn and not exit_status.ok)
        if live.timer is not None:
            live.timer.cancel()
        ended = attrs.evolve(
            info,
            exit_code=int(exit_status.code),
            exit_reason=exit_status.reason,
            exit_kind=str(exit_status.kind),
            exit_origin=exit_status.origin,
            result=exit_status.result,
            tokens_used=tokens,
            steps=steps,
            cost_usd=max(info.cost_usd, live.control.figures.cost_usd),
            ended_at=time.time(),
        )
        if info.state is not ProcessState.SUSPENDED:
            check_transition(info.state, ProcessState.ZOMBIE, pid)
            ended = attrs.evolve(ended, state=ProcessState.ZOMBIE)
            self.deps.table.put(ended)
        self._publish(
            pid,
            "Exit",
            exit_status.event_args(),
            result=exit_status.result,
            tokens=tokens,
            template=info.template,
        )
        live.driver.release(pid)
        # Reaped before anyone hears of it, so that whoever reacts sees a dead process.
        dead = attrs.evolve(ended, state=ProcessState.DEAD)
        check_transition(ended.state, dead.state, pid)
        self.deps.table.put(dead)
        notice = ProcessExited(pid, exit_status, tokens, steps, info.template)
        parent = self.live.get(info.ppid)
        if parent is not None and live.agent_spawn:
            parent.ref.tell(notice)
        if live.owner is not None:
            try:
                live.owner.tell(notice)
            except pykka.ActorDeadError:
                log.warning("owner of PID %d is gone; exit not delivered", pid)
        self.deps.process_log.tell(dead)
        for child in info.children:
            if child in self.live:
                self._terminate(child, Signal.SIGKILL, f"parent PID {pid} exited")

    def _transition(self, pid: int, state: ProcessState) -> None:
        info = self.deps.table.get(pid)
        assert info is not None
        self._save(attrs.evolve(info, state=state), check=True)

    def _save(self, info: ProcessInfo, check: bool = False) -> None:
        if check:
            old = self.deps.table.get(info.pid)
            if old is not None and old.state != info.state:
                check_transition(old.state, info.state, info.pid)
        self.deps.table.put(info)
        self.deps.process_log.tell(info)

    def _publish(
        self,
        pid: int,
        syscall: str,
        args: dict[str, Any],
        result: Any = None,
        tokens: int = 0,
        template: str = "",
    ) -> None:
        if not template:
            info = self.deps.table.get(pid)
            template = "" if info is None else info.template
        self.deps.bus.tell(
            Event(
                ts=time.time(),
                pid=pid,
                template=template,
                step=0,
                syscall=syscall,
                args=args,
                result=result,
                tokens=tokens,
            )
        )

    def crashed(self, where: str, exc: BaseException) -> None:
        log.error("the kernel crashed in %s: %r", where, exc)
        self._end_all(
            ExitReason(
                ExitKind.FAILED, "kernel", f"kernel crashed in {where}: {type(exc).__name__}: {exc}"
            )
        )

    def stopped(self) -> None:
        signalled = self.endpoint.signalled
        reason = self.exit_reason or (
            signalled.reason
            if signalled is not None
            else ExitReason(ExitKind.KILLED, "kernel", "kernel stopped without a system stop")
        )
        self._end_all(reason)
        self.deadlines.close()

    def _end_all(self, why: ExitReason) -> None:
        """The kernel is ending: no process may outlive the table's owner. Each live process
        is killed and recorded dead (kind ``killed``, origin ``kernel``, the kernel's reason
        in the detail), so every ``wait`` returns and every supervisor sees a typed exit."""
        if not self.live:
            return
        reason = f"killed by the kernel's end: {why.detail or why.kind}"
        for pid in sorted(self.live, reverse=True):
            if pid not in self.live:  # a child, already ended with its parent
                continue
            try:
                # Killed, not failed: the process's end is not its own doing (a supervisor
                # sees an abnormal exit; the planner's ledger does not count it against it).
                self._force_exit(pid, reason, "kernel", ExitKind.KILLED)
            except Exception:
                log.exception("PID %d could not be ended with the kernel", pid)
                self.live.pop(pid, None)


def _tell(ref: ProcessHandle, message: object) -> None:
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
