"""Compose files: a workflow intent and its agents as a DAG, validated before anything starts.

    name: review-pipeline
    intent: Review this repository.
    agents:
      analyst:
        agent: code-analyst
        intent: Review the code quality.
      security:
        agent: security-scanner
        intent: Scan for vulnerabilities.
        depends_on: [analyst]
        restart: transient          # permanent | transient | temporary
        max_restarts: 2             # within max_window seconds, then migration or failure
        max_window: 60
        budgets: {max_steps: 20, max_tokens: 60000, step_timeout: 120}

Every problem is a `ConfigError` naming ``file:LINE``, the field and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from rnix_actors.compose.dag import find_cycle
from rnix_actors.errors import ConfigError
from rnix_actors.supervision.spec import Restart
from rnix_actors.yamlsrc import YamlMap, load_yaml, parse_yaml

NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
NAME_HINT = "use lowercase letters, digits, '.', '_' and '-'"
WORKFLOW_KEYS = ("name", "intent", "description", "agents")
NODE_KEYS = ("agent", "intent", "depends_on", "restart", "max_restarts", "max_window", "budgets")
BUDGET_KEYS = ("max_steps", "max_tokens", "step_timeout")


@attrs.frozen
class Budgets:
    """Per-node limits; None keeps the agent template's value."""

    max_steps: int | None = None
    max_tokens: int | None = None
    step_timeout: float | None = None


@attrs.frozen
class Node:
    name: str
    agent: str
    intent: str
    depends_on: tuple[str, ...] = ()
    restart: Restart = Restart.TRANSIENT
    max_restarts: int = 3
    max_window: float = 60.0
    budgets: Budgets = attrs.field(factory=Budgets)


@attrs.frozen
class Workflow:
    name: str
    intent: str
    nodes: tuple[Node, ...]
    description: str = ""
    source: str = "<python>"

    @property
    def deps(self) -> dict[str, tuple[str, ...]]:
        return {node.name: node.depends_on for node in self.nodes}

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


def load_workflow(path: Path | str, known_agent: Callable[[str], bool]) -> Workflow:
    """Read and validate a compose file (nothing starts on error)."""
    return _workflow(load_yaml(Path(path)), known_agent)


def parse_workflow(text: str, known_agent: Callable[[str], bool], source: str) -> Workflow:
    return _workflow(parse_yaml(text, source), known_agent)


def _workflow(fields: YamlMap, known_agent: Callable[[str], bool]) -> Workflow:
    fields.check_keys(WORKFLOW_KEYS, required=("name", "agents"))
    name = fields.get_str("name", required=True, pattern=NAME, hint=NAME_HINT)
    agents = fields.get_map("agents")
    if not agents.keys():
        raise fields.error("agents", "a workflow needs at least one agent", "add agents: {...}")
    nodes = []
    for key in agents:
        if not NAME.fullmatch(key):
            raise agents.error(key, f"invalid node name {key!r}", NAME_HINT)
        nodes.append(_node(key, agents.get_map(key), known_agent))
    names = {n.name for n in nodes}
    for node in nodes:
        for dep in node.depends_on:
            if dep not in names:
                problem = f"unknown dependency {dep!r}"
                fix = f"depend on one of: {', '.join(sorted(names - {node.name}))}"
                raise agents.get_map(node.name).error("depends_on", problem, fix)
    cycle = find_cycle({n.name: n.depends_on for n in nodes})
    if cycle:
        problem = "dependency cycle: " + " → ".join(cycle)
        raise agents.get_map(cycle[0]).error("depends_on", problem, "remove one dependency")
    return Workflow(
        name=name,
        intent=fields.get_str("intent"),
        nodes=tuple(nodes),
        description=fields.get_str("description"),
        source=fields.file,
    )


def _node(name: str, fields: YamlMap, known_agent: Callable[[str], bool]) -> Node:
    fields.check_keys(NODE_KEYS, required=("agent",))
    agent = fields.get_str("agent", required=True)
    if not known_agent(agent):
        fix = "define it in conf/agents or .rnix/agents, or fix the name"
        raise fields.error("agent", f"unknown agent {agent!r}", fix)
    restart_text = fields.get_str("restart", "transient")
    try:
        restart = Restart(restart_text)
    except ValueError:
        fix = "use permanent, transient or temporary"
        raise fields.error("restart", f"unknown restart type {restart_text!r}", fix) from None
    depends_on = fields.get_str_list("depends_on")
    if name in depends_on:
        raise fields.error("depends_on", f"{name!r} depends on itself", "remove it")
    budgets = fields.get_map("budgets")
    budgets.check_keys(BUDGET_KEYS)
    return Node(
        name=name,
        agent=agent,
        intent=fields.get_str("intent"),
        depends_on=depends_on,
        restart=restart,
        max_restarts=fields.get_int("max_restarts", 3),
        max_window=fields.get_float("max_window", 60.0, exclusive_minimum=True),
        budgets=Budgets(
            max_steps=budgets.get_int("max_steps", 0) or None,
            max_tokens=budgets.get_int("max_tokens", 0) or None,
            step_timeout=budgets.get_float("step_timeout", 0.0) or None,
        ),
    )


def pipeline(
    stages: Sequence[str | tuple[str, str]], intent: str = "", name: str = "pipe"
) -> Workflow:
    """A linear workflow ``A | B | C``: each stage gets the previous stage's result.

    A stage is an agent name or ``(agent, intent)``. Raises `ConfigError` for an empty or
    invalid pipe.
    """
    if not stages:
        raise ConfigError("<pipe>", "stages", "a pipe needs at least one stage", "e.g. 'a | b'")
    nodes: list[Node] = []
    for index, stage in enumerate(stages):
        agent, task = (stage, "") if isinstance(stage, str) else stage
        agent = agent.strip()
        if not agent:
            raise ConfigError("<pipe>", f"stages[{index}]", "empty stage", "remove the extra '|'")
        deps = (nodes[-1].name,) if nodes else ()
        task = task or (intent if index == 0 else "Continue the work with the input below.")
        nodes.append(Node(f"{index + 1}.{agent}", agent, task, deps))
    return Workflow(name=name, intent=intent, nodes=tuple(nodes), source="<pipe>")


def parse_pipe(text: str) -> list[str]:
    """``"a | b | c"`` → ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split("|")]
