"""Supervision trees that survive the daemon: ``autostart: true`` trees of
``.rnix/supervisors.yaml`` start with a real daemon process; after a kill -9 their
``resume: true`` children continue from their checkpoints (same PID, the replay script at
the right response) while the others start afresh. A bad file starts nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from helpers import alive, eventually
from test_durability_crash import STEPS, TIMEOUT, call, write_project

from rnix_actors import System
from rnix_actors.errors import ConfigError
from rnix_actors.ipc.control import DaemonError, find_daemon, start_daemon, stop_daemon

TREES = """\
supervisors:
  - name: crew
    autostart: true
    children:
      - {name: keeper, agent: writer, intent: "write six", resume: true}
      - {name: fresh, agent: writer, intent: "write six again"}
  - name: manual
    children:
      - {name: idle, agent: writer, intent: "not started with the daemon"}
"""


def children(state: Path) -> dict[str, dict[str, Any]]:
    found = call(state, "supervisor", path="/crew", op="children")["children"]
    return {c["name"]: c for c in found}


def step_checkpoints(db: Path, pid: int) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT COUNT(*) FROM checkpoints WHERE pid = ? AND kind = 'step'", (pid,)
        ).fetchone()
        return int(row[0])
    finally:
        conn.close()


def kinds(db: Path, pid: int) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        found = conn.execute("SELECT kind FROM checkpoints WHERE pid = ? ORDER BY seq", (pid,))
        return [str(r[0]) for r in found]
    finally:
        conn.close()


def test_autostart_trees_come_back_after_kill_9_and_resume_children_continue(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, delay_ms=150)  # 6 steps: the kill lands mid-task
    (project / ".rnix" / "supervisors.yaml").write_text(TREES)
    state = tmp_path / "state"
    db = state / "rnix.db"
    daemon = start_daemon(project, state)
    try:
        roots = {v["path"] for v in call(state, "tree")["supervisors"]}
        assert roots == {"/crew"}  # only the autostart tree
        first = children(state)
        keeper, fresh = int(first["keeper"]["pid"]), int(first["fresh"]["pid"])
        assert eventually(lambda: step_checkpoints(db, keeper) >= 2, TIMEOUT)
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
    assert eventually(lambda: not alive(daemon.pid), TIMEOUT)
    start_daemon(project, state)
    try:
        again = children(state)
        assert int(again["keeper"]["pid"]) == keeper  # resumed: same PID, same process
        assert int(again["fresh"]["pid"]) != fresh  # started afresh, as before
        done = call(state, "wait", pid=keeper, timeout=int(TIMEOUT))["process"]
        # The replay script went on at the right response: exactly its steps, its answer.
        assert done["exit_code"] == 0 and done["result"] == "wrote all", done
        assert done["steps"] == STEPS + 1 and done["depth"] == 0
        assert "resume" in kinds(db, keeper)
        listed = {p["pid"]: p for p in call(state, "ps", all=True)["processes"]}
        assert listed[fresh]["state"] == "lost"  # the old fresh child: lost, not resumed
        new_fresh = int(again["fresh"]["pid"])
        call(state, "wait", pid=new_fresh, timeout=int(TIMEOUT))
    finally:
        stop_daemon(state)


def test_a_graceful_stop_keeps_resume_children_suspended_and_the_tree_resumes_them(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, delay_ms=300)  # 6 steps: longer than a stop takes
    (project / ".rnix" / "supervisors.yaml").write_text(TREES)
    state = tmp_path / "state"
    db = state / "rnix.db"
    start_daemon(project, state)
    try:
        first = children(state)
        keeper, fresh = int(first["keeper"]["pid"]), int(first["fresh"]["pid"])
        assert eventually(lambda: step_checkpoints(db, keeper) >= 1, TIMEOUT)
    finally:
        stop_daemon(state)  # graceful: the keeper suspends, the other child is stopped
    conn = sqlite3.connect(db)
    try:
        states = dict(conn.execute("SELECT pid, state FROM processes").fetchall())
    finally:
        conn.close()
    assert states[keeper] == "suspended" and states[fresh] == "dead"
    start_daemon(project, state)
    try:
        assert int(children(state)["keeper"]["pid"]) == keeper
        done = call(state, "wait", pid=keeper, timeout=int(TIMEOUT))["process"]
        assert done["exit_code"] == 0 and done["steps"] == STEPS + 1, done
    finally:
        stop_daemon(state)


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        (
            "supervisors:\n  - name: crew\n    autostart: true\n    children:\n"
            "      - {name: team, resume: true, supervisor: {children: "
            "[{name: a, agent: writer}]}}\n",
            "supervisors[0].children[0].resume",
            "set resume: true on the agent children of the nested supervisor",
        ),
        (
            "supervisors:\n  - name: crew\n    autostart: yes\n    children:\n"
            "      - {name: a, agent: writer}\n",
            "autostart",
            "write true or false, without quotes",
        ),
        (
            "supervisors:\n  - name: crew\n    autostart: true\n    children:\n"
            "      - {name: a, agent: writer, resume: true}\n"
            "  - name: late\n    autostart: true\n    children:\n"
            "      - {name: b, agent: nobody}\n",
            "supervisors[1].children[0].agent",
            "define it in conf/agents or .rnix/agents",
        ),
    ],
)
def test_a_bad_supervisors_file_keeps_the_daemon_from_starting_and_starts_nothing(
    tmp_path: Path, text: str, field: str, fix: str
) -> None:
    project = write_project(tmp_path)
    path = project / ".rnix" / "supervisors.yaml"
    path.write_text(text)
    state = tmp_path / "state"
    with pytest.raises(DaemonError) as failed:
        start_daemon(project, state, timeout=TIMEOUT)
    message = str(failed.value)
    assert "supervisors.yaml" in message and field in message and fix in message
    assert find_daemon(state) is None
    conn = sqlite3.connect(state / "rnix.db")
    try:  # the first tree is valid, but nothing of the file started
        assert conn.execute("SELECT COUNT(*) FROM processes").fetchone() == (0,)
    finally:
        conn.close()


def test_autostart_and_resume_are_checked_where_they_apply(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    with System(project, state="memory") as system:
        nested = (
            "supervisors:\n  - name: crew\n    children:\n"
            "      - {name: team, supervisor: {autostart: true, children: "
            "[{name: a, agent: writer}]}}\n"
        )
        with pytest.raises(ConfigError, match=r"children\[0\]\.supervisor\.autostart"):
            system.parse_supervisors(nested, "s.yaml")
        simple = (
            "supervisors:\n  - name: pool\n    strategy: simple_one_for_one\n    children:\n"
            "      - {name: w, agent: writer, resume: true}\n"
        )
        with pytest.raises(ConfigError, match=r"children\[0\]\.resume.*started on demand"):
            system.parse_supervisors(simple, "s.yaml")
        assert system.autostart(project / "missing.yaml") == []


def test_a_resume_child_with_a_bad_checkpoint_fails_its_first_start_then_starts_afresh(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, delay_ms=300)
    (project / ".rnix" / "supervisors.yaml").write_text(TREES)
    state = tmp_path / "state"
    with System(project, state_dir=state) as system:
        assert system.autostart() == ["/crew"]
        keeper = system.supervisor("/crew").which_children()[0].pid
        assert keeper is not None
        system.stop(checkpoint=True)
    conn = sqlite3.connect(state / "rnix.db")
    try:
        with conn:
            conn.execute(  # its newest checkpoint (the first, naming the child, is intact)
                "UPDATE checkpoints SET data = 'not json' WHERE pid = ? AND seq = "
                "(SELECT MAX(seq) FROM checkpoints WHERE pid = ?)",
                (keeper, keeper),
            )
    finally:
        conn.close()
    with System(project, state_dir=state) as system:
        exits: list[dict[str, Any]] = []
        system.subscribe(lambda e: exits.append(dict(e.args)), syscalls=["SupervisorChildExit"])
        system.autostart()
        handle = system.supervisor("/crew")
        assert eventually(lambda: (handle.which_children()[0].pid or keeper) != keeper, TIMEOUT)
        renewed = handle.which_children()[0].pid
        assert renewed is not None
        assert system.wait(renewed, TIMEOUT).exit_code == 0
        assert any("corrupted" in str(e.get("reason")) for e in exits if e["child"] == "keeper")
        assert system.info(keeper).state.value == "suspended"  # left as it was, never half-run
