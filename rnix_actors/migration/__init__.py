"""Capability migration: the similarity matrix and the migration planner.

    topology = attach_topology(system, system.store)
    migration = attach_planner(system, system.store, topology, settings_from(system.config))

From then on every supervisor that gives up on an agent child offers the task to the
`MigrationPlanner` first. See ``docs/migration.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pykka

from rnix_actors.config import Config
from rnix_actors.errors import SystemStopped
from rnix_actors.kernel.asking import unresponsive
from rnix_actors.kernel.base import Launch, launch_here
from rnix_actors.messages.events import Event
from rnix_actors.messages.migration import MigrationPlan, QueryDecisions, QueryMatrix
from rnix_actors.migration.gate import Assessment, Plan, Record, plan_migration
from rnix_actors.migration.ledger import PlannerMemory
from rnix_actors.migration.planner import (
    Collaboration,
    MigrationHost,
    MigrationPlanner,
    MigrationSettings,
    template_skills,
)
from rnix_actors.migration.similarity import (
    Blend,
    Similarity,
    SimilarityMatrix,
    jaccard,
    matrix_text,
    ranked_text,
    similarity_matrix,
)
from rnix_actors.migration.store import DecisionRecord, MigrationStore
from rnix_actors.store.db import Store, with_own_connection

ASK_TIMEOUT = 10.0

__all__ = [
    "Assessment",
    "Blend",
    "DecisionRecord",
    "Migration",
    "MigrationPlan",
    "MigrationPlanner",
    "MigrationSettings",
    "Plan",
    "Record",
    "Similarity",
    "SimilarityMatrix",
    "attach_planner",
    "jaccard",
    "matrix_text",
    "plan_migration",
    "ranked_text",
    "settings_from",
    "similarity_matrix",
    "stored_decisions",
    "template_skills",
]


def settings_from(config: Config, blend: Blend | None = None) -> MigrationSettings:
    """Settings with the config's ``immune.min_migration_similarity`` (validated by the
    immune section's loader; 0.5 when absent)."""
    value = config.immune.get("min_migration_similarity", 0.5)
    return MigrationSettings(float(value), blend or Blend())


class Migration:
    """A thread-safe handle on the attached planner."""

    def __init__(
        self,
        host: MigrationHost,
        ref: pykka.ActorRef[MigrationPlanner],
        subscription: Any,
        settings: MigrationSettings,
    ) -> None:
        self._host = host
        self.ref = ref
        self._subscription = subscription
        self.settings = settings

    def decisions(self, limit: int = 100) -> list[DecisionRecord]:
        """Every recorded decision (most recent ``limit``, oldest first)."""
        result: list[DecisionRecord] = self._ask(QueryDecisions(limit))
        return result

    def matrix(self) -> SimilarityMatrix:
        result: SimilarityMatrix = self._ask(QueryMatrix())
        return result

    def stop(self) -> None:
        """Detach from the supervisors, unsubscribe and stop the planner. Idempotent."""
        if self._subscription is not None:
            self._host.set_migration_planner(None)
            self._subscription.cancel()
            self._subscription = None
        with contextlib.suppress(pykka.ActorDeadError):
            self.ref.stop(timeout=ASK_TIMEOUT)

    def _ask(self, message: object) -> Any:
        try:
            return self.ref.ask(message, block=True, timeout=ASK_TIMEOUT)
        except pykka.ActorDeadError:
            raise SystemStopped("the migration planner is not running") from None
        except pykka.Timeout:
            raise unresponsive("migration planner", ASK_TIMEOUT) from None


def _feeder(ref: pykka.ActorRef[MigrationPlanner]) -> Callable[[Event], None]:
    """Runs in the bus thread: lifecycle events travel to the planner's ledger."""

    def feed(event: Event) -> None:
        if event.syscall in ("Start", "Exit"):
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(event)

    return feed


def attach_planner(
    host: MigrationHost,
    store: Store,
    topology: Collaboration | None = None,
    settings: MigrationSettings | None = None,
    launch: Launch = launch_here,
) -> Migration:
    """Start the planner and make it the one supervisors offer failed tasks to.

    Raises `RuntimeError` if the store's migration schema is newer than this code; nothing
    is left started on failure.
    """
    settings = settings or MigrationSettings()
    memory = PlannerMemory()  # each restart's planner takes over its predecessor's

    def start(own: Store) -> pykka.ActorRef[MigrationPlanner]:
        return MigrationPlanner.start(host, MigrationStore(own), topology, settings, memory)

    ref = launch("planner", lambda: with_own_connection(store, "planner", start))
    try:
        subscription = host.subscribe(_feeder(ref), ("Start", "Exit"))
        host.set_migration_planner(ref)
    except BaseException:
        ref.stop()
        raise
    return Migration(host, ref, subscription, settings)


def stored_decisions(store: Store, limit: int = 100) -> list[DecisionRecord]:
    return MigrationStore(store).decisions(limit)
