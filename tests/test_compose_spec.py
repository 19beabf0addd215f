"""Compose files, the DAG helpers and the neuroplastic route rules (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnix_actors import ConfigError
from rnix_actors.compose import Route, choose, load_workflow, parse_workflow, pipeline, reinforce
from rnix_actors.compose.dag import dependants, find_cycle, layers, ready

KNOWN = {"code-analyst", "security-scanner", "doc-writer"}.__contains__
SHIPPED = Path(__file__).resolve().parents[1] / "conf" / "compose"


def parse(text: str):
    return parse_workflow(text, KNOWN, "wf.yaml")


def test_shipped_compose_files_load() -> None:
    for path in sorted(SHIPPED.glob("*.yaml")):
        workflow = load_workflow(path, KNOWN)
        assert workflow.nodes


def test_a_valid_workflow() -> None:
    wf = parse(
        "name: review\nintent: go\nagents:\n"
        "  a: {agent: code-analyst, intent: x, budgets: {max_steps: 5, max_tokens: 100}}\n"
        "  b: {agent: doc-writer, depends_on: [a], restart: temporary, max_restarts: 1}\n"
    )
    assert wf.deps == {"a": (), "b": ("a",)}
    assert wf.node("a").budgets.max_tokens == 100 and wf.node("b").max_restarts == 1


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ("  a: {agent: nope}\n", "wf.yaml:4: field 'agents.a.agent'", "unknown agent 'nope'"),
        (
            "  a: {agent: doc-writer, depends_on: [zz]}\n",
            "wf.yaml:4: field 'agents.a.depends_on'",
            "unknown dependency 'zz'",
        ),
        (
            "  a: {agent: doc-writer, depends_on: [b]}\n"
            "  b: {agent: doc-writer, depends_on: [a]}\n",
            "field 'agents.a.depends_on'",
            "dependency cycle: a → b → a",
        ),
        ("  a: {agent: doc-writer, depends_on: [a]}\n", "agents.a.depends_on", "on itself"),
        ("  a: {agent: doc-writer, restart: always}\n", "agents.a.restart", "unknown restart"),
        ("  a: {agent: doc-writer, budgets: {tokens: 1}}\n", "agents.a.budgets.tokens", "unknown"),
    ],
)
def test_errors_name_file_line_and_field(body: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse("name: wf\nintent: x\nagents:\n" + body)
    assert where in str(info.value) and message in str(info.value)


def test_dag_helpers() -> None:
    deps = {"a": (), "b": (), "c": ("a", "b"), "d": ("c",)}
    assert ready(deps, [], []) == ["a", "b"]  # independent nodes start together
    assert ready(deps, ["a"], ["a", "b"]) == []
    assert dependants(deps, "a") == ["c", "d"]
    assert layers(deps) == [["a", "b"], ["c"], ["d"]]
    assert find_cycle(deps) is None
    assert find_cycle({"x": ("y",), "y": ("z",), "z": ("x",)}) == ["x", "y", "z", "x"]


def test_pipeline_chains_stages() -> None:
    wf = pipeline(["code-analyst", ("doc-writer", "document it")], "review")
    assert [(n.agent, n.depends_on) for n in wf.nodes] == [
        ("code-analyst", ()),
        ("doc-writer", ("1.code-analyst",)),
    ]
    with pytest.raises(ConfigError, match="empty stage"):
        pipeline(["a", " "])


def test_route_rules_gain_and_lose_weight() -> None:
    new = reinforce(None, "w", "n", "sec", "sec", "ana", ok=True)
    assert new == Route("w", "n", "sec", "ana", 1)
    assert choose("sec", new) == "ana"
    stronger = reinforce(new, "w", "n", "sec", "ana", None, ok=True)
    assert stronger is not None and stronger.weight == 2
    weaker = reinforce(new, "w", "n", "sec", "ana", None, ok=False)
    assert weaker is not None and weaker.weight == 0 and choose("sec", weaker) == "sec"
    assert reinforce(None, "w", "n", "sec", "sec", None, ok=True) is None  # nothing to learn
    assert reinforce(None, "w", "n", "sec", "sec", "ana", ok=False) is None
