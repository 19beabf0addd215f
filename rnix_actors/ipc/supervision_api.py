"""The daemon's supervision methods (see `rnix_actors.ipc.service`).

- ``supervise {text, source}`` → ``{supervisors: [path]}``: start the trees of a
  ``supervisors.yaml`` the client read (the daemon never opens a client's path); a bad file
  starts nothing.
- ``supervisor {path, op, child?, kill?}`` → one management call on the supervisor at
  ``path``: ``view``, ``children``, ``count``, ``spec``, ``terminate``, ``restart``,
  ``delete`` (these four take ``child``) or ``stop`` (``kill``: SIGKILL at once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rnix_actors.ipc.protocol import ApiError, Code, param_bool, param_str
from rnix_actors.supervision.spec import ChildSpec
from rnix_actors.supervision.views import agent_name
from rnix_actors.system import System

Params = Mapping[str, Any]

OPS = ("view", "children", "count", "spec", "terminate", "restart", "delete", "stop")
CHILD_OPS = ("spec", "terminate", "restart", "delete")
MAX_TEXT = 1_000_000


def supervise(system: System, params: Params) -> dict[str, Any]:
    text = param_str(params, "text")
    if len(text) > MAX_TEXT:
        raise ApiError(Code.BAD_PARAMS, f"supervisors file larger than {MAX_TEXT} characters")
    source = params.get("source") if isinstance(params.get("source"), str) else "<client>"
    specs = system.parse_supervisors(text, str(source))
    if not specs:
        raise ApiError(Code.BAD_PARAMS, f"no supervisors declared in {source}")
    running = {view.path for view in system.tree() if view.status == "running"}
    clash = [f"/{s.name}" for s in specs if f"/{s.name}" in running]
    if clash:  # checked first, so that nothing of this file starts
        raise ApiError(Code.BAD_PARAMS, f"already running in the daemon: {', '.join(clash)}")
    return {"supervisors": [system.supervise(spec).path for spec in specs]}


def supervisor(system: System, params: Params) -> dict[str, Any]:
    handle = system.supervisor(param_str(params, "path"))
    op = param_str(params, "op")
    if op not in OPS:
        raise ApiError(Code.BAD_PARAMS, f"unknown op {op!r}; use one of {', '.join(OPS)}")
    child = param_str(params, "child") if op in CHILD_OPS else ""
    if op == "view":
        return {"supervisor": handle.view().to_dict()}
    if op == "children":
        return {"children": [c.to_dict() for c in handle.which_children()]}
    if op == "count":
        return {"counts": handle.count_children()}
    if op == "spec":
        return {"spec": spec_to_wire(handle.get_childspec(child))}
    if op == "terminate":
        return {"child": child, "was_running": handle.terminate_child(child)}
    if op == "restart":
        return {"child": child, "pid": handle.restart_child(child)}
    if op == "delete":
        handle.delete_child(child)
        return {"child": child, "deleted": True}
    handle.stop(kill=param_bool(params, "kill"))
    return {"supervisor": handle.view().to_dict()}


def spec_to_wire(spec: ChildSpec) -> dict[str, Any]:
    shutdown = spec.shutdown_time
    return {
        "name": spec.name,
        "kind": "supervisor" if spec.supervisor is not None else "agent",
        "agent": agent_name(spec.agent),
        "intent": spec.intent,
        "restart": str(spec.restart_type),
        "shutdown": "infinity" if math.isinf(shutdown) else shutdown,
        "devices": None if spec.devices is None else list(spec.devices),
        "max_steps": spec.max_steps,
        "context_slots": spec.context_slots,
        "significant": spec.significant,
    }
