"""The compose engine: runs a workflow DAG, one supervisor per node.

`ComposeEngine.run` blocks the calling thread (like `System.wait`) and reacts to the
supervisors' events: independent nodes run in parallel, each node's result becomes part of its
dependants' intent, a node whose supervisor gives up is migrated by the planner or fails (and
its dependants are reported failed, never silently dropped). After the run it reinforces or
weakens the node's preferred substitute (`rnix_actors.compose.routes`) and records ``pipe``
edges for every result that flowed to a dependant.
"""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from rnix_actors.compose.dag import dependants, ready
from rnix_actors.compose.results import Attempt, NodeResult, Progress, WorkflowResult
from rnix_actors.compose.routes import Route, RouteStore, choose, reinforce
from rnix_actors.compose.spec import Node, Workflow, load_workflow, parse_pipe, pipeline
from rnix_actors.errors import RnixError
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.messages.events import Event
from rnix_actors.messages.links import ExitReason
from rnix_actors.messages.supervision import SUPERVISOR_EVENTS
from rnix_actors.store.db import Store
from rnix_actors.supervision.spec import ChildSpec, SupervisorSpec
from rnix_actors.templates import AgentTemplate, Limits, Skill, effective_devices

DEFAULT_TIMEOUT = 600.0
INPUT_CHARS = 4000
OnProgress = Callable[[Progress], None]


def node_path(workflow: str, node: str, run_id: str) -> str:
    """The path of the supervisor that runs ``node`` in run ``run_id`` of ``workflow``."""
    return f"/compose.{workflow}.{node}.{run_id}"


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Stoppable(Protocol):
    def stop(self, kill: bool = ..., origin: str = ...) -> None: ...


class ComposeHost(Protocol):
    """What the engine needs from the system (`rnix_actors.System` fits structurally)."""

    def subscribe(
        self, callback: Callable[[Event], None], syscalls: Iterable[str] | None = None
    ) -> Cancellable: ...

    def supervise(self, spec: SupervisorSpec) -> Stoppable: ...

    def info(self, pid: int) -> ProcessInfo: ...

    @property
    def templates(self) -> dict[str, AgentTemplate]: ...

    @property
    def skills(self) -> dict[str, Skill]: ...


class PipeRecorder(Protocol):
    def record(self, kind: Any, source: str, target: str, label: str = "") -> None: ...


@attrs.define
class _Run:
    """The mutable state of one node during one workflow run."""

    node: Node
    agent: str  # the agent started (the file's, or the reinforced substitute)
    route: Route | None
    path: str = ""
    handle: Stoppable | None = None
    attempts: list[Attempt] = attrs.field(factory=list)
    migrated_to: str | None = None
    outcome: NodeResult | None = None
    migrating: bool = False

    @property
    def ran(self) -> str:
        return self.migrated_to or self.agent


class ComposeEngine:
    """Runs workflows and pipes on ``host``. Thread-safe: each run has its own subscription."""

    def __init__(self, host: ComposeHost, store: Store, topology: PipeRecorder | None = None):
        self.host = host
        self.routes_db = RouteStore(store.open_for("compose"))  # closed by `close`
        self.topology = topology

    def close(self) -> None:
        """Close the engine's store connection (the system does when it stops)."""
        self.routes_db.store.close()

    def load(self, path: Path | str) -> Workflow:
        """Parse and validate a compose file; raises `ConfigError` (file:LINE, field)."""
        return load_workflow(path, lambda name: name in self.host.templates)

    def routes(self) -> list[Route]:
        """Every learned node preference."""
        return self.routes_db.all()

    def pipe(
        self,
        stages: str | Sequence[str | tuple[str, str]],
        intent: str,
        on_progress: OnProgress | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        name: str = "pipe",
    ) -> WorkflowResult:
        """Run ``A | B | C``: ``intent`` goes to A, each result is the next stage's input."""
        parsed = parse_pipe(stages) if isinstance(stages, str) else list(stages)
        workflow = pipeline(parsed, intent, name)
        known = self.host.templates
        for node in workflow.nodes:
            if node.agent not in known:
                raise RnixError(f"pipe: unknown agent {node.agent!r}; known: {', '.join(known)}")
        return self.run(workflow, on_progress, timeout)

    def run(
        self,
        workflow: Workflow,
        on_progress: OnProgress | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> WorkflowResult:
        """Run ``workflow`` to the end (or ``timeout`` seconds, after which running nodes are
        killed and reported failed). Every node ends completed, migrated or failed."""
        run_id = uuid.uuid4().hex[:8]
        inbox: queue.Queue[Event] = queue.Queue()
        # The supervisors of this run, by the path each was started with: an event belongs
        # to the run when its supervisor's path is one of them (exact, never a prefix match).
        mine = frozenset(node_path(workflow.name, node.name, run_id) for node in workflow.nodes)

        def forward(event: Event) -> None:
            if event.template == "supervisor" and event.args.get("path") in mine:
                inbox.put(event)

        runs = {node.name: self._plan_node(workflow, node) for node in workflow.nodes}
        by_path: dict[str, _Run] = {}
        report = on_progress or (lambda _progress: None)
        subscription = self.host.subscribe(forward, SUPERVISOR_EVENTS)
        try:
            deadline = time.monotonic() + timeout
            self._start_ready(workflow, runs, by_path, run_id, report)
            while any(r.outcome is None for r in runs.values()):
                try:
                    event = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    self._time_out(workflow, runs, timeout, report)
                    break
                state = by_path.get(str(event.args.get("path", "")))
                settled = state is not None and state.outcome is None
                if settled and state is not None and self._on_event(workflow, state, event, report):
                    self._settled(workflow, runs, state, report)
                    self._start_ready(workflow, runs, by_path, run_id, report)
        finally:
            subscription.cancel()
        outcomes = tuple(runs[n.name].outcome for n in workflow.nodes)
        return WorkflowResult(workflow.name, run_id, tuple(o for o in outcomes if o is not None))

    # -- starting nodes ---------------------------------------------------------------------
    def _plan_node(self, workflow: Workflow, node: Node) -> _Run:
        route = self.routes_db.get(workflow.name, node.name, node.agent)
        agent = choose(node.agent, route)
        if agent not in self.host.templates:  # a substitute template that no longer exists
            agent = node.agent
        return _Run(node, agent, route)

    def _start_ready(
        self,
        workflow: Workflow,
        runs: dict[str, _Run],
        by_path: dict[str, _Run],
        run_id: str,
        report: OnProgress,
    ) -> None:
        done = [n for n, r in runs.items() if r.outcome is not None and r.outcome.ok]
        started = [n for n, r in runs.items() if r.path or r.outcome is not None]
        for name in ready(workflow.deps, done, started):
            state = runs[name]
            state.path = node_path(workflow.name, name, run_id)
            by_path[state.path] = state
            if state.agent != state.node.agent and state.route is not None:
                detail = (
                    f"reinforced path (weight {state.route.weight}): {state.agent} instead of "
                    f"{state.node.agent}"
                )
                report(Progress(workflow.name, name, "prefer", state.agent, detail=detail))
            report(Progress(workflow.name, name, "start", state.agent))
            try:
                state.handle = self.host.supervise(self._spec(workflow, state, runs))
            except RnixError as exc:
                state.outcome = self._failed(state, f"could not start: {exc}")
                report(Progress(workflow.name, name, "failed", state.agent, detail=str(exc)))
                self._settled(workflow, runs, state, report)

    def _spec(self, workflow: Workflow, state: _Run, runs: dict[str, _Run]) -> SupervisorSpec:
        node = state.node
        templates, skills = self.host.templates, self.host.skills
        # The node's whitelist is the file's agent's: a substitute (preferred or migrated)
        # runs with its own devices ∩ these, never more.
        devices = tuple(sorted(effective_devices(templates[node.agent], skills)))
        budgets = node.budgets
        agent: str | AgentTemplate = state.agent
        if budgets.max_tokens is not None or budgets.step_timeout is not None:
            template = templates[state.agent]
            limits: Limits = attrs.evolve(
                template.limits,
                max_tokens=template.limits.max_tokens
                if budgets.max_tokens is None
                else budgets.max_tokens,
                step_timeout=template.limits.step_timeout
                if budgets.step_timeout is None
                else budgets.step_timeout,
            )
            agent = attrs.evolve(template, limits=limits)
        child = ChildSpec(
            name=node.name,
            agent=agent,
            intent=node_intent(workflow, node, {d: runs[d].outcome for d in node.depends_on}),
            restart=node.restart,
            devices=devices,  # () for a device-less agent: a substitute gains none either
            max_steps=budgets.max_steps,
        )
        return SupervisorSpec(
            name=state.path.lstrip("/"),
            children=(child,),
            max_restarts=node.max_restarts,
            max_window=node.max_window,
        )

    # -- reacting to the supervisors --------------------------------------------------------
    def _on_event(self, workflow: Workflow, state: _Run, event: Event, report: OnProgress) -> bool:
        """Apply one supervisor event; True when it settled the node."""
        args, name = event.args, state.node.name
        match event.syscall:
            case "SupervisorChildStart":
                state.migrating = False
                report(Progress(workflow.name, name, "running", state.ran, event.pid))
            case "SupervisorRestart" if not state.migrating:
                detail = f"restart {args.get('restarts')} after PID {args.get('old_pid')}"
                report(Progress(workflow.name, name, "restart", state.ran, detail=detail))
            case "SupervisorChildExit" if args.get("child_pid"):
                pid = int(args["child_pid"])
                why = ExitReason.from_event_args(args)
                ok = not why.abnormal
                state.attempts.append(Attempt(pid, self._template(pid, state), ok, why.detail))
                if ok:
                    state.outcome = self._completed(state, pid)
                    if state.node.restart == "permanent" and state.handle is not None:
                        with contextlib.suppress(RnixError):
                            state.handle.stop(origin="compose")
            case "SupervisorMigration":
                state.migrated_to = str(args.get("substitute"))
                state.migrating = True  # the substitute's start is not a restart
                detail = f"{args.get('original')} → {state.migrated_to}: {args.get('reason')}"
                report(Progress(workflow.name, name, "migrated", state.migrated_to, detail=detail))
            case "SupervisorEscalate":
                state.outcome = self._failed(state, str(args.get("reason", "")))
            case "SupervisorExit":
                last = state.attempts[-1] if state.attempts else None
                reason = last.reason if last else str(args.get("reason", ""))
                state.outcome = self._failed(state, f"no attempt completed (last: {reason})")
        outcome = state.outcome
        if outcome is None:
            return False
        if outcome.ok:
            report(Progress(workflow.name, name, "done", outcome.ran))
        else:
            report(Progress(workflow.name, name, "failed", outcome.ran, detail=outcome.reason))
        return True

    def _template(self, pid: int, state: _Run) -> str:
        with contextlib.suppress(RnixError):
            return self.host.info(pid).template
        return state.ran

    def _completed(self, state: _Run, pid: int) -> NodeResult:
        result = ""
        with contextlib.suppress(RnixError):
            result = self.host.info(pid).result
        return NodeResult(
            name=state.node.name,
            agent=state.node.agent,
            ran=state.ran,
            status="migrated" if state.migrated_to else "completed",
            result=result,
            attempts=tuple(state.attempts),
            preferred=state.agent if state.agent != state.node.agent else None,
            migrated_to=state.migrated_to,
        )

    def _failed(self, state: _Run, reason: str) -> NodeResult:
        return NodeResult(
            name=state.node.name,
            agent=state.node.agent,
            ran=state.ran,
            status="failed",
            reason=reason,
            attempts=tuple(state.attempts),
            preferred=state.agent if state.agent != state.node.agent else None,
            migrated_to=state.migrated_to,
        )

    def _settled(
        self, workflow: Workflow, runs: dict[str, _Run], state: _Run, report: OnProgress
    ) -> None:
        outcome = state.outcome
        assert outcome is not None
        node = state.node
        if state.path:
            updated = reinforce(
                state.route,
                workflow.name,
                node.name,
                node.agent,
                state.agent,
                state.migrated_to,
                outcome.ok,
            )
            if updated is not None:
                self.routes_db.put(updated)
        if outcome.ok and self.topology is not None:
            for dep in node.depends_on:
                self.topology.record("pipe", runs[dep].ran, state.ran, workflow.name)
        if not outcome.ok:
            for name in dependants(workflow.deps, node.name):
                blocked = runs[name]
                if blocked.outcome is None and not blocked.path:
                    reason = f"not started: dependency {node.name!r} failed"
                    blocked.outcome = self._failed(blocked, reason)
                    report(Progress(workflow.name, name, "failed", blocked.agent, detail=reason))

    def _time_out(
        self, workflow: Workflow, runs: dict[str, _Run], timeout: float, report: OnProgress
    ) -> None:
        for state in runs.values():
            if state.outcome is not None:
                continue
            if state.handle is not None:
                with contextlib.suppress(RnixError):
                    state.handle.stop(kill=True, origin="compose timeout")
            state.outcome = self._failed(state, f"timed out after {timeout:g}s")
            report(Progress(workflow.name, state.node.name, "failed", state.ran, detail="timeout"))


def node_intent(workflow: Workflow, node: Node, inputs: dict[str, NodeResult | None]) -> str:
    """The node's task, the workflow's intent and its dependencies' results."""
    parts = [node.intent or workflow.intent]
    if workflow.intent and node.intent:
        parts += ["", f"Workflow '{workflow.name}': {workflow.intent}"]
    if inputs:
        parts += ["", "Input from earlier steps:"]
        for name, result in inputs.items():
            text = "" if result is None else result.result
            if len(text) > INPUT_CHARS:
                text = text[:INPUT_CHARS] + f"…[{len(text)} chars]"
            by = "" if result is None else f" ({result.ran})"
            parts += [f"--- {name}{by} ---", text]
    return "\n".join(parts)
