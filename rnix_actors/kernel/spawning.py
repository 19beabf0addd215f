"""Deciding a spawn: template, depth, devices, driver. No actor state here.

Every spawn path goes through `plan_spawn`, so the depth cap and the monotonic device rule
have no way around them.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from rnix_actors.drivers.base import Driver
from rnix_actors.errors import SpawnError
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.kernel.safety import MAX_SPAWN_DEPTH, child_devices, depth_rejection
from rnix_actors.messages.kernel import SpawnRequest
from rnix_actors.templates import AgentTemplate, Skill, effective_devices


@attrs.frozen
class SpawnPlan:
    template: AgentTemplate
    depth: int
    devices: frozenset[str]
    driver: Driver
    model: str


def plan_spawn(
    req: SpawnRequest,
    parent: ProcessInfo | None,
    templates: Callable[[str], AgentTemplate | None],
    drivers: Callable[[str], Driver | None],
    skills: dict[str, Skill],
) -> SpawnPlan:
    """Decide a spawn or raise `SpawnError` (or the driver's `ConfigError` for a bad model).

    ``parent`` is the live parent for ``req.parent_pid`` (None for top-level spawns). Agent
    spawns grow the depth and are refused past `MAX_SPAWN_DEPTH` with the seed's text; every
    spawn with a parent is narrowed to the parent's devices.
    """
    template = req.template
    if not isinstance(template, AgentTemplate):
        found = templates(template)
        if found is None:
            raise SpawnError(f"unknown agent '{template}'")
        template = found
    depth = 0
    if req.agent_spawn:
        if parent is None:
            raise SpawnError("an agent spawn needs a live parent process")
        if parent.depth + 1 > MAX_SPAWN_DEPTH:
            raise SpawnError(depth_rejection(parent.depth))
        depth = parent.depth + 1
    devices = child_devices(
        None if parent is None else parent.allowed_devices,
        effective_devices(template, skills),
        req.devices,
    )
    driver_name = req.driver or template.driver
    driver = drivers(driver_name)
    if driver is None:
        raise SpawnError(
            f"agent '{template.name}' uses driver '{driver_name}', which is not "
            "registered; register it with System.register_driver() or fix the template"
        )
    model = req.model or template.model
    driver.prepare(model)
    return SpawnPlan(template, depth, devices, driver, model)
