"""Shared pieces of the supervision tests: controllable brains, child specs, reaching actors
(waiting is `helpers.Changes`: on events, never on a timer)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from helpers import call, respond

from rnix_actors import ChildSpec, LLMRequest, LLMResponse, Restart, SupervisorHandle


class Brains:
    """Python brains the test controls, shared by all incarnations of a child."""

    def __init__(self) -> None:
        self.release: dict[str, threading.Event] = {}
        self.everyone = threading.Event()
        self.crashes: Counter[str] = Counter()
        self.crash_budget: dict[str, int] = {}
        self.crash_next: set[str] = set()  # the next step of these raises
        self._lock = threading.Lock()

    def done(self, tag: str) -> None:
        self.release.setdefault(tag, threading.Event()).set()

    def worker(self, tag: str) -> Callable[[LLMRequest], LLMResponse | str]:
        """Works (one cheap call per step, SIGTERM seen within 0.05 s) until released;
        crashes on its first step while its crash budget lasts."""
        release = self.release.setdefault(tag, threading.Event())

        def brain(request: LLMRequest) -> LLMResponse | str:
            with self._lock:
                if tag in self.crash_next or (
                    request.step == 1 and self.crashes[tag] < self.crash_budget.get(tag, 0)
                ):
                    self.crash_next.discard(tag)
                    self.crashes[tag] += 1
                    raise RuntimeError(f"{tag} crashed")
            if release.is_set() or self.everyone.is_set():
                return f"{tag} done"
            release.wait(0.05)  # pacing only
            return respond(call("list_files"))

        return brain


def child(
    name: str, brain: Any, restart: Restart | None = Restart.TRANSIENT, **kw: Any
) -> ChildSpec:
    kw.setdefault("shutdown", 5.0)
    return ChildSpec(
        name, agent=brain, intent=f"{name} work", restart=restart, devices=("/dev/fs",), **kw
    )


def actor_ref(handle: SupervisorHandle) -> Any:
    """The Pykka ref of the supervisor behind ``handle`` (to crash it in a test)."""
    return handle._service._record(handle.path).ref


def all_running(handle: SupervisorHandle, table: Any) -> bool:
    """Every child of the tree runs a live process (nested trees included)."""

    def walk(view: Any) -> bool:
        for c in view.children:
            if c.kind == "supervisor":
                if c.supervisor is None or c.status != "running" or not walk(c.supervisor):
                    return False
            elif (
                c.status != "running"
                or c.pid is None
                or c.state != "running"
                or table.get(c.pid) is None
                or table.get(c.pid).state.value != "running"
            ):
                return False
        return True

    return walk(handle.view())
