"""``rnix immune``: status from the store, forget, and resume without a running system."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result
from helpers import agent, call, respond, scripted

from rnix_actors import System
from rnix_actors.cli.immune_cmd import immune
from rnix_actors.immune import ImmuneConfig


def invoke(project: Path, *args: str) -> Result:
    obj = SimpleNamespace(project_dir=project, state_dir=None)
    return CliRunner().invoke(immune, list(args), obj=obj)


@pytest.fixture
def attacked(project: Path) -> Path:
    """A project whose store holds a profile, one alert and one threat signature."""
    with System(project) as system:
        immune_handle = system.set_immune(ImmuneConfig())
        agent(system, "w", scripted([respond(call("list_files")), "done"]))
        for _ in range(5):
            system.run("w", "x", timeout=10)
        agent(system, "w", scripted([respond(call("shell", command="true")), "done"]))
        system.run("w", "x", timeout=10)
        system.sync_events()
        immune_handle.stop()
    return project


def test_status_reads_the_store_and_says_no_daemon_runs(attacked: Path) -> None:
    result = invoke(attacked, "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == ["Mode: warn-only", "  Monitoring: 0 processes", "  Alerts: 1 active"]
    device = "access to unusual device /dev/shell"
    assert lines[3] == f"    PID 6: {device} (side-effecting; never used by this template)"
    assert lines[4:6] == ["  Suspended: 0 processes", "  Threat memory: 1 entry"]
    assert lines[6].startswith("    #1: unexpected-shell-call (detected ")
    assert "no rnix daemon is running" in result.stderr


def test_status_json_has_the_same_data(attacked: Path) -> None:
    result = invoke(attacked, "status", "--json")
    data = json.loads(result.stdout)
    assert data["ok"] and data["mode"] == "warn-only" and not data["daemon_running"]
    assert (data["monitoring"], data["suspended"]) == (0, 0)
    assert [a["pid"] for a in data["alerts"]] == [6]
    assert [t["name"] for t in data["threat_memory"]] == ["unexpected-shell-call"]
    assert data["profiles"] == [{"template": "w", "runs": 5, "active": True}]


def test_forget_by_name_then_all(attacked: Path) -> None:
    missing = invoke(attacked, "forget", "no-such-threat")
    assert missing.exit_code == 1 and "known: unexpected-shell-call" in missing.stderr
    done = invoke(attacked, "forget", "unexpected-shell-call")
    assert (done.exit_code, done.stdout) == (0, "Forgot 1 threat signature.\n")
    assert "Threat memory: 0 entries" in invoke(attacked, "status").stdout
    assert invoke(attacked, "forget", "--all").stdout == "Forgot 0 threat signatures.\n"


def test_forget_needs_a_name_or_all(project: Path) -> None:
    assert invoke(project, "forget").exit_code == 2
    assert invoke(project, "forget", "x", "--all").exit_code == 2


def test_resume_explains_it_needs_a_running_system(project: Path) -> None:
    result = invoke(project, "resume", "7")
    assert result.exit_code == 1
    assert "no rnix daemon is running" in result.stderr
    assert "system.immune.resume(7)" in result.stderr


def test_disabled_and_bad_config(project: Path) -> None:
    config = project / ".rnix" / "config.yaml"
    config.parent.mkdir(exist_ok=True)
    config.write_text("immune:\n  enabled: false\n")
    result = invoke(project, "status")
    assert result.stdout.splitlines()[0] == "Mode: disabled" and result.stderr == ""
    config.write_text("immune:\n  min_samples: 0\n")
    bad = invoke(project, "status")
    assert bad.exit_code == 1
    assert f"{config}:2: field 'immune.min_samples'" in bad.stderr
    assert "an integer >= 2" in bad.stderr


def test_status_of_a_fresh_project_creates_nothing(project: Path) -> None:
    result = invoke(project, "status")
    assert result.exit_code == 0 and "Threat memory: 0 entries" in result.stdout
    assert not (project / ".rnix" / "rnix.db").exists()
