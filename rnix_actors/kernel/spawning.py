"""Deciding a spawn: template, depth, devices, driver. No actor state here.

Every spawn path goes through `plan_spawn`, so the depth cap and the monotonic device rule
have no way around them.

A driver whose preparation reads files (the replay driver parses its script) declares
``check_prepared(model)``: every spawner then runs ``prepare`` in its own thread first
(`prepare_in_caller`: the API's caller, the spawning agent's thread, a supervisor, the caller
of a resume), and the kernel's thread only checks its outcome (`check_model`). A bomb of a
script cannot stall the kernel, and the kernel checks exactly what the spawner read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import attrs

from rnix_actors.drivers.base import Driver
from rnix_actors.errors import RnixError, SpawnError
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
    check_model(driver, model)
    return SpawnPlan(template, depth, devices, driver, model)


def check_model(driver: Driver, model: str) -> None:
    """The kernel's check of a spawn's model: ``check_prepared`` where the driver has it
    (no file read again), else its ``prepare``."""
    check = getattr(driver, "check_prepared", None)
    if callable(check):
        check(model)
    else:
        driver.prepare(model)


def prepare_in_caller(
    agent: str | AgentTemplate,
    driver: str | None,
    model: str | None,
    templates: Callable[[str], AgentTemplate | None],
    drivers: Callable[[str], Driver | None],
) -> None:
    """Run the slow part of a spawn's check in the calling thread (see the module doc).

    Only for drivers that declare ``check_prepared``; an error is kept by the driver for the
    kernel to raise in its order of checks (an unknown agent, the depth cap and the devices
    come first), so nothing is raised here."""
    template = agent if isinstance(agent, AgentTemplate) else templates(agent)
    if template is None:
        return
    found = drivers(driver or template.driver)
    if found is not None and callable(getattr(found, "check_prepared", None)):
        with contextlib.suppress(RnixError):
            found.prepare(model or template.model)
