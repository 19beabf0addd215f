"""Read-only snapshots of supervision trees for `System.tree()` and ``rnix tree``."""

from __future__ import annotations

from typing import Any

import attrs


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
