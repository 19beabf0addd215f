"""The kernel's side of a process's start: a spawn, a resume from a checkpoint, the launch.

What to start is decided without actor state (`rnix_actors.kernel.spawning.plan_spawn`,
`rnix_actors.kernel.resumption.plan_restore`); `Starting` allocates the PID, builds the
process's `ProcessSpec`, records it running and starts its actor, here or through the
`Launcher`.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import attrs

from rnix_actors.drivers.base import Driver
from rnix_actors.errors import BadWorkdir, SpawnError
from rnix_actors.kernel import links
from rnix_actors.kernel.agent import AgentProcess
from rnix_actors.kernel.checkpointing import Checkpointer, Resumption
from rnix_actors.kernel.kernelbase import KernelBase, Live
from rnix_actors.kernel.launch import ProcessHandle
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.process import ProcessInfo, ProcessState, check_transition
from rnix_actors.kernel.resumption import (
    Restored,
    RestorePlan,
    checkpointer_for,
    plan_restore,
    seek_driver,
)
from rnix_actors.kernel.spawning import plan_spawn, prepare_in_caller
from rnix_actors.kernel.spec import ProcessControl, ProcessSpec
from rnix_actors.kernel.treebounds import TreeBudget
from rnix_actors.messages.kernel import SpawnRequest
from rnix_actors.messages.links import ExitKind, ExitReason
from rnix_actors.messages.processlog import FirstCheckpoint
from rnix_actors.templates import AgentTemplate


class Starting(KernelBase):
    """Spawning and resuming processes."""

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
        budget = self.bounds.started(pid, req.parent_pid, req.agent_spawn, template.limits)
        workdir = req.workdir or self.deps.workdir
        max_steps = template.limits.max_steps if req.max_steps is None else req.max_steps
        checkpointer = checkpointer_for(
            self.deps.checkpoints, info, plan.driver, plan.model, str(workdir), max_steps,
            req.origin, child=req.supervisor_child,
        )  # fmt: skip
        spec = self._spec(
            info, template, plan.driver, plan.model, workdir, max_steps, budget, checkpointer,
            req.link,
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

    def _spec(
        self,
        info: ProcessInfo,
        template: AgentTemplate,
        driver: Driver,
        model: str,
        workdir: Path,
        max_steps: int,
        budget: TreeBudget | None,
        checkpointer: Checkpointer | None,
        link: Any,
        resume: Resumption | None = None,
    ) -> ProcessSpec:
        """The spec of the process of ``info``, with the kernel's parts of it filled in."""
        deps, pid = self.deps, info.pid
        return ProcessSpec(
            pid=pid, uuid=info.uuid, ppid=info.ppid, depth=info.depth, template=template,
            intent=info.intent, allowed=frozenset(info.allowed_devices), denied=frozenset(),
            workdir=workdir, max_steps=max_steps, model=model, driver=driver,
            devices=deps.devices, guards=self.guards, kernel=self.actor_ref, bus=deps.bus,
            control=ProcessControl(), tracker=deps.tracker, threads=deps.threads,
            tree_budget=budget, endpoint=Endpoint(f"PID {pid} ({template.name})", pid),
            links=() if link is None else (link,), checkpointer=checkpointer, resume=resume,
            prepare_spawn=self._prepare_child,
        )  # fmt: skip

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
            raise self._start_failed(running, spec, str(start_args["origin"]), exc) from exc
        assert spec.endpoint is not None
        if launcher is not None:
            running = attrs.evolve(running, node=launcher.node_of(ref))
            self.deps.table.put(running)
        self.live[pid] = Live(ref, control, spec.driver, owner, agent_spawn, spec.endpoint)
        if spec.checkpointer is not None and spec.resume is None:
            state, messages = spec.checkpointer.first(spec.intent)
            self.deps.process_log.tell(FirstCheckpoint(pid, state, messages))
        self.deps.process_log.tell(running)

    def _start_failed(
        self, running: ProcessInfo, spec: ProcessSpec, origin: str, exc: Exception
    ) -> SpawnError:
        """Record a process whose actor could not start as dead; the error to raise."""
        pid = running.pid
        reason = f"start failed: {type(exc).__name__}: {exc}"
        self.bounds.exited(pid, failed_agent_spawn=False)
        if spec.endpoint is not None:
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
        return SpawnError(f"could not start PID {pid}: {reason}")

    def _prepare_child(self, agent: str) -> None:
        """Called by an agent's own thread before its spawn (reads only the immutable deps)."""
        prepare_in_caller(agent, None, None, self.deps.templates, self.deps.drivers)

    def _parent(self, pid: int) -> ProcessInfo:
        info = self.deps.table.get(pid)
        if info is None or pid not in self.live:
            raise SpawnError(f"parent PID {pid} is not a live process")
        return info

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
        workdir = self._resumed_workdir(pid, plan)
        self.bounds.admit(0, False)
        info, resumption, ident = plan.info, plan.resumption, plan.resumption.identity
        seek_driver(plan.driver, resumption)
        budget = self.bounds.started(pid, 0, False, plan.template.limits)
        checkpointer = checkpointer_for(
            deps.checkpoints, info, plan.driver, ident.model, str(workdir),
            ident.max_steps, ident.origin, resumption, ident.child,
        )  # fmt: skip
        spec = self._spec(
            info, plan.template, plan.driver, ident.model, workdir, ident.max_steps, budget,
            checkpointer, link, resumption,
        )  # fmt: skip
        if checkpointer is not None:
            try:
                checkpointer.resumed(resumption)  # before it runs: nothing half-resumed
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

    def _resumed_workdir(self, pid: int, plan: RestorePlan) -> Path:
        """The work dir ``pid`` resumes in, if agents may still work there."""
        workdir = Path(plan.resumption.identity.workdir)
        if self.deps.check_workdir is not None:
            try:
                workdir = self.deps.check_workdir(workdir)
            except SpawnError as exc:
                raise BadWorkdir(f"cannot resume PID {pid}: {exc}") from None
        return workdir
