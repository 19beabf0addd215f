"""``rnix agents``, ``prune``, ``completion``, ``--version``, template reload, and the CLI's
consistency: usage errors exit 2, ``--json`` failures carry specific codes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, System, __version__
from rnix_actors.cli.main import cli
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.server import DaemonServer
from rnix_actors.ipc.service import Service

TEMPLATE = """\
name: late-writer
description: A template written after the daemon started.
devices: [/dev/fs]
model: {script}
"""
SCRIPT = """\
version: "1"
responses:
  - content: done
    tool_calls:
      - name: complete
        input: {result: "written late, spawned anyway"}
"""


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args])


@pytest.fixture
def served(system: System) -> Iterator[System]:
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, socket=path)):
        yield system


def _write_template(project: Path) -> None:
    agents = project / ".rnix" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    (project / ".rnix" / "late.replay.yaml").write_text(SCRIPT)
    (agents / "late-writer.yaml").write_text(TEMPLATE.format(script="../late.replay.yaml"))


def test_a_template_written_after_the_daemon_started_can_be_spawned(
    served: System, project: Path
) -> None:
    assert "late-writer" not in served.templates
    _write_template(project)
    result = invoke(project, "run", "late-writer", "write", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"] == "written late, spawned anyway"
    listed = json.loads(invoke(project, "agents", "--json").stdout)["templates"]
    assert "late-writer" in [t["name"] for t in listed]
    (project / ".rnix" / "agents" / "late-writer.yaml").write_text("name: [broken\n")
    reloaded = invoke(project, "daemon", "reload", "--json")
    assert reloaded.exit_code == 1
    assert "late-writer.yaml" in json.loads(reloaded.stdout)["error"]["message"]
    assert "late-writer" in served.templates  # a broken file keeps what was there


def test_agents_lists_skills_devices_and_drivers(project: Path) -> None:
    result = invoke(project, "agents")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("code-analyst"))
    assert "replay" in line and "/dev/fs" in result.stdout


def test_prune_removes_old_dead_processes_and_their_logs(system: System, project: Path) -> None:
    pid = system.run("doc-writer", "document", timeout=10).pid
    system.sync_events()
    # The process log writes rows off the kernel's thread; reading the history waits for it,
    # so the store holds the dead row before another connection prunes it.
    assert [p.state for p in system.ps(all=True) if p.pid == pid] == ["dead"]
    folder = system.state_dir / "proc" / str(pid)
    assert folder.is_dir()
    kept = invoke(project, "prune", "--json")  # default: older than 7 days
    assert json.loads(kept.stdout)["pids"] == [] and folder.is_dir()
    dry = json.loads(invoke(project, "prune", "--older-than", "0s", "--dry-run", "--json").stdout)
    assert dry["pids"] == [pid] and folder.is_dir()
    done = json.loads(invoke(project, "prune", "--older-than", "0s", "--json").stdout)
    assert done["pids"] == [pid] and not folder.exists()
    assert [p.pid for p in system.ps(all=True)] == []
    assert system.run("doc-writer", "again", timeout=10).pid > pid  # PIDs never reused


def test_version_and_completion(project: Path) -> None:
    assert invoke(project, "--version").stdout.strip() == f"rnix {__version__}"
    for shell in ("bash", "zsh", "fish"):
        script = invoke(project, "completion", shell)
        assert script.exit_code == 0 and "_RNIX_COMPLETE" in script.stdout
    bash = subprocess.run(
        ["bash", "-n"], input=invoke(project, "completion", "bash").stdout, text=True, check=False
    )
    assert bash.returncode == 0  # the script parses


@pytest.mark.parametrize(
    "args",
    [
        ("run", "doc-writer", ""),
        ("run", "doc-writer", "x", "--workdir", "/no/such/dir"),
        ("ps", "--no-such-flag"),
        ("logs", "1", "--since", "soonish"),
    ],
)
def test_usage_errors_exit_2(project: Path, args: tuple[str, ...]) -> None:
    assert invoke(project, *args).exit_code == 2


def test_json_failures_carry_specific_codes(served: System, project: Path) -> None:
    unknown = invoke(project, "run", "no-such-agent", "x", "--json")
    assert unknown.exit_code == 1
    assert json.loads(unknown.stdout)["error"]["code"] == "NO_SUCH_AGENT"
    pid = served.run("doc-writer", "x", timeout=10).pid
    dead = invoke(project, "kill", str(pid), "--json")
    assert dead.exit_code == 0, dead.output
    assert json.loads(dead.stdout)["outcome"].startswith(f"noop: PID {pid} already exited")


def test_kill_of_a_pid_only_the_store_knows_says_it_exited(system: System, project: Path) -> None:
    pid = system.run("doc-writer", "x", timeout=10).pid  # an earlier, embedded run
    assert [p.state for p in system.ps(all=True) if p.pid == pid] == ["dead"]  # row written
    with System(project) as daemon_system:
        path = socket_path(daemon_system.state_dir)
        with DaemonServer(path, Service(daemon_system, socket=path)):
            result = invoke(project, "kill", str(pid))
    assert result.exit_code == 0, result.output
    assert f"noop: PID {pid} already exited (dead, exit 0 completed)" in result.stdout


def test_run_timeout_says_timeout(served: System, project: Path) -> None:
    def busy(request: LLMRequest) -> LLMResponse:
        return respond(call("list_files"))  # works forever, one quick step after another

    agent(served, "busy", busy, max_steps=0, context_slots=1_000_000)
    result = invoke(project, "run", "busy", "x", "--timeout", "0.2", "--json")
    assert result.exit_code == 1
    reason = json.loads(result.stdout)["exit_reason"]
    assert reason == "terminated by SIGTERM from timeout", reason
