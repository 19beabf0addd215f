"""No spawn path widens devices: migration from a device-less original, and a property over
the pure rules every path goes through (child_devices, plan_migration)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import agent as make_agent
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors import AgentTemplate, LLMRequest, LLMResponse, Skill, System
from rnix_actors.compose import parse_workflow
from rnix_actors.errors import SpawnError
from rnix_actors.kernel.safety import child_devices
from rnix_actors.migration.gate import Record, plan_migration
from rnix_actors.migration.similarity import similarity_matrix

FLOW = """name: lonely
agents:
  work: {agent: lonely, intent: Think it over., max_restarts: 1}
"""


def test_a_device_less_original_is_not_migrated_to_an_agent_with_devices(project: Path) -> None:
    def broken(request: LLMRequest) -> LLMResponse | str:
        raise RuntimeError("the model is down")

    with System(project) as system:
        system.add_skill(Skill("pondering", "thinks, touches nothing"))
        system.register_llm("broken", broken)
        system.register_llm("fine", lambda r: "done")
        system.add_template(AgentTemplate("lonely", skills=("pondering",), driver="broken"))
        system.add_template(
            AgentTemplate(
                "handy", skills=("pondering",), devices=("/dev/fs", "/dev/shell"), driver="fine"
            )
        )
        assert system.migration.matrix().get("lonely", "handy") >= 0.5
        workflow = parse_workflow(FLOW, lambda n: n in system.templates, "wf.yaml")
        result = system.compose.run(workflow, lambda p: None, timeout=60)
        assert not result.ok
        (decision,) = system.migration.decisions()
        assert decision.decision == "declined"
        assert decision.reason == "lonely held no devices, and a substitute may not gain any"
        assert decision.detail["candidates"][0]["verdict"] == "original holds no devices"
        ran = {p.template: p.allowed_devices for p in system.ps(all=True)}
        assert set(ran) == {"lonely"} and ran["lonely"] == ()


_devices = st.frozensets(
    st.sampled_from(["/dev/fs", "/dev/fs/docs", "/dev/shell", "/dev/llm/x", "/dev/pay"]),
    max_size=4,
)


@given(parent=st.none() | _devices, template=_devices, requested=st.none() | _devices)
def test_a_child_never_holds_more_than_its_parent_its_template_or_its_request(
    parent: frozenset[str] | None, template: frozenset[str], requested: frozenset[str] | None
) -> None:
    try:
        got = child_devices(parent, template, requested)
    except SpawnError:
        return
    for device in got:
        for bound in (template, parent, requested):
            if bound is not None:
                assert any(device == b or device.startswith(b + "/") for b in bound)


@given(original=_devices, candidates=st.dictionaries(st.sampled_from("abcd"), _devices))
def test_a_migration_substitute_never_holds_more_than_the_original(
    original: frozenset[str], candidates: dict[str, frozenset[str]]
) -> None:
    skills = {"orig": ["s"], **{name: ["s"] for name in candidates}}
    matrix = similarity_matrix(skills, {})
    plan = plan_migration(
        "orig", matrix, 0.5, {}, Record(), lambda n: candidates[n], original, margin=-1.0
    )
    chosen = plan.chosen
    if chosen is not None:
        assert set(chosen.devices) <= original
        if not original:
            assert not candidates[chosen.agent]


def test_whitelist_entries_are_normalised_or_refused(system: System) -> None:
    make_agent(system, "w", lambda r: "done", devices=("/dev/fs", "/dev/shell"))
    pid = system.spawn("w", "x", devices=["/dev/fs/"])
    assert system.wait(pid, 30).allowed_devices == ("/dev/fs",)
    with pytest.raises(SpawnError, match="bad device in the whitelist"):
        system.spawn("w", "x", devices=["/dev/fs/../shell"])


def test_a_host_device_below_a_builtin_is_refused(system: System) -> None:
    with pytest.raises(ValueError, match="below the built-in device /dev/fs"):
        system.register_device("/dev/fs/payments", lambda call: "paid")
    path, _, subpath = system.devices.lookup("/dev/fs/payments")
    assert (path, subpath) == ("/dev/fs", "/payments")  # still the file system, not a payment
    system.register_device("/dev/payments", lambda call: "paid")
