"""Reinforced-path search, the §9 rendering and persistence of the collaboration graph."""

from __future__ import annotations

from pathlib import Path

import attrs

from rnix_actors import System
from rnix_actors.config import TopologyConfig, load_config
from rnix_actors.topology import (
    Edge,
    Overlap,
    TopologyView,
    collaboration_pairs,
    reinforced_paths,
)


def e(a: str, b: str, kind: str = "pipe", n: int = 5, label: str = "") -> Edge:
    return Edge(a, b, kind, n, label)  # type: ignore[arg-type]


def test_chains_not_only_pairs_and_only_maximal_ones() -> None:
    edges = [e("ca", "ss", "spawn", 6), e("ss", "dw", "pipe", 5), e("ca", "dw", "pipe", 2)]
    paths = reinforced_paths(edges, threshold=5)
    assert [p.agents for p in paths] == [("ca", "ss", "dw")]
    assert paths[0].weakest == 5  # threshold is inclusive


def test_every_hop_must_reach_the_threshold_summing_kinds() -> None:
    edges = [e("a", "b", "spawn", 3), e("a", "b", "msg", 2), e("b", "c", "pipe", 4)]
    assert [p.agents for p in reinforced_paths(edges, 5)] == [("a", "b")]
    assert reinforced_paths(edges, 6) == []


def test_migrations_and_self_loops_are_not_collaboration() -> None:
    edges = [e("a", "b", "migration", 9), e("a", "a", "pipe", 9)]
    assert reinforced_paths(edges, 1) == []
    assert collaboration_pairs(edges) == {}


def test_cycles_and_branches_terminate_with_simple_paths() -> None:
    edges = [e("a", "b"), e("b", "a"), e("b", "c"), e("b", "d")]
    paths = {p.agents for p in reinforced_paths(edges, 5)}
    assert paths == {("a", "b", "c"), ("a", "b", "d"), ("b", "a")}


def test_a_path_is_labelled_when_all_its_hops_agree() -> None:
    edges = [e("a", "b", label="review pipeline"), e("b", "c", label="review pipeline")]
    assert reinforced_paths(edges, 5)[0].label == "review pipeline"


def test_text_is_the_seed_format() -> None:
    edges = (
        e("code-analyst", "security-scanner", "spawn", 47),
        e("code-analyst", "doc-writer", "pipe", 23, "review pipeline"),
        e("security-scanner", "doc-writer", "pipe", 23, "review pipeline"),
        e("security-scanner", "code-analyst", "msg", 12),
    )
    view = TopologyView(
        edges,
        tuple(reinforced_paths(edges, 5)),
        5,
        (Overlap("code-analyst", "security-scanner", 0.72), Overlap("a", "b", 0.2)),
    )
    assert view.text().splitlines() == [
        "Agent Collaboration Topology:",
        "  code-analyst ──(spawn: 47)──→ security-scanner",
        "  code-analyst ──(pipe: 23)──→ doc-writer",
        "  security-scanner ──(pipe: 23)──→ doc-writer",
        "  security-scanner ──(msg: 12)──→ code-analyst",
        "",
        "  Reinforced paths (auto-optimized):",
        " ★ code-analyst → security-scanner → doc-writer",
        " ★ security-scanner → code-analyst → doc-writer",
        "",
        "  Capability overlap:",
        "    code-analyst ↔ security-scanner: 72% (high substitutability)",
    ]
    assert view.to_dict()["edges"][0]["count"] == 47


def test_real_spawn_and_send_traffic_is_recorded_and_persisted(project: Path) -> None:
    from helpers import agent, call, respond, scripted

    config = attrs.evolve(load_config(None), topology=TopologyConfig(reinforcement_threshold=1))
    with System(project, config=config) as system:
        topology = system.topology
        agent(system, "child", scripted(["child done"]))
        agent(
            system,
            "parent",
            scripted([respond(call("spawn", agent="child", intent="help")), "parent done"]),
        )
        system.wait(system.spawn("parent", "work"), timeout=10)
        system.sync_events()
        edges = topology.edges()
        assert [(x.source, x.target, x.kind, x.count) for x in edges] == [
            ("parent", "child", "spawn", 1)
        ]
        topology.record("pipe", "parent", "child", "wf")
        assert [p.agents for p in topology.reinforced_paths()] == [("parent", "child")]
    with System(project) as system:  # a new system reads the stored graph
        edges = system.topology.edges()
        assert {(x.kind, x.count) for x in edges} == {("spawn", 1), ("pipe", 1)}
