"""The seed's self-healing scenario on real actors, supervisors, replay agents and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from rnix_actors import System
from rnix_actors.compose import ComposeEngine, Progress, parse_workflow
from rnix_actors.config import TopologyConfig, load_config
from rnix_actors.drivers.replay import parse_replay_text
from rnix_actors.migration import Migration
from rnix_actors.topology import Topology

BROKEN = """version: "1"
responses:
  - content: Surveying the project before scanning.
    tool_calls: [{name: list_files, input: {path: "."}}]
"""  # exhausted at step 2: the run fails with an llm error, after some partial work

REVIEW = """name: review
intent: Review the project.
agents:
  analyst: {agent: code-analyst, intent: Review the code.}
  security: {agent: security-scanner, intent: Scan for vulnerabilities., depends_on: [analyst],
             max_restarts: 1}
  docs: {agent: doc-writer, intent: Summarise., depends_on: [security]}
"""


CONTROL = """name: control
agents:
  docs: {agent: doc-writer, intent: Summarise., max_restarts: 1}
  after: {agent: code-analyst, intent: Review., depends_on: [docs]}
"""


@attrs.define
class Env:
    system: System
    topology: Topology
    migration: Migration
    engine: ComposeEngine

    def break_agent(self, name: str) -> None:
        self.system.replay.add_script(f"broken-{name}", parse_replay_text(BROKEN, "broken"))
        template = self.system.templates[name]
        self.system.add_template(attrs.evolve(template, model=f"broken-{name}"))

    def run(self, text: str) -> tuple[object, list[Progress]]:
        workflow = parse_workflow(text, lambda n: n in self.system.templates, "wf.yaml")
        progress: list[Progress] = []
        return self.engine.run(workflow, progress.append, timeout=60), progress


@pytest.fixture
def env(project: Path) -> Iterator[Env]:
    config = attrs.evolve(load_config(None), topology=TopologyConfig(reinforcement_threshold=1))
    with System(project, config=config) as system:
        yield Env(system, system.topology, system.migration, system.compose)


def test_pipe_passes_each_result_on_and_records_pipe_edges(env: Env) -> None:
    result = env.engine.pipe("code-analyst | security-scanner", "review this repository")
    assert result.ok
    second = env.system.info(result.nodes[1].attempts[0].pid)
    assert result.nodes[0].result in second.intent  # stage 1's result is stage 2's input
    edges = {(e.source, e.target, e.kind) for e in env.topology.edges()}
    assert ("code-analyst", "security-scanner", "pipe") in edges


def test_security_scanner_migrates_to_code_analyst_and_completes(env: Env) -> None:
    env.engine.pipe("code-analyst | security-scanner", "warm-up")  # real collaboration history
    assert round(env.migration.matrix().get("code-analyst", "security-scanner"), 2) == 0.72
    env.break_agent("security-scanner")
    result, progress = env.run(REVIEW)
    security = result.node("security")  # type: ignore[attr-defined]
    assert result.ok and security.status == "migrated"  # type: ignore[attr-defined]
    assert security.migrated_to == "code-analyst" and security.ran == "code-analyst"
    assert [a.ok for a in security.attempts] == [False, False, True]
    assert any(p.kind == "migrated" and "similarity 0.72" in p.detail for p in progress)
    # partial context transfer: the substitute's intent carries the failed run's summary
    substitute = env.system.info(security.attempts[-1].pid)
    assert substitute.intent.startswith("Scan for vulnerabilities.")
    assert "Surveying the project before scanning." in substitute.intent
    assert "replay script broken-security-scanner exhausted" in substitute.intent
    assert set(substitute.allowed_devices) <= {"/dev/fs", "/dev/shell"}
    # the decision is recorded, with its outcome
    (decision,) = env.migration.decisions()
    assert (decision.decision, decision.substitute, decision.outcome) == (
        "migrated",
        "code-analyst",
        "completed",
    )
    assert decision.detail["candidates"][0]["verdict"] == "chosen"
    # the docs node got the substitute's result; the migration is visible in the topology
    edges = {(e.source, e.target, e.kind) for e in env.topology.edges()}
    assert ("security-scanner", "code-analyst", "migration") in edges
    assert result.node("docs").status == "completed"  # type: ignore[attr-defined]


def test_second_run_prefers_the_reinforced_substitute(env: Env) -> None:
    env.break_agent("security-scanner")
    first, _ = env.run(REVIEW)
    assert first.node("security").status == "migrated"  # type: ignore[attr-defined]
    second, progress = env.run(REVIEW)
    security = second.node("security")  # type: ignore[attr-defined]
    assert security.status == "completed" and security.preferred == "code-analyst"
    assert [a.agent for a in security.attempts] == ["code-analyst"]
    assert any(p.kind == "prefer" and p.node == "security" for p in progress)
    (route,) = env.engine.routes()
    assert (route.substitute, route.weight) == ("code-analyst", 2)


def test_a_substitute_that_fails_loses_its_weight(env: Env) -> None:
    solo = (
        "name: solo\nagents:\n"
        "  security: {agent: security-scanner, intent: Scan., max_restarts: 1}\n"
    )
    env.break_agent("security-scanner")
    first, _ = env.run(solo)
    assert first.ok  # type: ignore[attr-defined]
    env.break_agent("code-analyst")  # now the preferred substitute fails too
    result, _ = env.run(solo)
    assert not result.ok  # type: ignore[attr-defined]
    (route,) = env.engine.routes()
    assert route.weight == 0


def test_control_no_candidate_ends_failed_with_the_reason_and_the_attempts(env: Env) -> None:
    env.break_agent("doc-writer")  # nothing is 0.5-similar to doc-writer
    result, _ = env.run(CONTROL)
    docs = result.node("docs")  # type: ignore[attr-defined]
    assert docs.status == "failed"
    assert "migration no_candidate: no agent reaches similarity 0.50 with doc-writer" in docs.reason
    assert [a.ok for a in docs.attempts] == [False, False]
    after = result.node("after")  # type: ignore[attr-defined]
    assert after.status == "failed" and after.reason == "not started: dependency 'docs' failed"
    (decision,) = env.migration.decisions()
    assert decision.decision == "no_candidate"


def test_independent_nodes_run_in_parallel(env: Env) -> None:
    text = (
        "name: par\nagents:\n  a: {agent: code-analyst, intent: x}\n"
        "  b: {agent: security-scanner, intent: y}\n  c: {agent: doc-writer, depends_on: [a, b]}\n"
    )
    result, progress = env.run(text)
    assert result.ok  # type: ignore[attr-defined]
    starts = [p.node for p in progress if p.kind == "start"]
    assert starts[:2] == ["a", "b"]  # both started before either finished
    first_done = next(i for i, p in enumerate(progress) if p.kind == "done")
    assert (
        max(i for i, p in enumerate(progress) if p.kind == "start" and p.node in "ab") < first_done
    )
