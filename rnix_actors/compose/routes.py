"""Neuroplasticity: which agent a workflow node prefers, learned from migrations.

A route says "in workflow W, node N (written for agent O) prefers substitute S" with a weight.
Pure rules (`reinforce`) decide how a finished run changes it; `RouteStore` persists it.

- O failed persistently, the task migrated to S and S completed: the route O → S gains 1.
- The node ran S because of the route and S completed: it gains 1 more.
- The node ran S because of the route and S failed: it loses 1; at 0 the node uses O again.
- The task migrated to S and S failed too: an existing route to S loses 1.
"""

from __future__ import annotations

import time

import attrs

from rnix_actors.store.db import Store

SCHEMA = {
    1: """
    CREATE TABLE compose_routes (
        workflow TEXT NOT NULL,
        node TEXT NOT NULL,
        original TEXT NOT NULL,
        substitute TEXT NOT NULL,
        weight INTEGER NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (workflow, node, original)
    )
    """,
}


@attrs.frozen
class Route:
    workflow: str
    node: str
    original: str
    substitute: str
    weight: int = 0

    @property
    def active(self) -> bool:
        return self.weight > 0


def choose(original: str, route: Route | None) -> str:
    """The agent a node runs: the reinforced substitute if its route has weight."""
    return route.substitute if route is not None and route.active else original


def reinforce(
    route: Route | None,
    workflow: str,
    node: str,
    original: str,
    ran: str,
    migrated_to: str | None,
    ok: bool,
) -> Route | None:
    """The route after a run of ``node`` that started with ``ran`` (None: unchanged)."""
    preferred = route is not None and route.active and ran == route.substitute
    if preferred and route is not None:
        if ok and migrated_to is None:
            return attrs.evolve(route, weight=route.weight + 1)
        weaker = attrs.evolve(route, weight=route.weight - 1)
        if ok and migrated_to not in (None, original, route.substitute) and not weaker.active:
            return Route(workflow, node, original, str(migrated_to), 1)
        return weaker
    if migrated_to is None or migrated_to == original:
        return None
    if ok:
        if route is not None and route.substitute == migrated_to:
            return attrs.evolve(route, weight=max(route.weight, 0) + 1)
        return Route(workflow, node, original, migrated_to, 1)
    if route is not None and route.substitute == migrated_to and route.weight > 0:
        return attrs.evolve(route, weight=route.weight - 1)
    return None


class RouteStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema("compose", SCHEMA)

    def get(self, workflow: str, node: str, original: str) -> Route | None:
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT substitute, weight FROM compose_routes "
                "WHERE workflow = ? AND node = ? AND original = ?",
                (workflow, node, original),
            ).fetchone()
        return None if row is None else Route(workflow, node, original, str(row[0]), int(row[1]))

    def put(self, route: Route) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO compose_routes(workflow, node, original, substitute, weight, "
                "updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT(workflow, node, original) DO "
                "UPDATE SET substitute = excluded.substitute, weight = excluded.weight, "
                "updated_at = excluded.updated_at",
                (
                    route.workflow,
                    route.node,
                    route.original,
                    route.substitute,
                    route.weight,
                    time.time(),
                ),
            )

    def all(self) -> list[Route]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT workflow, node, original, substitute, weight FROM compose_routes "
                "ORDER BY workflow, node"
            ).fetchall()
        return [Route(str(w), str(n), str(o), str(s), int(x)) for w, n, o, s, x in rows]
