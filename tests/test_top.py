"""``rnix top``: the rows it builds (tree order, subtree totals, filter, budget warning), and
the full-screen view in a real terminal (tmux) against a real daemon: the tree appears, a key
pauses a process, another kills it, ``q`` quits cleanly; at 60 and at 140 columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_repl_tmux import RNIX, TMUX, Pane, replay_daemon, rnix

from rnix_actors.cli.top_model import build_rows, counts
from rnix_actors.ipc.control import find_daemon
from rnix_actors.kernel.process import ProcessInfo, ProcessState

SLEEPER = """\
name: sleeper
description: An offline agent that spends its budget, then waits a long time.
devices: [/dev/fs]
driver: replay
model: ../replay/sleeper.yaml
limits: {max_tokens: 1000}
"""
SLEEPER_SCRIPT = """\
version: "1"
responses:
  - tool_calls: [{name: list_files, input: {path: "."}}]
    usage: {input_tokens: 950, output_tokens: 0}
  - content: "woke up"
    delay_ms: 600000
"""


def _proc(pid: int, ppid: int, tokens: int, state: str = "running", **kw: object) -> ProcessInfo:
    return ProcessInfo(
        pid=pid,
        uuid=f"u{pid}",
        ppid=ppid,
        template=str(kw.pop("template", "worker")),
        intent=str(kw.pop("intent", "work")),
        state=ProcessState(state),
        depth=0 if ppid == 0 else 1,
        allowed_devices=(),
        created_at=0.0,
        tokens_used=tokens,
        **kw,  # type: ignore[arg-type]
    )


def test_rows_follow_the_tree_and_roll_subtrees_up() -> None:
    procs = [
        _proc(1, 0, 100, template="lead"),
        _proc(2, 1, 10),
        _proc(3, 2, 1, state="suspended"),
        _proc(4, 1, 5, template="scout", token_budget=5),
        _proc(5, 0, 7, template="solo"),
    ]
    rows = build_rows(procs, alerts={3: "⚠ unusual"}, supervised={5: "sup /tree/solo"})
    assert [(r.pid, r.depth) for r in rows] == [(1, 0), (2, 1), (3, 2), (4, 1), (5, 0)]
    lead = rows[0]
    assert (lead.subtree_processes, lead.subtree_tokens) == (4, 116)
    assert rows[2].note == "⚠ unusual" and rows[4].note == "sup /tree/solo"
    assert rows[3].budget_warning and not rows[0].budget_warning
    assert counts(procs).suspended == 1
    filtered = build_rows(procs, text_filter="scout")
    assert [r.pid for r in filtered] == [1, 4]  # the match, under its ancestor


@pytest.fixture
def daemon_project(project: Path) -> Iterator[Path]:
    if TMUX is None:
        pytest.skip("tmux is not installed (Debian: apt-get install -y tmux)")
    with replay_daemon(project, "sleeper", SLEEPER, SLEEPER_SCRIPT) as ready:
        yield ready


@pytest.mark.parametrize("columns", [60, 140])
def test_top_in_a_real_terminal(daemon_project: Path, tmp_path: Path, columns: int) -> None:
    client = find_daemon(daemon_project / ".rnix")
    assert client is not None
    with client:
        pid = int(client.call("spawn", agent="sleeper", intent="nap")["pid"])
    pane = Pane(tmp_path / "tmux.sock")
    command = (
        f"sh -c 'env NO_COLOR=1 TERM=xterm-256color {RNIX} --project-dir {daemon_project} "
        f"top --interval 0.2; echo rnix top exited with $?'"
    )
    pane.tmux("new-session", "-d", "-s", "shell", "-x", str(columns), "-y", "24", command)
    pane.tmux("set-option", "-t", "shell", "remain-on-exit", "on")
    try:
        pane.wait_for(rf"^{pid}\s+running\s+sleeper")
        if columns >= 100:
            pane.wait_for(r"950/1,000")  # tokens so far against the budget
        pane.tmux("send-keys", "-t", "shell", "p")
        pane.wait_for(rf"PID {pid}: SIGPAUSE")
        pane.tmux("send-keys", "-t", "shell", "K")
        pane.wait_for(r"No live processes\.")
        pane.tmux("send-keys", "-t", "shell", "q")
        pane.wait_for(r"^rnix top exited with 0$")
    finally:
        pane.tmux("kill-server")
    assert rnix(daemon_project, "ps", "--all").stdout.count("killed by SIGKILL") == 1


def test_the_inspect_pane_follows_the_process_and_scrolls(
    daemon_project: Path, tmp_path: Path
) -> None:
    client = find_daemon(daemon_project / ".rnix")
    assert client is not None
    with client:
        pid = int(client.call("spawn", agent="sleeper", intent="nap")["pid"])
    pane = Pane(tmp_path / "tmux.sock")
    command = (
        f"sh -c 'env NO_COLOR=1 TERM=xterm-256color {RNIX} --project-dir {daemon_project} "
        f"top --interval 0.2; echo rnix top exited with $?'"
    )
    # 12 rows: the inspect text (about 25 lines) does not fit, so it must scroll.
    pane.tmux("new-session", "-d", "-s", "shell", "-x", "100", "-y", "12", command)
    pane.tmux("set-option", "-t", "shell", "remain-on-exit", "on")
    try:
        pane.wait_for(rf"^{pid}\s+running\s+sleeper")
        pane.tmux("send-keys", "-t", "shell", "Enter")
        top = pane.wait_for(r"^lines 1–8 of \d+ ")
        assert f"PID {pid}  sleeper  running" in top and "context (" not in top
        pane.tmux("send-keys", "-t", "shell", "End")
        bottom = pane.wait_for(r"context \(\d+ last messages, live\)")
        assert f"PID {pid}  sleeper" not in bottom
        assert "woke up" not in bottom  # the process is still in its second step
        pane.tmux("send-keys", "-t", "shell", "Home")
        pane.wait_for(rf"^PID {pid}  sleeper  running")
        pane.tmux("send-keys", "-t", "shell", "j")
        pane.wait_for(r"^lines 2–9 of \d+ ")
        pane.tmux("send-keys", "-t", "shell", "p")  # in the pane, not a signal
        pane.tmux("send-keys", "-t", "shell", "Escape")
        pane.wait_for(rf"^{pid}\s+running\s+sleeper")  # back to the tree, still running
        pane.tmux("send-keys", "-t", "shell", "q")
        pane.wait_for(r"^rnix top exited with 0$")
    finally:
        pane.tmux("kill-server")
