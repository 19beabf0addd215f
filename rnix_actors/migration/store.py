"""The migration ledger's tables: success records and every planner decision."""

from __future__ import annotations

import json
from typing import Any

import attrs

from rnix_actors.migration.gate import Record
from rnix_actors.store.db import Store

SCHEMA = {
    1: """
    CREATE TABLE migration_records (
        template TEXT PRIMARY KEY,
        successes INTEGER NOT NULL,
        failures INTEGER NOT NULL
    );
    CREATE TABLE migration_decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        supervisor TEXT NOT NULL,
        child TEXT NOT NULL,
        original TEXT NOT NULL,
        substitute TEXT NOT NULL DEFAULT '',
        decision TEXT NOT NULL,
        reason TEXT NOT NULL,
        similarity REAL,
        original_expected REAL NOT NULL,
        substitute_expected REAL,
        last_pid INTEGER,
        attempts INTEGER NOT NULL,
        detail TEXT NOT NULL,
        outcome TEXT NOT NULL DEFAULT '',
        outcome_pid INTEGER,
        outcome_reason TEXT NOT NULL DEFAULT ''
    )
    """,
}


@attrs.frozen
class DecisionRecord:
    """One planner decision. ``outcome`` is ``completed``/``failed`` once a migrated task's
    substitute finished (empty while it runs, and for declined or no-candidate decisions)."""

    id: int
    ts: float
    supervisor: str
    child: str
    original: str
    substitute: str
    decision: str
    reason: str
    similarity: float | None
    original_expected: float
    substitute_expected: float | None
    last_pid: int | None
    attempts: int
    detail: dict[str, Any]
    outcome: str = ""
    outcome_pid: int | None = None
    outcome_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


COLUMNS = (
    "id, ts, supervisor, child, original, substitute, decision, reason, similarity, "
    "original_expected, substitute_expected, last_pid, attempts, detail, outcome, outcome_pid, "
    "outcome_reason"
)


class MigrationStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema("migration", SCHEMA)

    def load_records(self) -> dict[str, Record]:
        with self.store.transaction() as conn:
            rows = conn.execute("SELECT template, successes, failures FROM migration_records")
            return {str(t): Record(int(s), int(f)) for t, s, f in rows.fetchall()}

    def save_record(self, template: str, record: Record) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO migration_records(template, successes, failures) VALUES (?,?,?) "
                "ON CONFLICT(template) DO UPDATE SET successes = excluded.successes, "
                "failures = excluded.failures",
                (template, record.successes, record.failures),
            )

    def add_decision(self, record: DecisionRecord) -> int:
        data = attrs.asdict(record)
        data.pop("id")
        data["detail"] = json.dumps(record.detail, default=str)
        names = list(data)
        with self.store.transaction() as conn:
            cursor = conn.execute(
                f"INSERT INTO migration_decisions({', '.join(names)}) "
                f"VALUES ({', '.join('?' * len(names))})",
                [data[n] for n in names],
            )
            return int(cursor.lastrowid or 0)

    def set_outcome(self, decision_id: int, outcome: str, pid: int, reason: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE migration_decisions SET outcome = ?, outcome_pid = ?, outcome_reason = ? "
                "WHERE id = ?",
                (outcome, pid, reason, decision_id),
            )

    def decisions(self, limit: int = 100) -> list[DecisionRecord]:
        """The most recent decisions, oldest first."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM migration_decisions ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_decision(row) for row in reversed(rows)]


def _decision(row: tuple[Any, ...]) -> DecisionRecord:
    values = list(row)
    values[13] = json.loads(values[13] or "{}")
    return DecisionRecord(*values)
