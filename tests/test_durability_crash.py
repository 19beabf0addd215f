"""A real daemon killed with SIGKILL at random moments, then started again on its state dir.

Each run: the daemon starts (recovering what the previous run left), every lost or
suspended process is resumed, new replay writers are spawned, and after a random moment the
daemon is killed with SIGKILL while they write. After each kill the SQLite file passes
``PRAGMA integrity_check``, no committed row is gone, and every process is completed,
suspended with a checkpoint, or lost with a checkpoint. At the end every process completed
its task at the right replay response.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
from pathlib import Path
from typing import Any

from helpers import alive, eventually

from rnix_actors.ipc.control import find_daemon, start_daemon, stop_daemon

RUNS = 20
STEPS = 6
WRITERS = 3
TIMEOUT = 60.0


def write_project(root: Path, delay_ms: int = 15) -> Path:
    project = root / "project"
    agents = project / ".rnix" / "agents"
    agents.mkdir(parents=True)
    (project / "out").mkdir()
    responses = "".join(
        f"  - content: step {i}\n"
        f"    delay_ms: {delay_ms}\n"
        f"    tool_calls:\n"
        f"      - {{name: write_file, input: {{path: out/step-{i}.txt, content: '{i}'}}}}\n"
        for i in range(1, STEPS + 1)
    )
    script = project / "writer-script.yaml"
    script.write_text(f'version: "1"\nresponses:\n{responses}  - content: wrote all\n')
    (agents / "writer.yaml").write_text(
        "name: writer\ndevices: [/dev/fs]\ndriver: replay\n"
        f"model: {script}\nlimits: {{max_steps: 20}}\n"
    )
    return project


def rows(db: Path) -> dict[int, tuple[str, int | None, str, int]]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        found = conn.execute("SELECT pid, state, exit_code, result, steps FROM processes")
        return {int(r[0]): (str(r[1]), r[2], str(r[3]), int(r[4])) for r in found}
    finally:
        conn.close()


def checkpointed(db: Path) -> set[int]:
    conn = sqlite3.connect(db)
    try:
        return {int(r[0]) for r in conn.execute("SELECT DISTINCT pid FROM checkpoints")}
    finally:
        conn.close()


def call(state: Path, method: str, **params: Any) -> dict[str, Any]:
    client = find_daemon(state, TIMEOUT)
    assert client is not None
    with client:
        result: dict[str, Any] = client.call(method, **params)
        return result


def completed(row: tuple[str, int | None, str, int]) -> bool:
    return row[0] == "dead" and row[1] == 0


def check_after_kill(db: Path, committed: dict[int, tuple[str, int | None, str, int]]) -> None:
    now = rows(db)
    assert set(committed) <= set(now), "a committed process row is gone"
    for pid, row in committed.items():
        if completed(row):
            assert now[pid] == row, f"PID {pid} was completed before the kill"
    with_checkpoint = checkpointed(db)
    for pid, row in now.items():
        if completed(row):
            assert row[2] == "wrote all" and row[3] == STEPS + 1
        else:
            # running/suspended here: the next start marks them lost or resumable
            assert row[0] in ("running", "suspended", "created", "lost"), (pid, row)
            assert pid in with_checkpoint, f"PID {pid} was left without a checkpoint"


def resume_everything(state: Path) -> list[int]:
    processes = call(state, "ps", all=True)["processes"]
    for p in processes:
        assert p["state"] in ("dead", "suspended", "lost"), p  # never left "running"
        if p["state"] == "dead":
            assert p["exit_code"] == 0, p
    todo = [p["pid"] for p in processes if p["state"] in ("suspended", "lost")]
    for pid in todo:
        call(state, "resume", pid=pid)
    return todo


def test_kill_9_at_random_moments_loses_nothing_committed(tmp_path: Path) -> None:
    project = write_project(tmp_path)
    state = tmp_path / "state"
    db = state / "rnix.db"
    rng = random.Random(1606)
    resumed_total = 0
    for run in range(RUNS):
        daemon = start_daemon(project, state)
        resumed_total += len(resume_everything(state))
        for i in range(WRITERS):
            call(state, "spawn", agent="writer", intent=f"run {run} writer {i}")
        # A random moment within the writers' lifetime (a few steps of 15 ms each).
        threading_wait(rng.uniform(0.0, 0.25))
        committed = rows(db)  # what is committed now cannot be lost by the kill
        os.kill(daemon.pid, signal.SIGKILL)
        assert eventually(lambda pid=daemon.pid: not alive(pid), TIMEOUT)
        check_after_kill(db, committed)
    daemon = start_daemon(project, state)
    try:
        last = resume_everything(state)
        resumed_total += len(last)
        for pid in last:
            call(state, "wait", pid=pid, timeout=int(TIMEOUT))
        for process in call(state, "ps", all=True)["processes"]:
            assert process["state"] == "dead" and process["exit_code"] == 0, process
            # The replay cursor continued where the checkpoint left it: exactly the script.
            assert process["result"] == "wrote all" and process["steps"] == STEPS + 1, process
            assert process["depth"] == 0
    finally:
        stop_daemon(state)
    assert resumed_total > 0  # some kills did land while writers ran
    assert len(rows(db)) == RUNS * WRITERS


def threading_wait(seconds: float) -> None:
    """The kill moment is random on purpose: this wait picks it, it synchronises nothing."""
    import threading

    threading.Event().wait(seconds)


def test_daemon_stop_suspends_running_writers_and_the_next_start_resumes_them(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, delay_ms=400)  # 6 steps: longer than a stop takes
    state = tmp_path / "state"
    start_daemon(project, state)
    try:
        pids = [call(state, "spawn", agent="writer", intent=f"w{i}")["pid"] for i in range(2)]
        call(state, "ps")  # both spawned and running
    finally:
        stop_daemon(state)  # graceful: suspend at the next step boundary, checkpoint
    after = rows(state / "rnix.db")
    for pid in pids:
        assert after[pid][0] == "suspended", after[pid]
    start_daemon(project, state)
    try:
        listed = {p["pid"]: p for p in call(state, "ps")["processes"]}
        assert all(listed[pid]["state"] == "suspended" for pid in pids)
        for pid in pids:
            call(state, "resume", pid=pid)
            done = call(state, "wait", pid=pid, timeout=int(TIMEOUT))["process"]
            assert done["exit_code"] == 0 and done["steps"] == STEPS + 1, done
    finally:
        stop_daemon(state)
