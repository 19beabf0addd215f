"""The daemon's immune methods (see `rnix_actors.ipc.service`), and attaching the monitor.

- ``immune_status`` → ``{status, text}``
- ``immune_resume {pid, retry?}`` → ``{pid, outcome}``
- ``immune_forget {name?|all}`` → ``{forgotten}``

Each is UNAVAILABLE when no immune monitor is attached to the system.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from rnix_actors.ipc.protocol import ApiError, Code, param_bool, param_int, param_opt_str
from rnix_actors.system import System

log = logging.getLogger(__name__)

Params = Mapping[str, Any]


def attach_immune_if_available(system: System) -> Any:
    """The system's immune handle: ``system.immune`` if the system has one, else a newly
    attached one (config from ``system.config``). None when the immune package is missing or
    fails to attach (logged): the daemon then runs without immune monitoring."""
    existing = getattr(system, "immune", None)
    if existing is not None:
        return existing
    try:
        from rnix_actors.immune import attach_immune, immune_config_from

        return attach_immune(system, immune_config_from(system.config), system.store)
    except Exception:
        log.exception("immune monitoring unavailable")
        return None


def _require(immune: Any) -> Any:
    if immune is None:
        raise ApiError(Code.UNAVAILABLE, "immune monitoring is not attached to this system")
    return immune


def status(immune: Any, params: Params) -> dict[str, Any]:
    """The monitor's mode and alerts, as JSON and as text."""
    found = _require(immune).status()
    return {"status": found.to_json(), "text": found.text()}


def resume(immune: Any, params: Params) -> dict[str, Any]:
    """Resume a process the monitor suspended (``retry``: run the refused call again)."""
    pid = param_int(params, "pid")
    retry = param_bool(params, "retry")
    return {"pid": pid, "outcome": str(_require(immune).resume(pid, retry=retry))}


def forget(immune: Any, params: Params) -> dict[str, Any]:
    """Forget the threat signature ``name``, or every one (``all``)."""
    name = param_opt_str(params, "name")
    forget_all = param_bool(params, "all")
    if (name is None) == (not forget_all):
        raise ApiError(Code.BAD_PARAMS, "give 'name' or 'all': true (not both)")
    return {"forgotten": int(_require(immune).forget(name, all=forget_all))}
