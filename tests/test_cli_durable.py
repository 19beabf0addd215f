"""``rnix checkpoints`` and ``rnix prune`` of checkpoints, against a real state dir."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from rnix_actors import System
from rnix_actors.cli.main import cli


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args])


def test_checkpoints_lists_each_step_and_prune_removes_them(system: System, project: Path) -> None:
    info = system.run("doc-writer", "document", timeout=10)
    assert info.exit_code == 0
    system.ps(all=True)  # the process log has written the row
    listed = json.loads(invoke(project, "checkpoints", str(info.pid), "--json").stdout)
    steps = [c["step"] for c in listed["checkpoints"]]
    assert listed["state"] == "dead" and steps[0] == 0 and steps == sorted(steps)
    assert listed["total"] == len(steps) and listed["bytes"] > 0
    text = invoke(project, "checkpoints", str(info.pid))
    assert (
        text.exit_code == 0 and f"PID {info.pid}, dead: {len(steps)} checkpoint(s)" in text.stdout
    )
    assert "start" in text.stdout
    kept = json.loads(invoke(project, "prune", "--json").stdout)  # older than 7 days: none
    assert kept["checkpoints"] == 0
    done = json.loads(invoke(project, "prune", "--older-than", "0s", "--json").stdout)
    assert done["pids"] == [info.pid] and done["checkpoints"] == len(steps)
    gone = invoke(project, "checkpoints", str(info.pid), "--json")
    assert gone.exit_code != 0 and "no such process" in gone.output
