"""What a workflow run reports: live progress items and the final result of every node."""

from __future__ import annotations

from typing import Any, Literal

import attrs

ProgressKind = Literal[
    "prefer", "start", "running", "restart", "migrated", "declined", "done", "failed"
]
NodeStatus = Literal["completed", "migrated", "failed"]


@attrs.frozen
class Progress:
    """One live update: which node runs, finished, failed, migrated."""

    workflow: str
    node: str
    kind: ProgressKind
    agent: str
    pid: int | None = None
    detail: str = ""

    def text(self) -> str:
        pid = f" (PID {self.pid})" if self.pid is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"[{self.node}] {self.kind} {self.agent}{pid}{detail}"

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Attempt:
    """One run of a node's task by one agent process."""

    pid: int
    agent: str
    ok: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class NodeResult:
    """``completed``; ``migrated`` (migrated and completed by ``ran``); or ``failed`` with
    ``reason`` and the chain of ``attempts`` (empty when a dependency failed first)."""

    name: str
    agent: str  # the agent the compose file names
    ran: str  # the agent that produced the result (or ran last)
    status: NodeStatus
    result: str = ""
    reason: str = ""
    attempts: tuple[Attempt, ...] = ()
    preferred: str | None = None  # the substitute a reinforced route chose
    migrated_to: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["attempts"] = [a.to_dict() for a in self.attempts]
        return data


@attrs.frozen
class WorkflowResult:
    workflow: str
    run_id: str
    nodes: tuple[NodeResult, ...]

    @property
    def ok(self) -> bool:
        return all(node.ok for node in self.nodes)

    @property
    def status(self) -> str:
        return "completed" if self.ok else "failed"

    @property
    def result(self) -> str:
        """The result of the last node (a pipe's output)."""
        return self.nodes[-1].result if self.nodes else ""

    def node(self, name: str) -> NodeResult:
        return next(n for n in self.nodes if n.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "run_id": self.run_id,
            "status": self.status,
            "nodes": [n.to_dict() for n in self.nodes],
        }

    def summary(self) -> str:
        done = sum(1 for n in self.nodes if n.ok)
        lines = [f"Workflow {self.workflow}: {self.status} ({done}/{len(self.nodes)} nodes)"]
        for node in self.nodes:
            if node.status == "migrated":
                how = f"migrated {node.agent} → {node.migrated_to}, completed"
            elif node.status == "completed":
                how = f"completed by {node.ran}"
                if node.preferred:
                    how += f" (reinforced path, instead of {node.agent})"
            else:
                how = f"failed: {node.reason}"
            lines.append(f"  {node.name:<16} {how}")
            if node.status == "failed":
                for attempt in node.attempts:
                    outcome = "ok" if attempt.ok else attempt.reason
                    lines.append(f"      PID {attempt.pid} {attempt.agent}: {outcome}")
        return "\n".join(lines)
