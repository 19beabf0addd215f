"""The immune daemon's SQLite tables: profiles, threat memory, alerts, held-out runs.

They live in the state dir's ``rnix.db`` next to the kernel's, under their own schema
version (``Store.ensure_schema("immune", ...)``). Every change is one transaction, so a kill
at any moment leaves either the old or the new state. A run held out of the baseline because
it raised an alert is kept here until a user clears it (or it is pushed out by newer ones).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

import attrs

from rnix_actors.immune.alerts import Alert
from rnix_actors.immune.baseline import ProfileBuilder, Welford
from rnix_actors.immune.sample import RunSample
from rnix_actors.immune.threats import ThreatSignature
from rnix_actors.store.db import Store

MAX_HELD_RUNS = 1000

MIGRATIONS = {
    1: """
    CREATE TABLE immune_profiles (
        template TEXT PRIMARY KEY, runs INTEGER NOT NULL, updated_at REAL NOT NULL
    );
    CREATE TABLE immune_metrics (
        template TEXT NOT NULL, metric TEXT NOT NULL, n INTEGER NOT NULL, mean REAL NOT NULL,
        m2 REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL,
        PRIMARY KEY (template, metric)
    );
    CREATE TABLE immune_threats (
        name TEXT PRIMARY KEY, family TEXT NOT NULL, metric TEXT NOT NULL,
        template TEXT NOT NULL, detail TEXT NOT NULL, created_at REAL NOT NULL,
        last_seen REAL NOT NULL, hits INTEGER NOT NULL
    );
    CREATE TABLE immune_alerts (
        id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, template TEXT NOT NULL,
        family TEXT NOT NULL, metric TEXT NOT NULL, threat TEXT NOT NULL,
        message TEXT NOT NULL, observed REAL NOT NULL, low REAL, high REAL, deviation REAL,
        known INTEGER NOT NULL, ts REAL NOT NULL, suspended INTEGER NOT NULL,
        active INTEGER NOT NULL
    );
    CREATE INDEX immune_alerts_active ON immune_alerts(active, pid);
    CREATE TABLE immune_held (
        pid INTEGER PRIMARY KEY, template TEXT NOT NULL, sample TEXT NOT NULL, ts REAL NOT NULL
    )
    """,
    # Signatures now hold the concrete pattern and are keyed by name and pattern; the
    # family-level ones of version 1 could be minted by benign runs, so they are dropped.
    2: """
    DROP TABLE immune_threats;
    CREATE TABLE immune_signatures (
        key TEXT PRIMARY KEY, name TEXT NOT NULL, family TEXT NOT NULL, metric TEXT NOT NULL,
        template TEXT NOT NULL, detail TEXT NOT NULL, created_at REAL NOT NULL,
        last_seen REAL NOT NULL, hits INTEGER NOT NULL, call TEXT NOT NULL,
        item TEXT NOT NULL, context TEXT NOT NULL
    );
    CREATE TABLE immune_items (
        template TEXT NOT NULL, item TEXT NOT NULL, runs INTEGER NOT NULL,
        PRIMARY KEY (template, item)
    );
    CREATE TABLE immune_fresh (
        template TEXT NOT NULL, class TEXT NOT NULL, runs INTEGER NOT NULL,
        PRIMARY KEY (template, class)
    );
    ALTER TABLE immune_alerts ADD COLUMN severity TEXT NOT NULL DEFAULT 'high';
    ALTER TABLE immune_alerts ADD COLUMN p REAL;
    ALTER TABLE immune_alerts ADD COLUMN item TEXT NOT NULL DEFAULT '';
    ALTER TABLE immune_alerts ADD COLUMN context TEXT NOT NULL DEFAULT '';
    ALTER TABLE immune_alerts ADD COLUMN call_index INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE immune_alerts ADD COLUMN signature TEXT NOT NULL DEFAULT '';
    ALTER TABLE immune_alerts ADD COLUMN device TEXT NOT NULL DEFAULT ''
    """,
}

_ALERT_COLUMNS = (
    "id, pid, template, family, metric, threat, message, observed, low, high, deviation, "
    "known, ts, suspended, active, severity, p, item, context, call_index, signature, device"
)
_THREAT_COLUMNS = (
    "name, family, metric, template, detail, created_at, last_seen, hits, call, item, context"
)


@attrs.frozen
class Loaded:
    """Everything the daemon needs at start (or the CLI to show a status)."""

    profiles: dict[str, ProfileBuilder]
    threats: list[ThreatSignature]
    alerts: list[Alert]
    next_alert_id: int


class ImmuneStore:
    """Reads and writes the immune tables of an open `Store`.

    Creating it applies the immune migrations (raises `RuntimeError` if the file's immune
    schema is newer than this code). Methods raise `sqlite3.Error` on database failures.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema("immune", MIGRATIONS)

    def load(self) -> Loaded:
        with self.store.transaction() as conn:
            profiles = _load_profiles(conn)
            threats = [
                ThreatSignature(*row)
                for row in conn.execute(f"SELECT {_THREAT_COLUMNS} FROM immune_signatures")
            ]
            rows = conn.execute(
                f"SELECT {_ALERT_COLUMNS} FROM immune_alerts WHERE active = 1 ORDER BY id"
            ).fetchall()
            last = conn.execute("SELECT MAX(id) FROM immune_alerts").fetchone()[0]
        alerts = [_alert(row) for row in rows]
        return Loaded(profiles, threats, alerts, int(last or 0) + 1)

    def save_profile(self, builder: ProfileBuilder, now: float) -> None:
        with self.store.transaction() as conn:
            _save_profile(conn, builder, now)

    def save_threats(self, saved: Iterable[ThreatSignature], removed: Iterable[str]) -> None:
        with self.store.transaction() as conn:
            conn.executemany("DELETE FROM immune_signatures WHERE key = ?", [(k,) for k in removed])
            conn.executemany(
                f"INSERT OR REPLACE INTO immune_signatures (key, {_THREAT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(s.key, *attrs.astuple(s)) for s in saved],
            )

    def add_alerts(self, alerts: Iterable[Alert], retired: Iterable[int]) -> None:
        with self.store.transaction() as conn:
            conn.executemany(
                f"INSERT INTO immune_alerts ({_ALERT_COLUMNS}) VALUES ({', '.join('?' * 22)})",
                [attrs.astuple(a) for a in alerts],
            )
            conn.executemany(
                "UPDATE immune_alerts SET active = 0 WHERE id = ?", [(i,) for i in retired]
            )

    def clear_alerts(self, pid: int) -> int:
        """Deactivate the active alerts of ``pid``; returns how many there were."""
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "UPDATE immune_alerts SET active = 0 WHERE pid = ? AND active = 1", (pid,)
            )
            return int(cursor.rowcount)

    def held_runs(self, template: str) -> list[tuple[int, RunSample]]:
        """The held runs of ``template``, oldest first."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT pid, sample FROM immune_held WHERE template = ? ORDER BY ts", (template,)
            ).fetchall()
        return [(int(pid), RunSample.from_json(json.loads(text))) for pid, text in rows]

    def hold(self, pid: int, sample: RunSample, now: float) -> None:
        """Keep an alerted run out of the baseline until it is cleared."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO immune_held VALUES (?, ?, ?, ?)",
                (pid, sample.template, json.dumps(sample.to_json()), now),
            )
            conn.execute(
                "DELETE FROM immune_held WHERE pid NOT IN "
                "(SELECT pid FROM immune_held ORDER BY ts DESC LIMIT ?)",
                (MAX_HELD_RUNS,),
            )

    def held(self, pid: int) -> RunSample | None:
        """The held run of ``pid`` (None if there is none)."""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT sample FROM immune_held WHERE pid = ?", (pid,)).fetchone()
        return None if row is None else RunSample.from_json(json.loads(row[0]))

    def learn_held(self, builder: ProfileBuilder, pid: int, now: float) -> None:
        """Save a profile that has learned ``pid``'s held run and drop that run, in one
        transaction (a crash cannot learn a run twice or lose it)."""
        with self.store.transaction() as conn:
            _save_profile(conn, builder, now)
            conn.execute("DELETE FROM immune_held WHERE pid = ?", (pid,))


def _save_profile(conn: sqlite3.Connection, builder: ProfileBuilder, now: float) -> None:
    conn.execute(
        "INSERT INTO immune_profiles VALUES (?, ?, ?) ON CONFLICT(template) "
        "DO UPDATE SET runs = excluded.runs, updated_at = excluded.updated_at",
        (builder.template, builder.runs, now),
    )
    conn.executemany(
        "INSERT OR REPLACE INTO immune_metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (builder.template, name, w.n, w.mean, w.m2, w.low, w.high)
            for name, w in builder.metrics.items()
        ],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO immune_items VALUES (?, ?, ?)",
        [(builder.template, item, runs) for item, runs in builder.items.items()],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO immune_fresh VALUES (?, ?, ?)",
        [(builder.template, cls, runs) for cls, runs in builder.fresh.items()],
    )


def _load_profiles(conn: sqlite3.Connection) -> dict[str, ProfileBuilder]:
    builders = {
        str(t): ProfileBuilder(str(t), int(runs))
        for t, runs in conn.execute("SELECT template, runs FROM immune_profiles")
    }
    rows = conn.execute("SELECT template, metric, n, mean, m2, low, high FROM immune_metrics")
    for template, name, n, mean, m2, low, high in rows:
        builder = builders.setdefault(str(template), ProfileBuilder(str(template)))
        builder.metrics[str(name)] = Welford(int(n), float(mean), float(m2), low, high)
    for template, item, runs in conn.execute("SELECT template, item, runs FROM immune_items"):
        builder = builders.setdefault(str(template), ProfileBuilder(str(template)))
        builder.items[str(item)] = int(runs)
    for template, cls, runs in conn.execute("SELECT template, class, runs FROM immune_fresh"):
        builder = builders.setdefault(str(template), ProfileBuilder(str(template)))
        builder.fresh[str(cls)] = int(runs)
    return builders


def _alert(row: tuple[object, ...]) -> Alert:
    values = list(row)
    values[11] = bool(values[11])  # known
    values[13] = bool(values[13])  # suspended
    values[14] = bool(values[14])  # active
    return Alert(*values)  # type: ignore[arg-type]
