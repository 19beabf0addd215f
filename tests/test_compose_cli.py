"""``compose up``, ``topology``, ``similarity`` and ``migrations`` as standalone commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnix_actors.cli.compose_cmd import compose
from rnix_actors.cli.topology_cmd import migrations, similarity, topology

WORKFLOW = """name: cli-review
agents:
  analyst: {agent: code-analyst, intent: Review.}
  docs: {agent: doc-writer, intent: Document., depends_on: [analyst]}
"""


@pytest.fixture
def here(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(project)
    monkeypatch.delenv("RNIX_STATE_DIR", raising=False)
    (project / "wf.yaml").write_text(WORKFLOW)
    return project


def test_compose_up_shows_progress_summary_and_feeds_the_topology(here: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(compose, ["up", "wf.yaml"])
    assert out.exit_code == 0, out.output
    assert "[analyst] start code-analyst" in out.output
    assert "Workflow cli-review: completed (2/2 nodes)" in out.output
    shown = runner.invoke(topology, ["--threshold", "1"])
    assert "  code-analyst ──(pipe: 1)──→ doc-writer" in shown.output
    assert " ★ code-analyst → doc-writer (cli-review)" in shown.output
    data = json.loads(runner.invoke(topology, ["--json"]).output)
    assert data["edges"][0]["kind"] == "pipe"


def test_compose_up_rejects_a_bad_file_before_starting(here: Path) -> None:
    (here / "bad.yaml").write_text("name: bad\nagents:\n  a: {agent: nobody}\n")
    out = CliRunner().invoke(compose, ["up", "bad.yaml", "--json"])
    assert out.exit_code == 1
    assert "bad.yaml:3: field 'agents.a.agent': unknown agent 'nobody'" in out.output
    assert not (here / ".rnix" / "rnix.db").exists()


def test_similarity_matrix_and_ranking(here: Path) -> None:
    runner = CliRunner()
    matrix = runner.invoke(similarity, [])
    assert matrix.exit_code == 0 and "1.00" in matrix.output
    ranked = runner.invoke(similarity, ["security-scanner"])
    assert 'Capability Similarity for "security-scanner":' in ranked.output
    assert "code-analyst" in ranked.output and "candidate" in ranked.output
    assert runner.invoke(similarity, ["nobody"]).exit_code == 1
    assert "No migration decisions" in runner.invoke(migrations, []).output
