"""Persistence of the collaboration graph in the system's SQLite store (one row per edge)."""

from __future__ import annotations

import time
from typing import cast

from rnix_actors.messages.topology import EdgeKind
from rnix_actors.store.db import Store
from rnix_actors.topology.graph import KINDS, Edge

SCHEMA = {
    1: """
    CREATE TABLE topology_edges (
        source TEXT NOT NULL,
        target TEXT NOT NULL,
        kind TEXT NOT NULL,
        count INTEGER NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        updated_at REAL NOT NULL,
        PRIMARY KEY (source, target, kind)
    )
    """,
}


class TopologyStore:
    """Edges in ``topology_edges``; each increment is one transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema("topology", SCHEMA)

    def add(self, source: str, target: str, kind: EdgeKind, count: int, label: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO topology_edges(source, target, kind, count, label, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(source, target, kind) DO UPDATE SET "
                "count = count + excluded.count, updated_at = excluded.updated_at, "
                "label = CASE WHEN excluded.label = '' THEN label ELSE excluded.label END",
                (source, target, kind, count, label, time.time()),
            )

    def load(self) -> list[Edge]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT source, target, kind, count, label FROM topology_edges"
            ).fetchall()
        return [
            Edge(str(s), str(t), cast(EdgeKind, k), int(n), str(label))
            for s, t, k, n, label in rows
            if k in KINDS
        ]
