"""Where agent processes run, as ``rnix nodes`` lists it (the local backend's one row; the Ray
backend's `rnix_actors.ray.NodeView` has the same fields)."""

from __future__ import annotations

import os
import socket

import attrs


@attrs.frozen
class LocalNode:
    name: str
    node_id: str
    address: str
    state: str
    processes: int
    restarts: int = 0
    resources: dict[str, float] = attrs.field(factory=dict)
    os_pid: int = 0

    def to_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


def local_node(processes: int) -> LocalNode:
    return LocalNode(
        "local", f"pid {os.getpid()}", socket.gethostname(), "alive", processes,
        resources={"CPU": float(os.cpu_count() or 1)}, os_pid=os.getpid(),
    )  # fmt: skip
