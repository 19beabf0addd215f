"""The checkpoint journal: a record is durable against kill -9 once `append` returns, a torn
or stale record is never replayed, and the writer folds records into the table. Real files,
real mmap, a real subprocess killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import alive, eventually

from rnix_actors.store.checkpoints import CheckpointStore
from rnix_actors.store.db import Store
from rnix_actors.store.journal import Journal, Row, replay, scan

TIMEOUT = 30.0


def row(pid: int, seq: int, text: str = "x") -> Row:
    data = json.dumps({"state": {}, "messages": [], "t": text}, separators=(",", ":"))
    return (pid, seq, seq, "step", 1.0 + seq, 0, 1, data)


class Held:
    """A commit that never returns until released: nothing folds meanwhile."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.committed: list[Row] = []

    def __call__(self, rows: Sequence[Row]) -> None:
        self.release.wait(TIMEOUT)
        self.committed.extend(rows)


def test_folded_records_reach_the_table_and_close_removes_the_files(tmp_path: Path) -> None:
    store = Store(tmp_path / "rnix.db")
    checkpoints = CheckpointStore(store, journal_dir=tmp_path / "journal")
    try:
        for seq in range(50):
            checkpoints.append(7, seq, seq, "step", 0, seq + 1, '{"state":{},"messages":[]}')
        assert list((tmp_path / "journal").glob("*.jnl"))  # opened on the first append
        assert [r.seq for r in checkpoints.rows(7)] == list(range(50))  # a read folds first
        checkpoints.close()
        assert list((tmp_path / "journal").glob("*.jnl")) == []
        # After close, appends commit directly.
        checkpoints.append(7, 50, 50, "step", 0, 51, '{"state":{},"messages":[]}')
        assert len(checkpoints.rows(7)) == 51
    finally:
        store.close()


def test_a_torn_last_record_and_records_of_an_old_epoch_are_not_replayed(
    tmp_path: Path,
) -> None:
    held = Held()
    journal = Journal(tmp_path / "journal", held, segment_bytes=1 << 16, writer=False)
    try:
        for seq in range(5):
            assert journal.append(row(1, seq))
        (segment, _) = sorted((tmp_path / "journal").glob("*.jnl"))
        assert [r[1] for r in scan(segment)] == [0, 1, 2, 3, 4]
        data = bytearray(segment.read_bytes())
        data[data.rindex(b'"t":"x"') + 5] ^= 0xFF  # a kill in the middle of the last copy
        torn = tmp_path / "torn.jnl"
        torn.write_bytes(bytes(data))
        assert [r[1] for r in scan(torn)] == [0, 1, 2, 3]
    finally:
        held.release.set()
        journal.close()
    # A segment folded and started afresh: its old records beyond the new ones are void.
    journal = Journal(tmp_path / "again", lambda rows: None, segment_bytes=1 << 16, writer=False)
    try:
        for seq in range(5):
            journal.append(row(2, seq, "long" * 10))
        journal.fold()  # segment 0 committed and reset under a new epoch
        journal.fold()
        first = sorted((tmp_path / "again").glob("*.jnl"))[0]
        journal.append(row(2, 5))  # now in segment 1
        journal.fold()  # segment 1 reset, 0 active again
        journal.append(row(2, 6))
        assert [r[1] for r in scan(first)] == [6]
    finally:
        journal.close()


CHILD = """
import sys, threading
from pathlib import Path
from rnix_actors.store.journal import Journal
never = threading.Event()
journal = Journal(Path(sys.argv[1]), lambda rows: never.wait())  # nothing ever folds
for seq in range(200):
    assert journal.append((3, seq, seq, "step", 1.0, 0, seq + 1, '{"state":{},"messages":[]}'))
print("appended", flush=True)
never.wait()
"""


def test_records_appended_before_a_kill_9_are_replayed_by_the_next_start(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "journal"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "appended"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(TIMEOUT)
    assert eventually(lambda: not alive(child.pid), TIMEOUT)
    store = Store(tmp_path / "state" / "rnix.db")
    try:
        checkpoints = CheckpointStore(store, journal_dir=directory)
        assert checkpoints.replay_journals() == 200
        assert [r.seq for r in checkpoints.rows(3)] == list(range(200))
        assert list(directory.glob("*.jnl")) == []  # replayed once, then gone
        assert replay(directory, lambda rows: None) == 0
    finally:
        store.close()
    conn = sqlite3.connect(tmp_path / "state" / "rnix.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


def test_a_record_too_big_for_a_segment_is_committed_directly(tmp_path: Path) -> None:
    store = Store(tmp_path / "rnix.db")
    checkpoints = CheckpointStore(store, journal_dir=tmp_path / "journal")
    try:
        checkpoints.append(1, 0, 0, "start", 0, 1, '{"state":{},"messages":[]}')
        big = '{"state":{},"messages":[],"pad":"' + "p" * (5 << 20) + '"}'
        checkpoints.append(1, 1, 1, "step", 0, 1, big)
        rows = checkpoints.rows(1)
        assert [r.seq for r in rows] == [0, 1] and rows[1].bytes == len(big)
    finally:
        checkpoints.close()
        store.close()


@pytest.mark.parametrize("broken", ["disk full"])
def test_a_failed_fold_keeps_the_records_for_the_next_start(tmp_path: Path, broken: str) -> None:
    def fail(rows: Sequence[Row]) -> None:
        raise sqlite3.OperationalError(broken)

    journal = Journal(tmp_path / "journal", fail, segment_bytes=1 << 16)
    for seq in range(3):
        assert journal.append(row(4, seq))
    journal.close()
    assert broken in journal.broken and not journal.append(row(4, 3))
    replayed: list[Row] = []
    assert replay(tmp_path / "journal", replayed.extend) == 3
    assert [r[1] for r in replayed] == [0, 1, 2]
