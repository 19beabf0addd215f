"""Agent templates and skills: what an agent is before it runs.

Templates come from YAML files (``conf/agents/*.yaml``, then the project's ``.rnix/agents/``,
which override shipped ones by name) or are defined in Python. Loading lives in
`rnix_actors.loader`; this module holds the value types only.
"""

from __future__ import annotations

import attrs

from rnix_actors.shellconf import ShellSettings

DEFAULT_MAX_STEPS = 50
DEFAULT_STEP_TIMEOUT = 300.0
DEFAULT_CONTEXT_SLOTS = 256
DEFAULT_MAX_DESCENDANTS = 100


@attrs.frozen
class Limits:
    """Per-process limits. ``0`` means unlimited for steps, tokens, the step timeout and the
    tree bounds.

    ``max_descendants``, ``max_tree_tokens`` and ``max_tree_cost`` apply to a process started
    at depth 0 and everything its agents spawn below it (its tree): processes ever spawned in
    it, and its rolled-up tokens and cost (the root is suspended, ``budget_exhausted``).
    """

    max_steps: int = DEFAULT_MAX_STEPS
    max_tokens: int = 0
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    context_slots: int = DEFAULT_CONTEXT_SLOTS
    max_descendants: int = DEFAULT_MAX_DESCENDANTS
    max_tree_tokens: int = 0
    max_tree_cost: float = 0.0


@attrs.frozen
class Skill:
    """A named capability. ``devices`` are the device paths the skill needs."""

    name: str
    description: str = ""
    devices: tuple[str, ...] = ()
    source: str = "<python>"


@attrs.frozen
class AgentTemplate:
    """An agent definition.

    ``devices`` is the template's own whitelist; the effective whitelist of a process is
    ``devices`` ∪ the devices of its skills (see `effective_devices`), intersected with the
    parent's on agent spawns. ``driver`` names the LLM provider (``/dev/llm/<driver>``);
    for the replay driver ``model`` is the path of the replay script.
    """

    name: str
    description: str = ""
    skills: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    driver: str = "replay"
    model: str = ""
    instructions: str = ""
    limits: Limits = Limits()
    source: str = "<python>"
    shell: ShellSettings | None = None  # over the config's shell settings, for this agent
    # Ray backend: what a host's node must have (a resource or label name, or label=value)
    placement: tuple[str, ...] = ()


def effective_devices(template: AgentTemplate, skills: dict[str, Skill]) -> frozenset[str]:
    """The template's devices plus the devices its skills declare (unknown skills add none)."""
    devices = set(template.devices)
    for name in template.skills:
        skill = skills.get(name)
        if skill is not None:
            devices.update(skill.devices)
    return frozenset(devices)
