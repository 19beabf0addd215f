"""Read-only snapshots of supervision trees for `System.tree()` and ``rnix tree``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from rnix_actors.templates import AgentTemplate

if TYPE_CHECKING:
    from rnix_actors.kernel.process import ProcessInfo
    from rnix_actors.kernel.table import ProcessTable
    from rnix_actors.supervision.core import SupervisorCore


@attrs.frozen
class ChildView:
    name: str
    path: str
    kind: str  # "agent" or "supervisor"
    status: str  # starting running restarting stopped done failed
    restart: str
    restarts: int
    agent: str = ""
    pid: int | None = None
    state: str = ""  # the process state of an agent child
    old_pids: tuple[int, ...] = ()
    last_exit: str = ""
    supervisor: SupervisorView | None = None

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["old_pids"] = list(self.old_pids)
        data["supervisor"] = None if self.supervisor is None else self.supervisor.to_dict()
        return data


@attrs.frozen
class SupervisorView:
    name: str
    path: str
    strategy: str
    status: str  # running giving_up escalated completed stopped
    restarts: int
    max_restarts: int
    max_window: float
    children: tuple[ChildView, ...] = ()
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["children"] = [c.to_dict() for c in self.children]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SupervisorView:
        """The inverse of `to_dict` (a view that came over the wire)."""
        children = tuple(
            ChildView(
                **{
                    **child,
                    "old_pids": tuple(child.get("old_pids") or ()),
                    "supervisor": (
                        cls.from_dict(child["supervisor"]) if child.get("supervisor") else None
                    ),
                }
            )
            for child in data.get("children", ())
        )
        return cls(**{**data, "children": children})

    def render(self) -> str:
        """The tree as text: a header line, then one line per child (``print(view)``)."""
        reason = f"  ({_flat(self.reason)})" if self.reason else ""
        lines = [
            f"{self.path}  {self.strategy}  {self.status}  restarts "
            f"{self.restarts} (max {self.max_restarts} in {self.max_window:g}s){reason}"
        ]
        lines.extend(_tree_lines(self, ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _flat(value: object) -> str:
    # Whole, on one line: a terminal wraps it at word boundaries (never cut here).
    return " ".join(str(value).split())


def _child_line(child: ChildView) -> str:
    if child.kind == "supervisor" and child.supervisor is not None:
        sup = child.supervisor
        return f"{child.name}  supervisor {sup.strategy}  {sup.status}  restarts {child.restarts}"
    pid = f"PID {child.pid} {child.state}" if child.pid is not None else "no process"
    old = f" (old PIDs: {', '.join(map(str, child.old_pids))})" if child.old_pids else ""
    return (
        f"{child.name}  {child.kind} {child.agent}  {pid}  {child.status}  "
        f"restarts {child.restarts}{old}"
    )


def _tree_lines(view: SupervisorView, prefix: str) -> list[str]:
    lines = []
    for index, child in enumerate(view.children):
        last = index == len(view.children) - 1
        lines.append(prefix + ("└── " if last else "├── ") + _child_line(child))
        if child.supervisor is not None:
            lines.extend(_tree_lines(child.supervisor, prefix + ("    " if last else "│   ")))
    return lines


def agent_name(agent: object) -> str:
    """A child's agent as text: the template name, or the brain function's name."""
    if isinstance(agent, AgentTemplate):
        return agent.name
    if isinstance(agent, str):
        return agent
    return getattr(agent, "__name__", "callable") if agent is not None else ""


def _state(status: str, info: ProcessInfo | None) -> str:
    """The process state of an agent child. Its exit reaches the supervisor from the process
    itself, a moment before the kernel records it: an ended child is shown dead."""
    if info is None:
        return ""
    if status in ("done", "failed", "stopped") and not info.finished:
        return "dead"
    return str(info.state)


def supervisor_view(
    core: SupervisorCore,
    path: str,
    reason: str,
    sub_views: Mapping[str, SupervisorView | None],
    table: ProcessTable,
) -> SupervisorView:
    """A snapshot of one supervisor; ``sub_views`` holds its child supervisors' views."""
    children = []
    for name, child in core.children.items():
        info = None if child.pid is None else table.get(child.pid)
        children.append(
            ChildView(
                name=name,
                path=f"{path}/{name}",
                kind="supervisor" if child.spec.supervisor is not None else "agent",
                status=child.status,
                restart=str(child.spec.restart_type),
                restarts=child.restarts,
                agent=agent_name(child.spec.agent),
                pid=child.pid,
                state=_state(child.status, info),
                old_pids=tuple(child.old_pids),
                last_exit=child.last_exit,
                supervisor=sub_views.get(name),
            )
        )
    spec = core.spec
    return SupervisorView(
        name=spec.name,
        path=path,
        strategy=str(spec.strategy),
        status=core.status,
        restarts=core.restart_count(),
        max_restarts=spec.max_restarts,
        max_window=spec.max_window,
        children=tuple(children),
        reason=reason,
    )
