"""Supervisor and child specifications: behaviour as data, validated at the boundary.

`validate` collects the first problem with the field's dotted path, so YAML and Python specs
fail the same way, before anything starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import attrs

from rnix_actors.errors import ConfigError
from rnix_actors.templates import AgentTemplate

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class Strategy(StrEnum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"


class Restart(StrEnum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit
    TEMPORARY = "temporary"  # never restarted


@attrs.frozen
class Backoff:
    """Delay before a restart: ``min * 2**(n-1)`` for the n-th consecutive failure, capped at
    ``max``, spread by ±``jitter`` (a fraction). A child that ran ``reset_after`` seconds
    before failing starts again from ``min``."""

    min: float = 0.5
    max: float = 30.0
    jitter: float = 0.1
    reset_after: float = 60.0


Brain = Callable[..., Any]


@attrs.frozen
class ChildSpec:
    """One child: an agent (template name, `AgentTemplate` or a python brain callable) with
    its intent, or a nested ``supervisor``.

    ``restart`` defaults to transient, for agents and nested supervisors alike: here a child
    that exits normally has finished its work (an agent completed its task, a supervisor all
    its children), so only failures restart it; ``permanent`` restarts after any exit, as in
    OTP. ``shutdown`` is the SIGTERM grace in seconds before
    the supervisor sends SIGKILL and moves on. ``devices`` narrows the agent's whitelist (and is
    the whitelist of a callable brain). ``max_steps`` overrides the template's step limit.
    """

    name: str
    agent: str | AgentTemplate | Brain | None = None
    intent: str = ""
    restart: Restart | None = None
    shutdown: float = 5.0
    devices: tuple[str, ...] | None = None
    supervisor: SupervisorSpec | None = None
    max_steps: int | None = None

    @property
    def restart_type(self) -> Restart:
        return Restart.TRANSIENT if self.restart is None else Restart(self.restart)


@attrs.frozen
class SupervisorSpec:
    """Flags plus an ordered list of child specs. Children start in list order and stop in
    reverse order. ``simple_one_for_one`` takes exactly one child spec, the template of its
    dynamic children (started with `SupervisorHandle.start_child`)."""

    name: str
    strategy: Strategy = Strategy.ONE_FOR_ONE
    children: tuple[ChildSpec, ...] = ()
    max_restarts: int = 3
    max_window: float = 60.0
    backoff: Backoff | None = None


def validate(
    spec: SupervisorSpec,
    known_agent: Callable[[str], bool],
    source: str = "<python>",
    path: str = "",
) -> None:
    """Raise `ConfigError` naming the field for the first problem in ``spec`` (recursively)."""
    where = path or "supervisor"

    def fail(field: str, problem: str, fix: str) -> None:
        raise ConfigError(source, f"{where}.{field}", problem, fix)

    if not isinstance(spec.name, str) or not NAME.match(spec.name):
        fail("name", f"invalid name {spec.name!r}", "use lowercase letters, digits, . _ -")
    try:
        Strategy(spec.strategy)
    except ValueError:
        fail(
            "strategy",
            f"unknown strategy {spec.strategy!r}",
            "use one of " + ", ".join(s.value for s in Strategy),
        )
    if not isinstance(spec.max_restarts, int) or spec.max_restarts < 0:
        fail("max_restarts", f"must be an integer >= 0 (got {spec.max_restarts!r})", "e.g. 3")
    if not isinstance(spec.max_window, int | float) or spec.max_window <= 0:
        fail("max_window", f"must be a number of seconds > 0 (got {spec.max_window!r})", "e.g. 60")
    if spec.backoff is not None:
        _validate_backoff(spec.backoff, fail)
    if not spec.children:
        fail("children", "a supervisor needs at least one child", "add a child spec")
    if Strategy(spec.strategy) is Strategy.SIMPLE_ONE_FOR_ONE and len(spec.children) != 1:
        fail(
            "children",
            "simple_one_for_one takes exactly one child spec (the template)",
            "keep one child spec and start children with start_child()",
        )
    seen: set[str] = set()
    for index, child in enumerate(spec.children):
        _validate_child(child, f"{where}.children[{index}]", seen, known_agent, source)


def _validate_backoff(backoff: Backoff, fail: Callable[[str, str, str], None]) -> None:
    if backoff.min < 0 or backoff.max < backoff.min:
        fail(
            "backoff",
            f"need 0 <= min <= max (got min={backoff.min}, max={backoff.max})",
            "e.g. {min: 0.5, max: 30}",
        )
    if not 0 <= backoff.jitter <= 1:
        fail("backoff.jitter", f"must be within 0..1 (got {backoff.jitter})", "e.g. 0.1")
    if backoff.reset_after < 0:
        fail("backoff.reset_after", f"must be >= 0 (got {backoff.reset_after})", "e.g. 60")


def _validate_child(
    child: ChildSpec,
    where: str,
    seen: set[str],
    known_agent: Callable[[str], bool],
    source: str,
) -> None:
    def fail(field: str, problem: str, fix: str) -> None:
        raise ConfigError(source, f"{where}.{field}", problem, fix)

    if not isinstance(child.name, str) or not NAME.match(child.name):
        fail("name", f"invalid name {child.name!r}", "use lowercase letters, digits, . _ -")
    if child.name in seen:
        fail("name", f"duplicate child name {child.name!r}", "child names must be unique")
    seen.add(child.name)
    if child.restart is not None:
        try:
            Restart(child.restart)
        except ValueError:
            fail(
                "restart",
                f"unknown restart type {child.restart!r}",
                "use permanent, transient or temporary",
            )
    if child.max_steps is not None and (
        not isinstance(child.max_steps, int) or child.max_steps < 0
    ):
        fail("max_steps", f"must be an integer >= 0 (got {child.max_steps!r})", "e.g. 50")
    if not isinstance(child.shutdown, int | float) or child.shutdown < 0:
        fail("shutdown", f"must be seconds >= 0 (got {child.shutdown!r})", "e.g. 5")
    if (child.agent is None) == (child.supervisor is None):
        fail(
            "agent",
            "a child needs exactly one of agent or supervisor",
            "set agent: <template> or supervisor: {...}",
        )
    if child.supervisor is not None:
        validate(child.supervisor, known_agent, source, f"{where}.supervisor")
    elif isinstance(child.agent, str) and not known_agent(child.agent):
        fail("agent", f"unknown agent {child.agent!r}", "define it in conf/agents or .rnix/agents")
