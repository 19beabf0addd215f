"""A system with something on every dashboard page: real agents (python driver), a process
suspended by the immune system in enforce mode, a supervision tree that restarted a child, a
parent with a live child, and collaboration edges with a reinforced path.

Used by the browser tests and by ``bench/dashboard_shots.py`` (the docs' screenshots).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import attrs
from helpers import Collector, agent, call, respond

from rnix_actors import (
    ChildSpec,
    LLMRequest,
    LLMResponse,
    ProcessInfo,
    ProcessState,
    Restart,
    Skill,
    Strategy,
    SupervisorHandle,
    SupervisorSpec,
    System,
)
from rnix_actors.immune import ImmuneConfig

PACE = 0.2
"""Seconds a paced agent waits per step (it sees a pause or SIGTERM at its next step)."""


def normal_run() -> list[LLMResponse | str]:
    first = respond(call("list_files"), call("shell", command="true"))
    return [first, respond(call("read_file", path="README.md")), "done"]


BURST = [
    normal_run()[0],
    respond(*[call("shell", command=f"echo {i}") for i in range(8)]),
    respond(call("read_file", path="README.md")),
    "done",
]


class Scene:
    """Build with `Scene(system).build()`; `release` lets every paced agent finish."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.release = threading.Event()
        self.crash_again = threading.Event()
        self.crashes: Counter[str] = Counter()
        self.scripts: dict[str, list[LLMResponse | str]] = {}
        self.suspended_pid = 0
        self.sleeper_pid = 0
        self.lead_pid = 0
        self.tree: SupervisorHandle | None = None

    # -- brains ------------------------------------------------------------------------------
    def paced(self, request: LLMRequest) -> LLMResponse | str:
        if self.release.is_set():
            return "released"
        self.release.wait(PACE)
        return respond(call("list_files"), tokens=25)

    def worker(self, request: LLMRequest) -> LLMResponse | str:
        steps = self.scripts.get(request.messages[0].content, normal_run())
        return steps[min(request.step, len(steps)) - 1]

    def lead(self, request: LLMRequest) -> LLMResponse | str:
        if request.step > 1:
            return "lead done"
        child = "sleeper" if "watch" in request.messages[0].content else "helper"
        return respond(call("spawn", agent=child, intent=f"{child} for the lead"), tokens=40)

    def flaky(self, request: LLMRequest) -> LLMResponse | str:
        if request.step == 1 and self.crashes["flaky"] < 1:
            self.crashes["flaky"] += 1
            raise RuntimeError("flaky crashed on its first step")
        if self.crash_again.is_set():
            self.crash_again.clear()
            self.crashes["flaky"] += 1
            raise RuntimeError("flaky crashed again")
        return self.paced(request)

    # -- the scene ---------------------------------------------------------------------------
    def build(self) -> Scene:
        system = self.system
        system.set_immune(ImmuneConfig(warn_only=False))
        limits: dict[str, Any] = {"max_steps": 100_000, "context_slots": 100_000}
        agent(system, "worker", self.worker)
        agent(system, "sleeper", self.paced, devices=("/dev/fs",), **limits)
        for name in ("review", "summarise", "search"):
            system.add_skill(Skill(name, f"can {name}"))
        helper = agent(system, "helper", lambda r: "helped", devices=("/dev/fs",))
        system.add_template(attrs.evolve(helper, skills=("review", "summarise")))
        lead = agent(system, "lead", self.lead, devices=("/dev/fs",), **limits)
        system.add_template(attrs.evolve(lead, skills=("review", "summarise", "search")))
        for _ in range(5):
            assert system.run("worker", "train", timeout=20).exit_code == 0
        self.scripts["attack"] = BURST
        suspended = system.run("worker", "attack", timeout=20)
        assert suspended.state is ProcessState.SUSPENDED, suspended
        self.suspended_pid = suspended.pid
        for _ in range(3):
            assert system.run("lead", "quick job", timeout=20).exit_code == 0
        self.lead_pid = system.spawn("lead", "watch the sleeper")
        self.sleeper_pid = system.spawn("sleeper", "sleep <b>until</b> released")
        for _ in range(5):
            system.topology.record("pipe", "lead", "reviewer", label="review pipeline")
            system.topology.record("pipe", "reviewer", "writer", label="review pipeline")
        starts = Collector()
        subscription = system.subscribe(starts, ["SupervisorChildStart", "ReasonStep"])
        self.tree = system.supervise(
            SupervisorSpec(
                "svc",
                Strategy.ONE_FOR_ONE,
                (
                    ChildSpec("flaky", agent=self.flaky, intent="flaky work", devices=("/dev/fs",),
                              restart=Restart.PERMANENT, max_steps=100_000),
                    ChildSpec("steady", agent=self.paced, intent="steady work",
                              devices=("/dev/fs",), restart=Restart.PERMANENT, max_steps=100_000),
                ),
            )
        )  # fmt: skip
        self.wait_restarted(starts)
        subscription.cancel()
        self.wait_child()
        system.sync_events()
        return self

    def wait_restarted(self, starts: Collector) -> None:
        """Until the flaky child's second incarnation runs."""
        event = starts.wait_for(
            lambda e: e.args.get("child") == "flaky" and e.args.get("incarnation", 0) >= 2, 20
        )
        pid = int(event.args["child_pid"])
        starts.wait_for(lambda e: e.pid == pid and e.syscall == "ReasonStep", 20)

    def wait_child(self) -> ProcessInfo:
        """The lead's live sleeper child."""
        info = self.system.table.wait_for(self.lead_pid, lambda p: bool(p.children), 20)
        assert info is not None, "the lead did not spawn its child"
        return self.system.info(info.children[0])
