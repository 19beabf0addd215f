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

from rnix_actors.errors import RnixError
from rnix_actors.supervision.spec import AutoShutdown, ChildSpec, Strategy, SupervisorSpec
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
    """No child is left to run (or a significant one ended under ``auto_shutdown``): the
    supervisor stops what still runs and exits normally (``shutdown``: OTP's reason for an
    automatic shutdown)."""

    reason: str
    shutdown: bool = False


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

    def child(self, name: str) -> ChildState:
        """The child ``name``; `RnixError` naming the supervisor's children if unknown."""
        child = self.children.get(name)
        if child is None:
            known = ", ".join(self.children) or "none"
            raise RnixError(
                f"supervisor {self.spec.name!r} has no child {name!r} (children: {known})"
            )
        return child

    def counts(self) -> dict[str, int]:
        """OTP's ``count_children``: specs, active (running), supervisors, workers."""
        kids = self.children.values()
        return {
            "specs": len(self.children),
            "active": sum(1 for c in kids if c.status in ACTIVE),
            "supervisors": sum(1 for c in kids if c.spec.supervisor is not None),
            "workers": sum(1 for c in kids if c.spec.supervisor is None),
        }

    # -- inputs -----------------------------------------------------------------------------
    def initial_actions(self) -> list[Action]:
        return [StartChild(name) for name in self.order]

    def add_dynamic(self, intent: str) -> StartChild:
        """simple_one_for_one: a new child from the single template spec."""
        template = self.spec.children[0]
        name = f"{template.name}-{next(self._serial)}"
        self.children[name] = ChildState(attrs.evolve(template, name=name, intent=intent))
        return StartChild(name)

    def add(self, spec: ChildSpec) -> StartChild:
        """OTP's ``start_child(ChildSpec)`` on a static supervisor (validated by the caller)."""
        if spec.name in self.children:
            state = "running" if self.children[spec.name].status in ACTIVE else "present"
            raise RnixError(
                f"supervisor {self.spec.name!r} already has a child {spec.name!r} ({state}); "
                "delete_child it first or pick another name"
            )
        self.children[spec.name] = ChildState(spec)
        return StartChild(spec.name)

    def terminate(self, name: str) -> bool:
        """OTP's ``terminate_child``: the child is stopped and not restarted; its spec stays
        (simple_one_for_one: it is forgotten). Returns whether it was running."""
        child = self.child(name)
        was_active = child.status in ACTIVE
        if was_active:
            child.status = "stopped"
        if self.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            del self.children[name]
        return was_active

    def restart(self, name: str) -> StartChild:
        """OTP's ``restart_child``: start a terminated child again (not counted as a restart
        for the intensity)."""
        child = self.child(name)
        if child.status in ACTIVE:
            raise RnixError(f"child {name!r} is running; terminate_child it first")
        child.status = "restarting"
        return StartChild(name)

    def delete(self, name: str) -> None:
        """OTP's ``delete_child``: forget a terminated child's spec."""
        child = self.child(name)
        if child.status in ACTIVE:
            raise RnixError(f"child {name!r} is running; terminate_child it first")
        del self.children[name]

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
            return self._auto_shutdown(name) or self._finished_if_idle()
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

    def _auto_shutdown(self, ended: str) -> list[Action]:
        """OTP 24: a significant child ended by itself (and is not restarted)."""
        auto = AutoShutdown(self.spec.auto_shutdown)
        if auto is AutoShutdown.NEVER or not self.children[ended].spec.significant:
            return []
        if auto is AutoShutdown.ALL_SIGNIFICANT and any(
            c.spec.significant and c.status in ACTIVE for c in self.children.values()
        ):
            return []
        actions: list[Action] = []
        for name in reversed(self.order):
            if self.children[name].status in ACTIVE:
                self.stopping(name)
                actions.append(StopChild(name))
        self.status = "completed"
        why = (
            "any significant child"
            if auto is AutoShutdown.ANY_SIGNIFICANT
            else "all significant children"
        )
        actions.append(Finished(f"auto_shutdown: {why} ended (last: {ended!r})", shutdown=True))
        return actions

    def _finished_if_idle(self) -> list[Action]:
        if self.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            return []
        if any(c.status in ACTIVE for c in self.children.values()):
            return []
        self.status = "completed"
        return [Finished("all children completed")]
