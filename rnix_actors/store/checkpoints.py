"""Checkpoints of agent processes in the SQLite store: one per step boundary.

A checkpoint is what a process needs to continue where it stopped: its state (step,
counters, breaker, devices, driver position, the tool calls of the step in flight...) and its
context. The context only ever grows, so each checkpoint row holds the messages that are new
since the previous one instead of the whole context: a step costs its own messages, not the
history's, and the context of a process is the messages of its rows in order. What does not
change while a process lives (its identity: UUID, template, intent, devices, depth...) is in
its first row and in the first row after each resume. One row is one transaction, so a kill
at any moment leaves the previous checkpoint or the new one, never half of one.

`CheckpointStore.recover` runs when a system starts on a state dir that no other system uses:
processes the store still shows as running belong to a system that died and become ``lost``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from rnix_actors.errors import RnixError
from rnix_actors.store.db import Store
from rnix_actors.store.journal import Journal, Row, replay, table_row

FORMAT = 1  # the version of a checkpoint's ``data`` document

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE checkpoints (
        pid INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        step INTEGER NOT NULL,
        kind TEXT NOT NULL,
        created_at REAL NOT NULL,
        format INTEGER NOT NULL,
        first INTEGER NOT NULL,
        messages INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (pid, seq)
    ) WITHOUT ROWID
    """,
}


class CheckpointError(RnixError):
    """A checkpoint that cannot be used: missing, from another format, or unreadable."""


@attrs.frozen
class CheckpointRow:
    """One checkpoint as `rnix checkpoints` lists it (``bytes``: what that checkpoint wrote)."""

    pid: int
    seq: int
    step: int
    kind: str
    created_at: float
    messages: int
    bytes: int

    def to_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


@attrs.frozen
class StoredCheckpoint:
    """The newest checkpoint of a process, decoded: ``state`` and the whole context."""

    row: CheckpointRow
    state: dict[str, Any]
    messages: tuple[dict[str, Any], ...]


class CheckpointStore:
    """The checkpoint table of one `Store` (thread-safe through the store's lock).

    With ``journal_dir`` (a system's own store), `append` puts a checkpoint into the
    system's memory-mapped `Journal` (rnix_actors.store.journal): durable against a kill of
    the process at once, and folded into the table by the journal's writer thread in one
    transaction per batch (a group commit of every process's checkpoints). Every read here
    folds the journal first, so this store's readers never miss a checkpoint; another
    process reading the file sees it within a few milliseconds. Without ``journal_dir`` (a
    reader, such as ``rnix checkpoints``), or with ``use_journal`` false, `append` commits
    each checkpoint in its own transaction.
    """

    def __init__(self, store: Store, journal_dir: Path | None = None) -> None:
        self.store = store
        store.ensure_schema("checkpoints", _MIGRATIONS)
        self.journal_dir = journal_dir
        self.use_journal = journal_dir is not None
        self._journal: Journal | None = None
        self._journal_lock = threading.Lock()

    def append(
        self, pid: int, seq: int, step: int, kind: str, first: int, messages: int, data: str
    ) -> None:
        """Checkpoint ``seq`` of ``pid`` (``data``: its encoded document, holding the context
        messages from index ``first`` on; ``messages``: the context's length after it).
        Durable when it returns; raises `sqlite3.Error` when it could not be written."""
        row: Row = (pid, seq, step, kind, time.time(), first, messages, data)
        journal = self._journal if self.use_journal else None
        if journal is None and self.use_journal:
            journal = self._open_journal()
        if journal is not None and journal.append(row):
            return
        self._commit_rows([row])

    def _open_journal(self) -> Journal | None:
        with self._journal_lock:
            if self._journal is None and self.journal_dir is not None:
                self._journal = Journal(self.journal_dir, self._commit_rows)
            return self._journal

    def _commit_rows(self, rows: Sequence[Row]) -> None:
        # One INSERT per chunk of rows, not one per row: each statement SQLite runs hands
        # the GIL over and back, which costs every other thread of the system a switch.
        with self.store.transaction() as conn:
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                values = [v for r in chunk for v in table_row(r, FORMAT)]
                conn.execute(_INSERT + ",(?,?,?,?,?,?,?,?,?,?)" * (len(chunk) - 1), values)

    def sync(self) -> None:
        """Fold the journal into the table now (every read of this store does it first)."""
        journal = self._journal
        if journal is not None:
            journal.fold()

    def replay_journals(self) -> int:
        """Commit the checkpoints that journals of dead systems hold (see `recover`)."""
        if self.journal_dir is None:
            return 0
        return replay(self.journal_dir, self._commit_rows)

    def close(self, timeout: float = 10.0) -> None:
        """Fold the journal into the table and remove its files."""
        with self._journal_lock:
            journal, self._journal = self._journal, None
            self.use_journal = False
        if journal is not None:
            journal.close(timeout)

    def write(
        self,
        pid: int,
        seq: int,
        step: int,
        kind: str,
        state: dict[str, Any],
        first: int,
        new_messages: Sequence[dict[str, Any]],
    ) -> int:
        """Write checkpoint ``seq`` of ``pid`` (one transaction); returns its size in bytes.
        ``new_messages`` are the context messages from index ``first`` on."""
        with self.store.transaction() as conn:
            return write_checkpoint(conn, pid, seq, step, kind, state, first, new_messages)

    def rows(self, pid: int) -> list[CheckpointRow]:
        """The checkpoints of ``pid``, oldest first."""
        self.sync()
        with self.store.transaction() as conn:
            found = conn.execute(
                f"SELECT {_ROW} FROM checkpoints WHERE pid = ? ORDER BY seq", (pid,)
            ).fetchall()
        return [_row(r) for r in found]

    def latest(self, pid: int) -> StoredCheckpoint:
        """The newest checkpoint of ``pid`` with its whole context and identity, decoded;
        `CheckpointError` (naming the PID and what to do) when there is none or a row of it
        cannot be read."""
        self.sync()
        with self.store.transaction() as conn:
            found = conn.execute(
                f"SELECT {_ROW}, format, first, data FROM checkpoints WHERE pid = ? ORDER BY seq",
                (pid,),
            ).fetchall()
        if not found:
            raise CheckpointError(
                f"PID {pid} has no checkpoint to resume from (it ran in a system with "
                "kernel.checkpoints off); start its task again"
            )
        return _decode(pid, found)

    def counts(self, pids: Iterable[int]) -> dict[int, CheckpointRow]:
        """The newest checkpoint row of each of ``pids`` that has one."""
        self.sync()
        wanted = sorted(set(pids))
        found: dict[int, CheckpointRow] = {}
        with self.store.transaction() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for r in conn.execute(
                    f"SELECT {_ROW} FROM checkpoints WHERE pid IN ({marks}) ORDER BY pid, seq",
                    chunk,
                ):
                    found[int(r[0])] = _row(r)
        return found

    def supervised(self) -> dict[str, int]:
        """Lost and suspended supervised children: their path in their tree (as their first
        checkpoint names it, ``/review/analyst``) -> the newest such PID."""
        self.sync()
        with self.store.transaction() as conn:
            found = conn.execute(
                "SELECT c.pid, c.data FROM checkpoints c JOIN processes p ON p.pid = c.pid "
                "WHERE c.seq = 0 AND p.state IN ('lost', 'suspended') AND c.data LIKE ? "
                "ORDER BY c.pid",
                ('%"child":"/%',),
            ).fetchall()
        children: dict[str, int] = {}
        for pid, data in found:
            try:
                child = json.loads(str(data))["state"].get("child")
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a bad row is refused when that PID is resumed
            if isinstance(child, str) and child:
                children[child] = int(pid)
        return children

    def forget(self, pids: Iterable[int]) -> int:
        """Delete every checkpoint of ``pids``; returns how many rows went."""
        ids = [(p,) for p in pids]
        if not ids:
            return 0
        self.sync()
        with self.store.transaction() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM checkpoints WHERE pid = ?", ids)
            return conn.total_changes - before

    def forget_dead(self, before: float) -> int:
        """Delete the checkpoints of processes dead since before ``before`` (a Unix time) or
        no longer in the store; returns how many rows went."""
        self.sync()
        with self.store.transaction() as conn:
            changes = conn.total_changes
            conn.execute(
                "DELETE FROM checkpoints WHERE pid IN (SELECT c.pid FROM checkpoints c "
                "LEFT JOIN processes p ON p.pid = c.pid WHERE p.pid IS NULL "
                "OR (p.state = 'dead' AND p.ended_at < ?))",
                (before,),
            )
            return conn.total_changes - changes

    def recover(self) -> tuple[list[int], list[int]]:
        """Mark what a dead system left behind; returns (lost PIDs, suspended PIDs).

        Rows still ``running`` (or ``created``) become ``lost``; ``suspended`` rows stay
        suspended; first, the checkpoints the dead system's journal holds are committed.
        Only call it when no other live system uses this state dir.
        """
        self.replay_journals()
        now = time.time()
        with self.store.transaction() as conn:
            running = [
                int(r[0])
                for r in conn.execute(
                    "SELECT pid FROM processes WHERE state IN ('running', 'created') ORDER BY pid"
                )
            ]
            conn.execute(
                "UPDATE processes SET state = 'lost', ended_at = ?, exit_kind = 'lost', "
                "exit_origin = '', exit_reason = "
                "'lost: the system running it stopped without suspending it' "
                "WHERE state IN ('running', 'created')",
                (now,),
            )
            suspended = [
                int(r[0])
                for r in conn.execute(
                    "SELECT pid FROM processes WHERE state = 'suspended' ORDER BY pid"
                )
            ]
        return running, suspended


_ROW = "pid, seq, step, kind, created_at, messages, bytes"
_CHUNK = 99  # rows per INSERT: 990 parameters, under the 999 of older SQLite builds
_INSERT = (
    "INSERT OR REPLACE INTO checkpoints(pid, seq, step, kind, created_at, format, first, "
    "messages, bytes, data) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


def _row(r: Sequence[Any]) -> CheckpointRow:
    return CheckpointRow(
        int(r[0]), int(r[1]), int(r[2]), str(r[3]), float(r[4]), int(r[5]), int(r[6])
    )


def _decode(pid: int, found: Sequence[Sequence[Any]]) -> StoredCheckpoint:
    fix = (
        "it cannot be resumed; start its task again (rnix prune removes the checkpoints of "
        "dead processes)"
    )
    identity: dict[str, Any] = {}
    state: dict[str, Any] = {}
    messages: list[dict[str, Any]] = []
    for r in found:
        if int(r[7]) != FORMAT:
            raise CheckpointError(
                f"the checkpoint of PID {pid} has format {r[7]}, this rnix-actors reads "
                f"format {FORMAT}: {fix}"
            )
        try:
            data = json.loads(str(r[9]))
            state, new = data["state"], data["messages"]
            if not isinstance(state, dict) or not all(isinstance(m, dict) for m in new):
                raise ValueError("not a record")
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"the checkpoint of PID {pid} is corrupted (row {r[1]}: {exc}): {fix}"
            ) from None
        if "uuid" in state:
            identity = state
        first = int(r[8])
        if first > len(messages):
            raise CheckpointError(
                f"the checkpoint of PID {pid} is missing context messages before row {r[1]}: {fix}"
            )
        del messages[first:]
        messages.extend(new)
    head = _row(found[-1])
    if len(messages) != head.messages or not identity:
        raise CheckpointError(f"the checkpoint of PID {pid} is incomplete: {fix}")
    return StoredCheckpoint(head, {**identity, **state}, tuple(messages))


def write_checkpoint(
    conn: sqlite3.Connection,
    pid: int,
    seq: int,
    step: int,
    kind: str,
    state: dict[str, Any],
    first: int,
    new_messages: Sequence[dict[str, Any]],
) -> int:
    """`CheckpointStore.write` inside a transaction the caller holds."""
    data = json.dumps({"state": state, "messages": list(new_messages)}, separators=(",", ":"))
    conn.execute(
        "INSERT OR REPLACE INTO checkpoints(pid, seq, step, kind, created_at, format, first, "
        "messages, bytes, data) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (pid, seq, step, kind, time.time(), FORMAT, first, first + len(new_messages),
         len(data), data),
    )  # fmt: skip
    return len(data)
