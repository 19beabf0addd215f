"""`DashboardApp`: which page a path names, and what an action does, for one system."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from rnix_actors.dashboard.html import Page
from rnix_actors.dashboard.hub import ChangeHub
from rnix_actors.dashboard.pages import processes_page, supervision_page
from rnix_actors.dashboard.pages_immune import immune_page
from rnix_actors.dashboard.pages_process import process_page
from rnix_actors.dashboard.pages_topology import topology_page
from rnix_actors.errors import NoSuchProcess, RnixError
from rnix_actors.system import System

log = logging.getLogger(__name__)

_PROCESS = re.compile(r"^/process/([0-9]{1,9})$")
_IMMUNE_RUN = re.compile(r"^/immune\?run=([0-9]{1,9})$")
ACTIONS = ("pause", "resume", "kill", "immune-resume")


class DashboardApp:
    """Renders pages from ``system`` and carries out actions on it. Thread-safe."""

    def __init__(self, system: System, token: str) -> None:
        self.system = system
        self.token = token
        self.hub = ChangeHub()
        self._lock = threading.Lock()  # the figures: each live stream's request thread counts
        self.updates = 0
        self.last_update_bytes = 0

    def render(self, target: str) -> Page | None:
        """The page ``target`` (a path, with ``?run=N`` for the immune page), or None."""
        if target == "/":
            return processes_page(self.system)
        if target == "/supervision":
            return supervision_page(self.system)
        if target == "/topology":
            return topology_page(self.system)
        if target == "/immune":
            return immune_page(self.system, None)
        if found := _IMMUNE_RUN.match(target):
            return immune_page(self.system, int(found.group(1)))
        if found := _PROCESS.match(target):
            return process_page(self.system, int(found.group(1)))
        return None

    def act(self, body: Any) -> tuple[int, dict[str, Any]]:
        """Carry out ``{"action": ..., "pid": N}``; returns (HTTP status, JSON answer)."""
        if not isinstance(body, dict):
            return 400, {"ok": False, "error": 'send {"action": ..., "pid": N} as JSON'}
        action, pid = body.get("action"), body.get("pid")
        if action not in ACTIONS:
            return 400, {"ok": False, "error": f"unknown action {action!r}; one of {ACTIONS}"}
        if not isinstance(pid, int) or isinstance(pid, bool) or pid < 1:
            return 400, {"ok": False, "error": f"'pid' must be a positive integer (got {pid!r})"}
        try:
            if action == "pause":
                outcome = self.system.pause(pid, origin="user")
            elif action == "resume":
                outcome = self.system.resume(pid, origin="user")
            elif action == "kill":
                outcome = self.system.kill(pid, origin="user")
            else:
                outcome = str(self.system.immune.resume(pid))
        except NoSuchProcess as exc:
            return 404, {"ok": False, "error": str(exc)}
        except (RnixError, ValueError, TimeoutError) as exc:
            return 409, {"ok": False, "error": str(exc)}
        log.info("dashboard: %s PID %d: %s", action, pid, outcome)
        self.hub.bump()
        return 200, {"ok": True, "action": action, "pid": pid, "outcome": outcome}

    def sent(self, size: int) -> None:
        """A live update of ``size`` bytes went out (figures for the benchmark)."""
        with self._lock:
            self.updates += 1
            self.last_update_bytes = size
