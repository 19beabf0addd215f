"""Supervisor and child specifications: behaviour as data, validated at the boundary.

`validate` collects the first problem with the field's dotted path, so YAML and Python specs
fail the same way, before anything starts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import attrs

from rnix_actors.errors import ConfigError
from rnix_actors.templates import DEFAULT_STEP_TIMEOUT, AgentTemplate, Limits

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class Strategy(StrEnum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"


class Restart(StrEnum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit (not normal, not shutdown)
    TEMPORARY = "temporary"  # never restarted


class AutoShutdown(StrEnum):
    """OTP 24's ``auto_shutdown``: when the supervisor ends by itself because of its
    ``significant`` children."""

    NEVER = "never"
    ANY_SIGNIFICANT = "any_significant"  # as soon as one significant child has ended
    ALL_SIGNIFICANT = "all_significant"  # once every significant child has ended


INFINITY = math.inf
"""``shutdown=INFINITY``: wait for the child however long it takes (the default for
supervisor children, as in OTP)."""

AGENT_SHUTDOWN = 5.0

PYTHON_WORKER_LIMITS = Limits(
    max_steps=0, max_tokens=0, step_timeout=DEFAULT_STEP_TIMEOUT, context_slots=10_000
)
"""What a child whose agent is a plain Python function gets: no step or token limit (it runs
until the function gives a final answer, or its supervisor stops it), the usual step timeout,
and 10,000 context messages (then it is suspended ``context_full``). ``ChildSpec.max_steps``
and ``ChildSpec.context_slots`` change them."""


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
    OTP. An exit because someone asked the child to stop (a SIGTERM from a user or a
    supervisor: OTP's ``shutdown``) is not a failure either.

    ``shutdown`` is how long the supervisor waits after SIGTERM before SIGKILL (seconds, or
    `INFINITY`); unset, 5 s for an agent and `INFINITY` for a supervisor, which must stop its
    own children first. ``devices`` narrows the agent's whitelist (and is the whitelist of a
    callable brain). ``max_steps`` overrides the template's step limit and ``context_slots``
    its context size (a callable brain gets `PYTHON_WORKER_LIMITS` unless they are set).
    ``significant`` children end the supervisor under its ``auto_shutdown`` (they must be
    transient or temporary).
    """

    name: str
    agent: str | AgentTemplate | Brain | None = None
    intent: str = ""
    restart: Restart | None = None
    shutdown: float | None = None
    devices: tuple[str, ...] | None = None
    supervisor: SupervisorSpec | None = None
    max_steps: int | None = None
    context_slots: int | None = None
    significant: bool = False
    resume: bool = False  # started with its tree at daemon start: resume its checkpoint

    @property
    def restart_type(self) -> Restart:
        return Restart.TRANSIENT if self.restart is None else Restart(self.restart)

    @property
    def shutdown_time(self) -> float:
        """Seconds between SIGTERM and SIGKILL (``math.inf``: wait as long as it takes)."""
        if self.shutdown is not None:
            return float(self.shutdown)
        return INFINITY if self.supervisor is not None else AGENT_SHUTDOWN


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
    auto_shutdown: AutoShutdown = AutoShutdown.NEVER
    autostart: bool = False  # a root started by the daemon when it starts


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
    _validate_restarts(spec, fail)
    _validate_shape(spec, where, fail)
    seen: set[str] = set()
    for index, child in enumerate(spec.children):
        _validate_child(child, f"{where}.children[{index}]", seen, known_agent, source)
        if child.resume and Strategy(spec.strategy) is Strategy.SIMPLE_ONE_FOR_ONE:
            raise ConfigError(
                source,
                f"{where}.children[{index}].resume",
                "simple_one_for_one children are started on demand, not with their tree",
                "drop resume, or use one_for_one with named children",
            )


def _validate_restarts(spec: SupervisorSpec, fail: Callable[[str, str, str], None]) -> None:
    """The strategy and the restart intensity (and backoff) of ``spec``."""
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


def _validate_shape(
    spec: SupervisorSpec, where: str, fail: Callable[[str, str, str], None]
) -> None:
    """What ``spec``'s children are as a whole: significant ones, their number, autostart."""
    try:
        auto = AutoShutdown(spec.auto_shutdown)
    except ValueError:
        fail(
            "auto_shutdown",
            f"unknown value {spec.auto_shutdown!r}",
            "use one of " + ", ".join(a.value for a in AutoShutdown),
        )
    significant = [c.name for c in spec.children if c.significant]
    if significant and auto is AutoShutdown.NEVER:
        fail(
            "auto_shutdown",
            f"children {significant} are significant but auto_shutdown is never",
            "set auto_shutdown: any_significant or all_significant, or drop significant",
        )
    if not spec.children:
        fail("children", "a supervisor needs at least one child", "add a child spec")
    if Strategy(spec.strategy) is Strategy.SIMPLE_ONE_FOR_ONE and len(spec.children) != 1:
        fail(
            "children",
            "simple_one_for_one takes exactly one child spec (the template)",
            "keep one child spec and start children with start_child()",
        )
    if spec.autostart and ".supervisor" in where:
        fail(
            "autostart",
            "only a top-level supervisor starts with the daemon",
            "move autostart: true to the top-level supervisor of this tree",
        )


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
    _validate_child_limits(child, fail)
    if (child.agent is None) == (child.supervisor is None):
        fail(
            "agent",
            "a child needs exactly one of agent or supervisor",
            "set agent: <template> or supervisor: {...}",
        )
    if child.resume and child.supervisor is not None:
        fail(
            "resume",
            "resume applies to agent children (a supervisor has no checkpoint)",
            "set resume: true on the agent children of the nested supervisor",
        )
    if child.supervisor is not None:
        validate(child.supervisor, known_agent, source, f"{where}.supervisor")
    elif isinstance(child.agent, str) and not known_agent(child.agent):
        fail("agent", f"unknown agent {child.agent!r}", "define it in conf/agents or .rnix/agents")


def _validate_child_limits(child: ChildSpec, fail: Callable[[str, str, str], None]) -> None:
    """A child's restart type, step and context bounds, shutdown time and significance."""
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
    if child.shutdown is not None and (
        not isinstance(child.shutdown, int | float)
        or math.isnan(child.shutdown)
        or child.shutdown < 0
    ):
        fail("shutdown", f"must be seconds >= 0 or infinity (got {child.shutdown!r})", "e.g. 5")
    if child.context_slots is not None and (
        not isinstance(child.context_slots, int) or child.context_slots < 1
    ):
        fail("context_slots", f"must be an integer >= 1 (got {child.context_slots!r})", "e.g. 256")
    if child.significant and child.restart_type is Restart.PERMANENT:
        fail(
            "significant",
            "a permanent child cannot be significant (it never ends for good)",
            "make it transient or temporary, or drop significant",
        )
