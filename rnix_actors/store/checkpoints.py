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

import collections
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from rnix_actors.errors import RnixError
from rnix_actors.store.db import Store

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


@attrs.frozen
class Pending:
    """A checkpoint handed to the writer thread; ``done`` is set once it is committed (or
    failed: ``failed`` then says why)."""

    pid: int
    seq: int
    step: int
    kind: str
    state: dict[str, Any]
    first: int
    messages: Sequence[Any]  # encoded by the writer with ``encode``
    encode: Any
    done: threading.Event = attrs.field(factory=threading.Event)
    outcome: list[int | str] = attrs.field(factory=list)  # [bytes] or ["error text"]


class CheckpointStore:
    """The checkpoint table of one `Store` (thread-safe through the store's lock).

    `submit` commits a checkpoint together with every other one queued meanwhile, in one
    transaction (a group commit: processes stepping at once share commits). With
    ``writer_thread`` false (the default) the caller's thread commits: whoever takes the
    commit lock writes the whole queue, so a process whose checkpoint another one committed
    returns at once. With ``writer_thread`` true one writer thread commits and the caller waits
    on `Pending.done`; under a busy CPU each hand-over to that thread waits for the scheduler,
    which bench/durability.py measures against the default.
    """

    def __init__(self, store: Store, writer_thread: bool = False) -> None:
        self.store = store
        store.ensure_schema("checkpoints", _MIGRATIONS)
        self.writer_thread = writer_thread
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._waiting: collections.deque[Pending] = collections.deque()

    def submit(self, item: Pending) -> Pending:
        """Commit ``item`` (with what else is queued); returns it, `Pending.done` set once
        committed, or at once with the writer thread."""
        if not self.writer_thread:
            self._waiting.append(item)
            with self._commit_lock:
                if not item.done.is_set():
                    batch = []
                    while self._waiting:
                        batch.append(self._waiting.popleft())
                    self._commit(batch)
            return item
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write_loop, name="rnix-checkpoints", daemon=True
                    )
                    self._writer.start()
        self._queue.put(item)
        return item

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the writer thread."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join(timeout)

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[Pending] = []
            stop = item is None
            if item is not None:
                batch.append(item)
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                else:
                    batch.append(more)
            if batch:
                self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[Pending]) -> None:
        try:
            with self.store.transaction() as conn:
                sizes = [
                    write_checkpoint(
                        conn, p.pid, p.seq, p.step, p.kind, p.state, p.first,
                        [p.encode(m) for m in p.messages],
                    )
                    for p in batch
                ]  # fmt: skip
        except sqlite3.Error as exc:
            for p in batch:
                p.outcome.append(f"{type(exc).__name__}: {exc}")
                p.done.set()
            return
        for p, size in zip(batch, sizes, strict=True):
            p.outcome.append(size)
            p.done.set()

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
        with self.store.transaction() as conn:
            found = conn.execute(
                f"SELECT {_ROW} FROM checkpoints WHERE pid = ? ORDER BY seq", (pid,)
            ).fetchall()
        return [_row(r) for r in found]

    def latest(self, pid: int) -> StoredCheckpoint:
        """The newest checkpoint of ``pid`` with its whole context and identity, decoded;
        `CheckpointError` (naming the PID and what to do) when there is none or a row of it
        cannot be read."""
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
        with self.store.transaction() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM checkpoints WHERE pid = ?", ids)
            return conn.total_changes - before

    def forget_dead(self, before: float) -> int:
        """Delete the checkpoints of processes dead since before ``before`` (a Unix time) or
        no longer in the store; returns how many rows went."""
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
        suspended. Only call it when no other live system uses this state dir.
        """
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
