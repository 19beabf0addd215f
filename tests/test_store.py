"""SQLite store: schema versions, PID allocation, component schemas (real SQLite files)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.store.db import PID_BLOCK, Store


def test_pids_are_dense_after_clean_close_and_skip_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "rnix.db"
    store = Store(path)
    assert [store.allocate_pid() for _ in range(3)] == [1, 2, 3]
    store.close()
    crashed = Store(path)
    assert crashed.allocate_pid() == 4
    # Simulate a crash: the block is never given back, so the next store skips it.
    crashed._conn.close()
    store = Store(path)
    assert store.allocate_pid() == 4 + PID_BLOCK
    store.close()


def test_two_stores_on_one_state_dir_never_share_a_pid(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "rnix.db"), Store(tmp_path / "rnix.db")
    pids = [a.allocate_pid(), b.allocate_pid(), a.allocate_pid(), b.allocate_pid()]
    a.close()
    b.close()
    c = Store(tmp_path / "rnix.db")
    pids.append(c.allocate_pid())
    c.close()
    assert len(set(pids)) == len(pids)


def test_process_rows_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "rnix.db")
    info = ProcessInfo(
        1, "u-1", 0, "t", "intent", ProcessState.RUNNING, 0, ("/dev/fs",), time.time()
    )
    store.save_process(info)
    store.save_process(
        ProcessInfo(
            1,
            "u-1",
            0,
            "t",
            "intent",
            ProcessState.DEAD,
            0,
            ("/dev/fs",),
            info.created_at,
            exit_code=0,
            exit_reason="completed",
            result="r",
            tokens_used=5,
            steps=2,
            ended_at=time.time(),
        )
    )
    (row,) = store.list_processes()
    assert (row.state, row.exit_code, row.result, row.allowed_devices) == (
        ProcessState.DEAD,
        0,
        "r",
        ("/dev/fs",),
    )
    store.close()


def test_component_schemas_apply_once_and_refuse_newer(tmp_path: Path) -> None:
    path = tmp_path / "rnix.db"
    store = Store(path)
    store.ensure_schema("immune", {1: "CREATE TABLE profiles (k TEXT PRIMARY KEY)"})
    store.ensure_schema(
        "immune",
        {
            1: "CREATE TABLE profiles (k TEXT PRIMARY KEY)",
            2: "ALTER TABLE profiles ADD COLUMN v REAL",
        },
    )
    store.ensure_schema(
        "immune",
        {
            1: "CREATE TABLE profiles (k TEXT PRIMARY KEY)",
            2: "ALTER TABLE profiles ADD COLUMN v REAL",
        },
    )
    store.close()
    conn = sqlite3.connect(path)
    assert [r[1] for r in conn.execute("PRAGMA table_info(profiles)")] == ["k", "v"]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    store = Store(path)
    with pytest.raises(RuntimeError, match="immune schema version 2 is newer"):
        store.ensure_schema("immune", {1: "CREATE TABLE profiles (k TEXT PRIMARY KEY)"})
    store.close()


def test_a_version_1_store_gains_the_cost_and_budget_columns(tmp_path: Path) -> None:
    import sqlite3

    from rnix_actors.store.db import _MIGRATIONS

    path = tmp_path / "rnix.db"
    conn = sqlite3.connect(path)
    conn.executescript(_MIGRATIONS[1])
    conn.execute("CREATE TABLE component_schema (component TEXT PRIMARY KEY, version INTEGER)")
    conn.execute("INSERT INTO component_schema VALUES ('kernel', 1)")
    conn.execute(
        "INSERT INTO processes(pid, uuid, ppid, template, intent, state, depth, "
        "allowed_devices, created_at) VALUES (1, 'u', 0, 't', 'i', 'dead', 0, '[]', 1.0)"
    )
    conn.commit()
    conn.close()
    store = Store(path)
    try:
        (old,) = store.list_processes()
        assert (old.pid, old.cost_usd, old.token_budget) == (1, 0.0, 0)
    finally:
        store.close()


def test_owners_in_one_process_take_turns_to_write_instead_of_polling(tmp_path: Path) -> None:
    """Connections of one process to one file queue for the write turn: even with SQLite's
    busy handler off (``busy_timeout=0``: a writer that meets another's lock fails at once),
    four owners writing at once on four threads all get through."""
    kernel = Store(tmp_path / "rnix.db")
    owners = [kernel.open_for(f"owner {i}") for i in range(4)]
    for store in owners:
        store._conn.execute("PRAGMA busy_timeout=0")
    with kernel.transaction() as conn:
        conn.execute("CREATE TABLE writes (owner INTEGER, n INTEGER)")
    start, failures = threading.Barrier(len(owners)), []

    def write(index: int, store: Store) -> None:
        start.wait()
        try:
            for n in range(200):
                with store.transaction() as conn:
                    conn.execute("INSERT INTO writes VALUES (?, ?)", (index, n))
        except sqlite3.OperationalError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(i, s)) for i, s in enumerate(owners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with kernel.transaction() as conn:
        assert conn.execute("SELECT COUNT(*) FROM writes").fetchone() == (800,)
    for store in [*owners, kernel]:
        store.close()


def test_in_memory_databases_of_two_systems_do_not_share_a_write_turn() -> None:
    first, second = Store(None), Store(None)
    with first.transaction():  # holding the first database's turn...
        done = threading.Event()

        def write_second() -> None:
            with second.transaction() as conn:
                conn.execute("CREATE TABLE t (x INTEGER)")
            done.set()

        thread = threading.Thread(target=write_second)
        thread.start()
        assert done.wait(5)  # ...does not hold up another database
        thread.join()
    first.close()
    second.close()
