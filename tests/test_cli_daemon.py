"""CLI commands that talk to a daemon: click's runner against a system served on a real
socket in this process, and once the real background daemon through the installed script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, System
from rnix_actors.cli.main import cli
from rnix_actors.ipc.daemon import read_pid
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.server import DaemonServer
from rnix_actors.ipc.service import Service


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args])


@pytest.fixture
def served(system: System) -> Iterator[System]:
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, socket=path)):
        yield system


@pytest.fixture
def gate(served: System) -> Iterator[threading.Event]:
    """A ``gated`` agent whose first step waits for the returned event."""
    opened = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            assert opened.wait(10), "test gate never opened"
            return respond(call("list_files"))
        return "gated done"

    agent(served, "gated", brain)
    yield opened
    opened.set()


def test_ps_and_tree_json_come_from_the_daemon(served: System, project: Path) -> None:
    served.run("doc-writer", "x", timeout=10)
    data = json.loads(invoke(project, "ps", "--all", "--json").stdout)
    assert data["daemon"] is True and [p["pid"] for p in data["processes"]] == [1]
    result = invoke(project, "ps")
    assert (result.exit_code, result.stdout) == (0, "No active processes.\n")
    tree = json.loads(invoke(project, "tree", "--json").stdout)
    assert tree["daemon"] is True and tree["supervisors"] == []
    assert "PID 1 doc-writer dead exit 0 completed" in invoke(project, "tree").stdout


def test_run_goes_through_the_daemon(served: System, project: Path) -> None:
    result = invoke(project, "run", "doc-writer", "document", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["exit_reason"] == "completed"
    assert served.info(1).template == "doc-writer"  # it ran in the served system


def test_pause_resume_kill_with_json(served: System, project: Path, gate: threading.Event) -> None:
    pid = served.spawn("gated", "x")
    paused = invoke(project, "pause", str(pid), "--json")
    assert paused.exit_code == 0, paused.output
    assert json.loads(paused.stdout) == {
        "ok": True,
        "pid": pid,
        "signal": "SIGPAUSE",
        "outcome": "pausing 1 process(es)",
    }
    gate.set()
    assert served.wait(pid, 10).state == "suspended"
    listed = invoke(project, "ps").stdout
    assert "suspended" in listed and "1 active, 1 total" in listed
    resumed = invoke(project, "resume", str(pid))
    assert resumed.stdout.startswith(f"[kernel] PID {pid}: signal sent (SIGRESUME)")
    assert served.wait(pid, 10).exit_reason == "completed"
    again = invoke(project, "kill", str(pid), "--signal", "KILL")
    assert again.exit_code == 0 and f"noop: PID {pid} already exited" in again.stdout
    missing = invoke(project, "kill", "99", "--json")
    assert missing.exit_code == 1
    assert json.loads(missing.stdout)["error"]["code"] == "NO_SUCH_PROCESS"
    assert invoke(project, "kill", "1", "--signal", "SIGFOO").exit_code == 2


def test_watch_pid_streams_until_the_process_ends(
    served: System, project: Path, gate: threading.Event
) -> None:
    pid = served.spawn("gated", "x")
    gate.set()
    result = invoke(project, "watch", str(pid), "--json")
    assert result.exit_code == 0, result.output
    frames = [json.loads(line) for line in result.stdout.splitlines()]
    assert frames[-1]["frame"] == "end" and frames[-1]["data"]["reason"] == "exited"
    assert all(f["data"]["pid"] == pid for f in frames[:-1])
    text = invoke(project, "watch", str(pid))  # already ended: just the end line
    assert text.stdout == f"[kernel] PID {pid} exited(0) completed\n"
    unknown = invoke(project, "watch", "42")
    assert unknown.exit_code == 1 and "no such process: PID 42" in unknown.stderr


def test_daemon_status_of_a_served_system(served: System, project: Path) -> None:
    data = json.loads(invoke(project, "daemon", "status", "--json").stdout)
    assert data["running"] and data["pid"] == os.getpid()
    assert data["socket"] == str(socket_path(served.state_dir))
    assert "status:  running" in invoke(project, "daemon", "status").stdout


def test_commands_that_need_a_daemon_say_so(project: Path) -> None:
    for args in (["kill", "3"], ["pause", "3"], ["resume", "3"], ["watch"]):
        result = invoke(project, *args)
        assert result.exit_code == 1, args
        assert "no rnix daemon is running" in result.stderr and "rnix daemon start" in result.stderr
    status = invoke(project, "daemon", "status")
    assert status.stdout.startswith("status: stopped\nsocket: ")
    assert json.loads(invoke(project, "daemon", "status", "--json").stdout)["running"] is False
    assert invoke(project, "daemon", "stop").stdout == "daemon is not running\n"


def test_logs_read_the_event_log_without_a_daemon(project: Path) -> None:
    assert invoke(project, "run", "doc-writer", "x", "--json").exit_code == 0
    result = invoke(project, "logs", "1")
    assert result.exit_code == 0
    assert "[agent/1] step 3: Write /dev/fs DOCS-SUMMARY.md" in result.stdout
    assert result.stdout.splitlines()[-1] == "[kernel] PID 1 exited(0) completed"
    data = json.loads(invoke(project, "logs", "1", "--json", "--tail", "2").stdout)
    assert [e["syscall"] for e in data["events"]] == ["Complete", "Exit"]
    missing = invoke(project, "logs", "7")
    assert missing.exit_code == 1 and "no event log for PID 7" in missing.stderr


def test_every_read_command_takes_json(project: Path) -> None:
    for args in (["ps"], ["ps", "--all"], ["tree"], ["version"], ["daemon", "status"]):
        result = invoke(project, *args, "--json")
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)


# -- the real daemon process -------------------------------------------------------------------
def rnix(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("rnix")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("RNIX_STATE_DIR", None)
    return subprocess.run(
        [str(script), "--project-dir", str(project), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


@pytest.fixture
def daemon_project(project: Path) -> Iterator[Path]:
    yield project
    state = project / ".rnix"
    if read_pid(state) is not None:
        rnix(project, "daemon", "stop")
    pid = read_pid(state)
    if pid is not None:  # never leave a daemon behind, even if stop itself failed
        os.kill(pid, signal.SIGKILL)


def test_daemon_start_run_shell_stop(daemon_project: Path) -> None:
    project = daemon_project
    started = rnix(project, "daemon", "start", "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["ok"] and not info["already_running"]
    assert (project / ".rnix" / "daemon.pid").read_text().strip() == str(info["pid"])
    again = json.loads(rnix(project, "daemon", "start", "--json").stdout)
    assert again["already_running"] and again["pid"] == info["pid"]

    ran = rnix(project, "run", "code-analyst", "review", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["pid"] == 1
    shell = rnix(project, "shell", "-c", "spawn doc-writer 'document' | spawn doc-writer 'more'")
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert "[kernel] pipeline stage 2/2: spawned PID 3 (doc-writer)" in shell.stdout
    listed = json.loads(rnix(project, "ps", "--all", "--json").stdout)
    assert listed["daemon"] and [p["pid"] for p in listed["processes"]] == [1, 2, 3]
    assert listed["processes"][2]["intent"].startswith("[PIPE_INPUT]\n")
    status = json.loads(rnix(project, "daemon", "status", "--json").stdout)
    assert status["running"] and status["pid"] == info["pid"]

    stopped = rnix(project, "daemon", "stop")
    assert stopped.stdout == f"daemon stopped (pid {info['pid']})\n"
    assert read_pid(project / ".rnix") is None
    assert not (project / ".rnix" / "rnix.sock").exists()
    assert not (project / ".rnix" / "daemon.pid").exists()
    after = json.loads(rnix(project, "ps", "--all", "--json").stdout)
    assert after["daemon"] is False and len(after["processes"]) == 3  # the store survived


@pytest.fixture
def served_immune(system: System) -> Iterator[System]:
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, immune=system.immune, socket=path)):
        yield system


def test_immune_commands_use_the_live_daemon(served_immune: System, project: Path) -> None:
    status = invoke(project, "immune", "status")
    assert status.exit_code == 0
    assert status.stdout.splitlines()[0] == "Mode: warn-only"
    data = json.loads(invoke(project, "immune", "status", "--json").stdout)
    assert data["ok"] is True and data["mode"] == "warn-only"
    release = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        release.wait(0.05)
        return "done" if release.is_set() else respond(call("list_files"))

    agent(served_immune, "slow", brain, max_steps=10_000)
    pid = served_immune.spawn("slow", "x")
    served_immune.pause(pid)
    assert served_immune.wait(pid, 10).state.value == "suspended"
    release.set()
    result = invoke(project, "immune", "resume", str(pid))
    assert result.exit_code == 0, result.output
    assert f"PID {pid}: alerts cleared" in result.stdout
    assert served_immune.wait(pid, 10).exit_code == 0
    missing = invoke(project, "immune", "forget", "no-such-threat")
    assert missing.exit_code == 1 and "no threat signature named" in missing.output
