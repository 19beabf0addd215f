"""``rnix shell`` end to end in a real terminal (tmux): attach to a daemon, spawn an agent,
pause it, watch it, Ctrl-C back to the prompt, watch it again while it is resumed from
another command, and see it finish.

The pane is read with ``capture-pane`` until the expected text shows up (tmux offers no
event for "this was printed"), always with a deadline.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rnix_actors.ipc.daemon import read_pid

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed (Debian: apt-get install -y tmux)"
)
RNIX = str(Path(sys.executable).with_name("rnix"))

SLOW_AGENT = """\
name: slow
description: An offline agent that takes a moment on its first step.
devices: [/dev/fs]
driver: replay
model: ../replay/slow.yaml
"""
SLOW_SCRIPT = """\
version: "1"
responses:
  - tool_calls: [{name: list_files, input: {path: "."}}]
    delay_ms: 2000
  - tool_calls: [{name: list_files, input: {path: "."}}]
    delay_ms: 50
  - content: "slow work done"
"""


class Pane:
    def __init__(self, socket: Path) -> None:
        self.socket = socket  # a private tmux server, gone with the test's tmp dir

    def tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run(
            [TMUX, "-S", str(self.socket), *args], capture_output=True, text=True, timeout=10
        )
        return done.stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", "shell")

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-t", "shell", "-l", line)
        self.tmux("send-keys", "-t", "shell", "Enter")

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30.0) -> str:
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if len(regex.findall(text)) >= count:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} (x{count}) not on the screen:\n{text}")
            time.sleep(0.05)  # polling the screen: tmux has no print event


def rnix(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RNIX, "--project-dir", str(project), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def replay_daemon(project: Path, name: str, template: str, script: str) -> Iterator[Path]:
    """The real background daemon for ``project``, with one replay agent ``name`` defined
    (its template refers to ``../replay/<name>.yaml``); stopped, or killed, at the end."""
    (project / ".rnix" / "agents").mkdir(parents=True)
    (project / ".rnix" / "replay").mkdir()
    (project / ".rnix" / "agents" / f"{name}.yaml").write_text(template)
    (project / ".rnix" / "replay" / f"{name}.yaml").write_text(script)
    started = rnix(project, "daemon", "start")
    assert started.returncode == 0, started.stderr
    try:
        yield project
    finally:
        rnix(project, "daemon", "stop")
        pid = read_pid(project / ".rnix")
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def slow_project(project: Path) -> Iterator[Path]:
    with replay_daemon(project, "slow", SLOW_AGENT, SLOW_SCRIPT) as ready:
        yield ready


@pytest.fixture
def pane(slow_project: Path, tmp_path: Path) -> Iterator[Pane]:
    pane = Pane(tmp_path / "tmux.sock")
    env = f"env NO_COLOR=1 TERM=xterm-256color RNIX_STATE_DIR={slow_project / '.rnix'}"
    shell = f"{env} {RNIX} --project-dir {slow_project} shell"
    # The wrapper reports the exit status; its no-op INT trap keeps it alive through the
    # test's Ctrl-C (the shell itself gets the default SIGINT handling back on exec).
    command = f"sh -c 'trap : INT; {shell}; echo rnix shell exited with $?'"
    pane.tmux("new-session", "-d", "-s", "shell", "-x", "150", "-y", "50", command)
    pane.tmux("set-option", "-t", "shell", "remain-on-exit", "on")
    try:
        yield pane
    finally:
        pane.tmux("kill-server")


def test_spawn_pause_watch_interrupt_resume_and_finish(slow_project: Path, pane: Pane) -> None:
    pane.wait_for(r"attached to the daemon")
    pane.wait_for(r"daemon \| running: 0 \| suspended: 0 \| alerts: 0 \| immune: ")
    pane.type("spawn slow 'take your time'")
    pane.wait_for(r"\[kernel\] spawned PID 1 \(slow\)")
    pane.type("pause 1")
    pane.wait_for(r"\[kernel\] PID 1 suspended\(2\) paused by user \(resume 1 to continue\)")
    pane.wait_for(r"running: 0 \| suspended: 1")

    pane.type("watch 1")
    pane.wait_for(r"\[watch\] PID 1 \(Ctrl-C to stop\)")
    pane.tmux("send-keys", "-t", "shell", "C-c")
    pane.wait_for(r"\[watch\] stopped watching PID 1")
    pane.wait_for(r"^rnix> ?$")  # back at an empty prompt

    pane.type("watch 1")
    pane.wait_for(r"\[watch\] PID 1 \(Ctrl-C to stop\)", count=2)
    resumed = rnix(slow_project, "resume", "1")
    assert resumed.returncode == 0, resumed.stderr
    # Not anchored: under load the prompt that comes back can be drawn on the same row.
    screen = pane.wait_for(r"\[kernel\] PID 1 exited\(0\) completed")
    after_watch = screen[screen.rindex("[watch] PID 1 (Ctrl-C to stop)") :]
    assert "[agent/1] step" in after_watch  # the resumed steps, live
    pane.wait_for(r"running: 0 \| suspended: 0")

    pane.type("ps --all")
    pane.wait_for(r"0 active, 1 total")
    pane.type("exit")
    pane.wait_for(r"^rnix shell exited with 0$")
    history = (slow_project / ".rnix" / "shell_history").read_text()
    assert "+watch 1" in history and "+spawn slow 'take your time'" in history
