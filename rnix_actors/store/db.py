"""SQLite persistence: schema versioning, PID allocation, process history.

WAL mode, one transaction per change, so a kill at any moment leaves a consistent file. Each
owner of a piece of state holds its own connection: the kernel the first `Store` (PIDs and
the schema), every other service one from `Store.open_for` (the process log, the checkpoint
writer, the immune daemon, the topology keeper, the planner, compose), and readers (CLI
``ps --all``) open their own. One transaction writes at a time (WAL: readers never wait);
the owners in one process queue for that turn on their database's `_WriteGate` rather than in
SQLite's sleeping busy handler. A connection that breaks fails only its owner, which a restart
reopens.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rnix_actors.messages.lifecycle import ProcessInfo, ProcessState
from rnix_actors.privatefs import private_dir, private_touch, tighten_path

PID_BLOCK = 64

T = TypeVar("T")

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TABLE processes (
        pid INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        ppid INTEGER NOT NULL,
        template TEXT NOT NULL,
        intent TEXT NOT NULL,
        state TEXT NOT NULL,
        depth INTEGER NOT NULL,
        allowed_devices TEXT NOT NULL,
        created_at REAL NOT NULL,
        ended_at REAL,
        exit_code INTEGER,
        exit_reason TEXT NOT NULL DEFAULT '',
        result TEXT NOT NULL DEFAULT '',
        tokens_used INTEGER NOT NULL DEFAULT 0,
        steps INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX processes_template ON processes(template);
    """,
    2: """
    ALTER TABLE processes ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
    ALTER TABLE processes ADD COLUMN token_budget INTEGER NOT NULL DEFAULT 0
    """,
    3: """
    ALTER TABLE processes ADD COLUMN exit_kind TEXT NOT NULL DEFAULT '';
    ALTER TABLE processes ADD COLUMN exit_origin TEXT NOT NULL DEFAULT ''
    """,
}


class _WriteGate:
    """The turn to write to one database file, for the connections of this process.

    SQLite lets one transaction write at a time and makes the others poll for their turn: its
    busy handler sleeps 1, 2, 5, 10… ms between tries. Between owners in one process that
    polling cost more than the writes themselves (in bench/kernel.py's serial spawn loop the
    writers waited 2.5 s in `BEGIN IMMEDIATE` per 1,000 spawns, up to 180 ms at once; 0.25 s
    with the gate), so a connection takes its database's gate first and queues on a lock
    that wakes the next writer at once. Reads do not take it (WAL: readers never wait);
    another process (the CLI's ``ps --all``) still meets SQLite's own busy handler.
    """

    def __init__(self) -> None:
        # Re-entrant, like the connection's lock it is taken under: a nested transaction on
        # one connection gets SQLite's own error, not a deadlock.
        self.lock = threading.RLock()


_gates: weakref.WeakValueDictionary[str, _WriteGate] = weakref.WeakValueDictionary()
_gates_lock = threading.Lock()  # guards ``_gates``: stores open on any thread


def _gate_for(target: str) -> _WriteGate:
    """The gate of a database file (by real path), or a new one for an in-memory database."""
    if target == ":memory:":
        return _WriteGate()  # one connection, shared by its owners: its own gate
    key = os.path.realpath(target)
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = _WriteGate()
        return gate


class _Connection:
    """One SQLite connection and the lock its users take.

    The lock is there because an owner's connection is not always used from one thread: the
    kernel's answers the `System`'s readers (``ps``, ``info``) from their threads, and the
    checkpoint writer's is used by agents' threads and the journal's folder; a
    `sqlite3.Connection` must not run two statements at once. ``gate`` is its database's
    `_WriteGate`, taken after ``lock`` by every transaction.
    """

    def __init__(self, target: str) -> None:
        self.lock = threading.RLock()  # re-entrant: a transaction's block may read through it
        self.gate = _gate_for(target)
        self.conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")  # another owner's write: wait, not fail


class Store:
    """A connection to ``<state_dir>/rnix.db`` with the project's schema applied.

    Safe to use from several threads (see `_Connection`); meant for one owner, and
    `open_for` gives every other owner a connection of its own. Later issues add their
    tables as new entries of the migrations map. ``path=None`` is a database in memory
    (``System(state="memory")``): no file, gone when closed.
    """

    def __init__(self, path: Path | None, owner: str = "kernel") -> None:
        if path is not None:
            private_dir(path.parent)
            private_touch(path)  # 0600 before SQLite opens it; its -wal and -shm copy that mode
        self.path = path
        self.owner = owner
        self._shared = False  # True: another Store's connection (memory databases only)
        self._db = _Connection(":memory:" if path is None else str(path))
        if path is not None:
            for suffix in ("-wal", "-shm"):
                tighten_path(path.with_name(path.name + suffix))
        self.ensure_schema("kernel", _MIGRATIONS)
        # The PID block in hand: taking the next PID must not wait for another thread's
        # transaction (the process log may be committing rows while the kernel spawns).
        self._pid_lock = threading.Lock()  # taken before ``_lock``, never after
        self._pid_next = 0
        self._pid_limit = 0

    def __repr__(self) -> str:
        return f"<Store {self.path or ':memory:'} of the {self.owner}>"

    def open_for(self, owner: str) -> Store:
        """A connection of ``owner``'s own to the same database, schema in place; the owner
        closes it. An in-memory database lives in one connection, so there the owners share
        this one (and its lock): SQLite's shared-cache mode would fail a second writer at
        once instead of making it wait."""
        other = Store.__new__(Store)
        other.path, other.owner = self.path, owner
        other._shared = self.path is None
        other._db = self._db if other._shared else _Connection(str(self.path))
        other._pid_lock = threading.Lock()
        other._pid_next = other._pid_limit = 0
        return other

    @property
    def _lock(self) -> threading.RLock:
        return self._db.lock

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._db.conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one IMMEDIATE transaction (committed, or rolled back on error)."""
        with self._lock, self._db.gate.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def ensure_schema(self, component: str, migrations: dict[int, str]) -> None:
        """Apply a component's own migrations (``version → SQL statements``) once each.

        The kernel's own tables are the component ``kernel``; later subsystems (immune,
        topology, migration) keep theirs here the same way, each with its own version row.
        Raises `RuntimeError` when the file's version is newer than this code.
        """
        latest = max(migrations)
        with self.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS component_schema "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = conn.execute(
                "SELECT version FROM component_schema WHERE component = ?", (component,)
            ).fetchone()
            current = 0 if row is None else int(row[0])
            if current > latest:
                where = self.path or ":memory:"
                raise RuntimeError(
                    f"{where}: {component} schema version {current} is newer than this "
                    f"rnix-actors ({latest}); upgrade rnix-actors or use another state dir"
                )
            for version in range(current + 1, latest + 1):
                for statement in migrations[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(
                "INSERT INTO component_schema(component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, latest),
            )

    def allocate_pid(self) -> int:
        """Return a PID never handed out before in this state dir.

        PIDs are reserved in blocks (one transaction per block); a crash skips the rest of a
        block, which keeps the never-reused guarantee.
        """
        with self._pid_lock:
            if self._pid_next >= self._pid_limit:
                with self.transaction() as conn:
                    row = conn.execute("SELECT value FROM counters WHERE name='pid'").fetchone()
                    start = 1 if row is None else int(row[0])
                    conn.execute(
                        "INSERT INTO counters(name, value) VALUES('pid', ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                        (start + PID_BLOCK,),
                    )
                self._pid_next, self._pid_limit = start, start + PID_BLOCK
            pid = self._pid_next
            self._pid_next += 1
            return pid

    def save_process(self, info: ProcessInfo) -> None:
        """Insert or update one process row (one transaction)."""
        self.save_processes([info])

    def save_processes(
        self,
        rows: Iterable[ProcessInfo],
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Insert or update process rows, in order, in one transaction (with what ``also``
        writes in it, such as the first checkpoints of the processes)."""
        with self.transaction() as conn:
            if also is not None:
                also(conn)
            conn.executemany(
                "INSERT INTO processes(pid, uuid, ppid, template, intent, state, depth, "
                "allowed_devices, created_at, ended_at, exit_code, exit_reason, result, "
                "tokens_used, steps, cost_usd, token_budget, exit_kind, exit_origin) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(pid) DO UPDATE SET state=excluded.state, depth=excluded.depth, "
                "ppid=excluded.ppid, allowed_devices=excluded.allowed_devices, "
                "ended_at=excluded.ended_at, exit_code=excluded.exit_code, "
                "exit_reason=excluded.exit_reason, result=excluded.result, "
                "exit_kind=excluded.exit_kind, exit_origin=excluded.exit_origin, "
                "tokens_used=excluded.tokens_used, steps=excluded.steps, "
                "cost_usd=excluded.cost_usd",
                [
                    (
                        info.pid,
                        info.uuid,
                        info.ppid,
                        info.template,
                        info.intent,
                        str(info.state),
                        info.depth,
                        json.dumps(list(info.allowed_devices)),
                        info.created_at,
                        info.ended_at,
                        info.exit_code,
                        info.exit_reason,
                        info.result,
                        info.tokens_used,
                        info.steps,
                        info.cost_usd,
                        info.token_budget,
                        info.exit_kind,
                        info.exit_origin,
                    )
                    for info in rows
                ],
            )

    def list_processes(self, limit: int = 1000) -> list[ProcessInfo]:
        """The most recent processes, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT pid, uuid, ppid, template, intent, state, depth, allowed_devices, "
                "created_at, exit_code, exit_reason, result, tokens_used, steps, ended_at, "
                "cost_usd, token_budget, exit_kind, exit_origin "
                "FROM processes ORDER BY pid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_row_to_info(row) for row in rows]

    def get_process(self, pid: int) -> ProcessInfo | None:
        """The stored row of ``pid`` (None: never ran here, or pruned)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT pid, uuid, ppid, template, intent, state, depth, allowed_devices, "
                "created_at, exit_code, exit_reason, result, tokens_used, steps, ended_at, "
                "cost_usd, token_budget, exit_kind, exit_origin FROM processes WHERE pid = ?",
                (pid,),
            ).fetchone()
        return None if row is None else _row_to_info(row)

    def dead_before(self, before: float) -> list[int]:
        """PIDs of dead processes that ended before ``before`` (a Unix time)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT pid FROM processes WHERE state = 'dead' AND ended_at < ? ORDER BY pid",
                (before,),
            ).fetchall()
        return [int(row[0]) for row in rows]

    def prune_dead(self, before: float) -> list[int]:
        """Delete the rows of dead processes that ended before ``before``; returns their PIDs.
        PIDs are never reused: the counter is untouched."""
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT pid FROM processes WHERE state = 'dead' AND ended_at < ? ORDER BY pid",
                (before,),
            ).fetchall()
            conn.execute("DELETE FROM processes WHERE state = 'dead' AND ended_at < ?", (before,))
        return [int(row[0]) for row in rows]

    def close(self) -> None:
        """Give back the unused rest of the PID block (if no one reserved after us), close.
        A shared in-memory connection stays open for the `Store` that opened it."""
        if self._shared:
            return
        with self._pid_lock, self._lock:
            if self._pid_next < self._pid_limit:
                with self.transaction() as conn:
                    conn.execute(
                        "UPDATE counters SET value = ? WHERE name = 'pid' AND value = ?",
                        (self._pid_next, self._pid_limit),
                    )
                self._pid_next = self._pid_limit = 0
            self._conn.close()


def with_own_connection(store: Store, owner: str, start: Callable[[Store], T]) -> T:
    """``start(connection)`` with a new connection of ``owner``'s (`Store.open_for`), which
    ``start``'s result then owns; closed again if ``start`` raises."""
    connection = store.open_for(owner)
    try:
        return start(connection)
    except BaseException:
        connection.close()
        raise


def _row_to_info(row: tuple[Any, ...]) -> ProcessInfo:
    return ProcessInfo(
        pid=int(row[0]),
        uuid=str(row[1]),
        ppid=int(row[2]),
        template=str(row[3]),
        intent=str(row[4]),
        state=ProcessState(str(row[5])),
        depth=int(row[6]),
        allowed_devices=tuple(json.loads(str(row[7]))),
        created_at=float(row[8]),
        exit_code=None if row[9] is None else int(row[9]),
        exit_reason=str(row[10]),
        result=str(row[11]),
        tokens_used=int(row[12]),
        steps=int(row[13]),
        ended_at=None if row[14] is None else float(row[14]),
        cost_usd=float(row[15]),
        token_budget=int(row[16]),
        exit_kind=str(row[17]),
        exit_origin=str(row[18]),
    )
