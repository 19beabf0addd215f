"""Watching from the CLI: ``logs -f`` (history, then live), ``--since``, ``-t``, events for
people (the model's text, no dicts) and output that wraps at word boundaries."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import agent, call

from rnix_actors import Event, LLMRequest, LLMResponse, ProcessInfo, ProcessState, System
from rnix_actors.cli.main import cli
from rnix_actors.cli.render import event_text, process_table
from rnix_actors.cli.text import ellipsize, wrap
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


def test_logs_follow_prints_history_then_live_events_until_exit(
    served: System, project: Path
) -> None:
    in_step2 = threading.Event()
    release = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return LLMResponse(
                content="Looking around first.\nSecond line.", tool_calls=(call("list_files"),)
            )
        in_step2.set()
        assert release.wait(10)
        return LLMResponse(content="All done here.")

    agent(served, "slowpoke", brain)
    pid = served.spawn("slowpoke", "look")
    assert in_step2.wait(10)
    served.sync_events()
    result: list[Result] = []
    follower = threading.Thread(
        target=lambda: result.append(invoke(project, "logs", "-f", str(pid)))
    )
    follower.start()
    # The follower subscribes before it reads the history file: releasing now cannot lose the
    # live part, whenever its subscription happens to start.
    release.set()
    follower.join(20)
    assert not follower.is_alive()
    (done,) = result
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert f"[agent/{pid}] step 1: says: Looking around first. …" in lines
    assert sum("step 1: says:" in line for line in lines) == 1  # history and live not doubled
    assert f"[kernel] PID {pid} exited(0) completed" in lines


def test_logs_follow_without_a_daemon_prints_the_history_and_says_so(
    system: System, project: Path
) -> None:
    pid = system.spawn("doc-writer", "document")
    system.wait(pid, timeout=10)
    system.sync_events()
    result = invoke(project, "logs", "-f", str(pid))
    assert result.exit_code == 0, result.output
    assert "nothing more to follow" in result.stdout
    assert "exited(0) completed" in result.stdout


def test_logs_since_and_timestamps(system: System, project: Path) -> None:
    pid = system.spawn("doc-writer", "document")
    system.wait(pid, timeout=10)
    system.sync_events()
    stamped = invoke(project, "logs", "-t", str(pid)).stdout.splitlines()
    assert stamped and all(re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line) for line in stamped[:1])
    future = time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() + 3600))
    assert invoke(project, "logs", "--since", future, str(pid)).stdout == ""
    assert invoke(project, "logs", "--since", "1h", str(pid)).stdout.strip()
    bad = invoke(project, "logs", "--since", "yesterday-ish", str(pid))
    assert bad.exit_code == 2 and "--since" in bad.output


def _event(syscall: str, **fields: object) -> Event:
    base: dict[str, object] = {
        "ts": 0.0,
        "pid": 4,
        "template": "t",
        "step": 2,
        "syscall": syscall,
        "device": "",
        "args": {},
    }
    base.update(fields)
    return Event(**base)  # type: ignore[arg-type]


def test_events_render_for_people_not_as_dicts() -> None:
    signal = _event("Signal", args={"signal": "SIGTERM", "origin": "user"})
    assert event_text(signal) == "[agent/4] SIGTERM from user"
    said = _event("Read", device="/dev/llm/replay", result="First line\nand more")
    assert event_text(said) == "[agent/4] step 2: says: First line …"
    assert event_text(said, verbose=True) == "[agent/4] step 2: says: First line\nand more"
    step = _event("ReasonStep", args={"tool_calls": 1}, tokens=653)
    assert event_text(step) == "[agent/4] step 2: 653 tokens, 1 tool call"
    for text in (event_text(signal), event_text(_event("Suspend", args={"reason": "x"}))):
        assert "{" not in text


LONG_REASON = (
    "circuit_breaker: runaway spawn chain (child PID 28 tripped on INTERNAL|spawn) after "
    "several attempts to reach a device that was never granted"
)


def _info(pid: int, reason: str, intent: str) -> ProcessInfo:
    return ProcessInfo(
        pid=pid,
        uuid=f"u{pid}",
        ppid=0,
        template="code-analyst",
        intent=intent,
        state=ProcessState.DEAD,
        depth=0,
        allowed_devices=("/dev/fs",),
        created_at=100.0,
        ended_at=112.5,
        exit_code=1,
        exit_reason=reason,
        tokens_used=12_345,
        steps=7,
    )


@pytest.mark.parametrize("width", [60, 80, 140])
def test_tables_fit_the_width_and_never_split_a_word(width: int) -> None:
    procs = [
        _info(1, LONG_REASON, "review the whole project and write a long report"),
        _info(2, "x", "y"),
    ]
    text = process_table(procs, width=width)
    assert all(len(line) <= width for line in text.splitlines())
    words = text.split()
    assert all(word in words for word in LONG_REASON.split())  # each word whole
    wide = process_table(procs, wide=True, width=width)
    assert "review the whole project and write a long report" in " ".join(wide.split())


def test_wrap_and_ellipsize_cut_only_between_words() -> None:
    text = "planner: similarity 0.72 >= 0.50, expected success 0.63 > security-scanner's 0.24"
    wrapped = wrap(text, 30, indent="  ")
    assert all(len(line) <= 30 for line in wrapped.splitlines())
    assert wrapped.split() == text.split()
    short = ellipsize("not in allowed list ['/dev/fs']", 18)
    assert short.endswith("…") and short[:-1].split() == ["not", "in", "allowed"]


@pytest.mark.parametrize("width", [80, 140])
def test_the_demo_fits_the_terminal(tmp_path: Path, width: int) -> None:
    env = {**os.environ, "COLUMNS": str(width)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "rnix"), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    flat = " ".join(done.stdout.split())
    assert "similarity 0.72 >= 0.50, expected success 0.63 > security-scanner's 0.24" in flat
    assert "not in allowed list ['/dev/fs']" in flat


def test_watch_json_prints_protocol_frames_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from rnix_actors.cli.proc_cmd import Printer

    event = _event("ReasonStep", args={"tool_calls": 0}, tokens=3).to_dict()
    printer = Printer(as_json=True)
    printer.frame({"frame": "event", "data": event}, 4)
    printer.frame({"frame": "end", "data": {"reason": "exited"}}, 4)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"frame": "event", "data": event},
        {"frame": "end", "data": {"reason": "exited"}},
    ]
