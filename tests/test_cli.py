"""The ``rnix`` command line: click's runner in-process, and the installed script once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnix_actors.cli.main import cli


def invoke(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--project-dir", str(project), *args])
    return result.exit_code, result.output


def test_run_json_reports_the_process(project: Path) -> None:
    code, out = invoke(project, "run", "code-analyst", "review", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert set(data) == {"pid", "exit_code", "exit_reason", "result", "tokens_used", "steps"}
    assert (data["pid"], data["exit_code"], data["exit_reason"]) == (1, 0, "completed")
    assert data["tokens_used"] > 0 and data["steps"] == 5
    assert (project / "REVIEW.md").exists()


def test_run_text_streams_steps_and_prints_the_result(project: Path) -> None:
    code, out = invoke(project, "run", "doc-writer", "document it")
    assert code == 0, out
    assert "[kernel] spawning PID 1 (doc-writer" in out
    assert "[agent/1] step 3: Write /dev/fs DOCS-SUMMARY.md" in out
    assert "══ Result" in out and "[kernel] PID 1 exited(0) completed" in out


def test_run_max_steps_failure_exits_1(project: Path) -> None:
    code, out = invoke(project, "run", "code-analyst", "review", "--json", "--max-steps", "2")
    assert code == 1
    assert json.loads(out)["exit_reason"] == "max steps exceeded"


def test_unknown_agent_is_an_error_naming_the_known_ones(project: Path) -> None:
    code, out = invoke(project, "run", "nobody", "x")
    assert code == 1
    assert "unknown agent 'nobody'; known agents: code-analyst, doc-writer" in out


def test_bad_project_template_names_file_line_and_field(project: Path) -> None:
    agents = project / ".rnix" / "agents"
    agents.mkdir(parents=True)
    (agents / "bad.yaml").write_text("name: bad\ndriver: python\nlimits:\n  max_steps: -1\n")
    code, out = invoke(project, "run", "bad", "x")
    assert code == 1
    assert "bad.yaml:4" in out and "limits.max_steps" in out


def test_ps_all_lists_history_and_json_parses(project: Path) -> None:
    invoke(project, "run", "code-analyst", "one", "--json")
    invoke(project, "run", "doc-writer", "two", "--json")
    code, out = invoke(project, "ps", "--all")
    assert code == 0
    assert "code-analyst" in out and "doc-writer" in out and "0 active, 2 total" in out
    code, out = invoke(project, "ps", "--all", "--json")
    procs = json.loads(out)["processes"]
    assert [p["pid"] for p in procs] == [1, 2]
    assert all(p["state"] == "dead" for p in procs)
    code, out = invoke(project, "ps")
    assert "No active processes" in out


def test_usage_errors_exit_2(project: Path) -> None:
    code, _ = invoke(project, "run")
    assert code == 2
    code, _ = invoke(project, "run", "a", "b", "--max-steps", "-3")
    assert code == 2


def test_installed_script_runs_the_demo_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    rnix = Path(sys.executable).with_name("rnix")
    proc = subprocess.run(
        [str(rnix), "demo", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ok"] and summary["max_depth"] == 8 and summary["budget_suspended"]
    assert summary["supervised"] == "completed"
    assert summary["rogue_suspended"] and summary["migrated"]
    assert list(tmp_path.iterdir()) == []  # the demo works in its own temporary project


def test_run_provider_override_must_name_a_known_provider(project: Path) -> None:
    code, out = invoke(project, "run", "code-analyst", "x", "--provider", "nope")
    assert code == 1
    assert "uses driver 'nope', which is not registered" in out


def test_run_provider_without_its_key_fails_before_starting(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out = invoke(project, "run", "code-analyst", "x", "--provider", "openai")
    assert code == 1 and "OPENAI_API_KEY" in out
    code, out = invoke(project, "ps", "--all", "--json")
    assert json.loads(out)["processes"] == []


def test_read_commands_create_no_state(tmp_path: Path) -> None:
    for args in (["ps", "--all"], ["tree"], ["immune", "status"]):
        result = CliRunner().invoke(cli, ["--project-dir", str(tmp_path), *args])
        assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []
