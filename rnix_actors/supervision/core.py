"""The supervisor's functional core: child bookkeeping and decisions, no threads.

The `Supervisor` actor feeds it what happened (a child started, exited, was stopped) and
executes the actions it returns (stop, start after a delay, give up, finish). Tests drive it
directly, including with random crash sequences.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import attrs

from rnix_actors.supervision.spec import ChildSpec, Strategy, SupervisorSpec
from rnix_actors.supervision.strategy import (
    RestartIntensity,
    backoff_delay,
    plan_restart,
    should_restart,
)


@attrs.frozen
class StopChild:
    name: str


@attrs.frozen
class StartChild:
    name: str
    delay: float = 0.0


@attrs.frozen
class GiveUp:
    """Restart intensity exceeded by ``child``: offer migration, else escalate."""

    child: str
    reason: str


@attrs.frozen
class Finished:
    """No child is left to run: the supervisor exits normally."""

    reason: str


Action = StopChild | StartChild | GiveUp | Finished

ACTIVE = ("starting", "running", "restarting")


@attrs.define
class ChildState:
    spec: ChildSpec
    status: str = "starting"  # starting running restarting stopped done failed
    incarnation: int = 0
    pid: int | None = None
    old_pids: list[int] = attrs.field(factory=list)
    restarts: int = 0
    consecutive: int = 0
    started_at: float = 0.0
    last_exit: str = ""


class SupervisorCore:
    def __init__(
        self,
        spec: SupervisorSpec,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.clock = clock
        self.rng = rng or random.Random()
        self.strategy = Strategy(spec.strategy)
        self.intensity = RestartIntensity(spec.max_restarts, spec.max_window)
        self.status = "running"
        self.children: dict[str, ChildState] = {}
        self._serial = itertools.count(1)
        if self.strategy is not Strategy.SIMPLE_ONE_FOR_ONE:
            for child in spec.children:
                self.children[child.name] = ChildState(child)

    # -- queries ----------------------------------------------------------------------------
    @property
    def order(self) -> list[str]:
        """The child list in start order, without children that are done or removed."""
        return [n for n, c in self.children.items() if c.status not in ("done", "failed")]

    def live(self) -> set[str]:
        return {n for n, c in self.children.items() if c.status == "running"}

    def restart_count(self) -> int:
        return sum(c.restarts for c in self.children.values())

    # -- inputs -----------------------------------------------------------------------------
    def initial_actions(self) -> list[Action]:
        return [StartChild(name) for name in self.order]

    def add_dynamic(self, intent: str) -> StartChild:
        """simple_one_for_one: a new child from the single template spec."""
        template = self.spec.children[0]
        name = f"{template.name}-{next(self._serial)}"
        self.children[name] = ChildState(attrs.evolve(template, name=name, intent=intent))
        return StartChild(name)

    def started(self, name: str, pid: int | None) -> int:
        """Record a new incarnation; returns its number (exits must quote it)."""
        child = self.children[name]
        if child.pid is not None:
            child.old_pids.append(child.pid)
        child.pid = pid
        child.incarnation += 1
        child.status = "running"
        child.started_at = self.clock()
        return child.incarnation

    def stopping(self, name: str) -> None:
        """The supervisor is stopping this child: its coming exit is expected, not a failure."""
        child = self.children.get(name)
        if child is not None and child.status in ACTIVE:
            child.status = "stopped"

    def replace_spec(self, name: str, spec: ChildSpec) -> StartChild:
        """Migration: the same child identity continues with another agent."""
        child = self.children[name]
        child.spec = attrs.evolve(spec, name=name)
        child.status = "restarting"
        child.consecutive = 0
        self.status = "running"
        return StartChild(name)

    def exited(self, name: str, incarnation: int, abnormal: bool, reason: str) -> list[Action]:
        """A child's incarnation ended. Stale exits (older incarnations, or children being
        stopped by the supervisor) change nothing and return no action."""
        child = self.children.get(name)
        if child is None or child.incarnation != incarnation or child.status != "running":
            return []
        child.last_exit = reason
        if not should_restart(child.spec.restart_type, abnormal):
            child.status = "done"
            return self._finished_if_idle()
        now = self.clock()
        policy = self.spec.backoff
        if policy is not None and now - child.started_at >= policy.reset_after:
            child.consecutive = 0
        if not self.intensity.allow(now):
            child.status = "failed"
            self.status = "giving_up"
            return [GiveUp(name, reason)]
        return self._restart(name)

    def _restart(self, name: str) -> list[Action]:
        child = self.children[name]
        child.consecutive += 1
        restart_types = {n: c.spec.restart_type for n, c in self.children.items()}
        plan = plan_restart(self.strategy, self.order, self.live(), name, restart_types)
        actions: list[Action] = []
        for sibling in plan.stop:
            self.stopping(sibling)
            actions.append(StopChild(sibling))
        for sibling in plan.remove:
            self.children[sibling].status = "done"
        delay = backoff_delay(self.spec.backoff, child.consecutive, self.rng)
        for restarted in plan.start:
            self.children[restarted].status = "restarting"
            self.children[restarted].restarts += 1
            actions.append(StartChild(restarted, delay))
        return actions

    def _finished_if_idle(self) -> list[Action]:
        if self.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            return []
        if any(c.status in ACTIVE for c in self.children.values()):
            return []
        self.status = "completed"
        return [Finished("all children completed")]
