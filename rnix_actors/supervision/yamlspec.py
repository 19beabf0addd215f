"""Supervision trees declared in YAML (``conf/supervisors.yaml``, ``.rnix/supervisors.yaml``).

supervisors:
  - name: review
    strategy: one_for_one        # one_for_all rest_for_one simple_one_for_one
    max_restarts: 3
    max_window: 60
    backoff: {min: 0.5, max: 30, jitter: 0.1, reset_after: 60}
    auto_shutdown: never         # any_significant all_significant
    autostart: false             # true: the daemon starts this tree when it starts
    children:
      - {name: analyst, agent: code-analyst, intent: "review", restart: transient, shutdown: 5,
         resume: false}          # true: at daemon start, continue its checkpoint
      - name: team               # a supervisor child: shutdown defaults to infinity
        supervisor: {strategy: one_for_all, children: [...]}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from rnix_actors.supervision.spec import (
    AutoShutdown,
    Backoff,
    ChildSpec,
    Restart,
    Strategy,
    SupervisorSpec,
    validate,
)
from rnix_actors.yamlsrc import YamlMap, load_yaml, parse_yaml

_STRATEGY = re.compile("|".join(s.value for s in Strategy))
_AUTO = re.compile("|".join(a.value for a in AutoShutdown))
_RESTART = re.compile("|".join(r.value for r in Restart))
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def load_supervisors(path: Path, known_agent: Callable[[str], bool]) -> list[SupervisorSpec]:
    """Parse and validate every supervisor of ``path``; raise `ConfigError` on the first
    problem (file:line, field, fix). A missing file is an empty list."""
    if not path.exists():
        return []
    return _specs(load_yaml(path), str(path), known_agent)


def parse_supervisors(
    text: str, source: str, known_agent: Callable[[str], bool]
) -> list[SupervisorSpec]:
    """The same from YAML text (a daemon gets a client's file this way); ``source`` names it
    in errors."""
    return _specs(parse_yaml(text, source), source, known_agent)


def _specs(root: YamlMap, source: str, known_agent: Callable[[str], bool]) -> list[SupervisorSpec]:
    root.check_keys(("supervisors",))
    specs = [_supervisor(m) for m in root.get_map_list("supervisors")]
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.name in seen:
            raise root.error(
                "supervisors",
                f"supervisors[{index}]: duplicate name {spec.name!r}",
                "supervisor names must be unique",
            )
        seen.add(spec.name)
        validate(spec, known_agent, source, f"supervisors[{index}]")
    return specs


def _supervisor(fields: YamlMap, name: str | None = None) -> SupervisorSpec:
    keys = (
        "name",
        "strategy",
        "max_restarts",
        "max_window",
        "backoff",
        "auto_shutdown",
        "autostart",
        "children",
    )
    fields.check_keys(keys, () if name else ("name",))
    strategies = ", ".join(s.value for s in Strategy)
    backoff = None
    if fields.has("backoff"):
        b = fields.get_map("backoff")
        b.check_keys(("min", "max", "jitter", "reset_after"))
        backoff = Backoff(
            min=b.get_float("min", 0.5),
            max=b.get_float("max", 30.0),
            jitter=b.get_float("jitter", 0.1, maximum=1.0),
            reset_after=b.get_float("reset_after", 60.0),
        )
    return SupervisorSpec(
        name=name
        or fields.get_str(
            "name", required=True, pattern=_NAME, hint="use lowercase letters, digits, . _ -"
        ),
        strategy=Strategy(
            fields.get_str(
                "strategy", "one_for_one", pattern=_STRATEGY, hint=f"use one of {strategies}"
            )
        ),
        max_restarts=fields.get_int("max_restarts", 3),
        max_window=fields.get_float("max_window", 60.0, exclusive_minimum=True),
        backoff=backoff,
        auto_shutdown=AutoShutdown(
            fields.get_str(
                "auto_shutdown",
                "never",
                pattern=_AUTO,
                hint="use one of " + ", ".join(a.value for a in AutoShutdown),
            )
        ),
        children=tuple(_child(c) for c in fields.get_map_list("children")),
        autostart=fields.get_bool("autostart", False),
    )


def _child(fields: YamlMap) -> ChildSpec:
    fields.check_keys(
        (
            "name",
            "agent",
            "intent",
            "restart",
            "shutdown",
            "devices",
            "max_steps",
            "context_slots",
            "significant",
            "resume",
            "supervisor",
        ),
        ("name",),
    )
    name = fields.get_str(
        "name", required=True, pattern=_NAME, hint="use lowercase letters, digits, . _ -"
    )
    restart = fields.get_str(
        "restart", "", pattern=_RESTART, hint="use permanent, transient or temporary"
    )
    nested = None
    if fields.has("supervisor"):
        nested = _supervisor(fields.get_map("supervisor"), name=name)
    devices = fields.get_str_list("devices") if fields.has("devices") else None
    return ChildSpec(
        name=name,
        agent=fields.get_str("agent") or None,
        intent=fields.get_str("intent"),
        restart=Restart(restart) if restart else None,
        shutdown=_shutdown(fields),
        devices=devices,
        supervisor=nested,
        max_steps=fields.get_int("max_steps", 0) if fields.has("max_steps") else None,
        context_slots=(
            fields.get_int("context_slots", 1, minimum=1) if fields.has("context_slots") else None
        ),
        significant=fields.get_bool("significant", False),
        resume=fields.get_bool("resume", False),
    )


def _shutdown(fields: YamlMap) -> float | None:
    """Seconds, or ``infinity``; unset: the default of the child's kind."""
    if not fields.has("shutdown"):
        return None
    if fields.get_plain("shutdown") == "infinity":
        return math.inf
    return fields.get_float("shutdown", 5.0)
