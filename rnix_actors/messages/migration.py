"""Messages of the migration seam: a supervisor's offer, the planner's answer, and the
planner's own queries."""

from __future__ import annotations

from typing import Literal

import attrs


@attrs.frozen
class MigrationOffer:
    """Supervisor → migration planner (ask): the supervisor is about to give up on a child.

    The planner answers with a `MigrationAnswer`, or with a `pykka.Future` of one (the
    answer once the planner caught up with the events); it must not ask the supervisor
    anything.
    """

    supervisor: str  # path of the supervisor
    child: str  # child name (identity = supervisor path + name)
    template: str  # the failing agent template
    intent: str
    exit_reason: str
    last_pid: int | None
    devices: tuple[str, ...] | None


@attrs.frozen
class MigrationAnswer:
    """``migrated``: run ``substitute`` (with ``intent``, carrying the transferred context)
    under the same supervisor and child identity, with at most ``devices`` (never more than
    the original had). ``declined`` / ``no_candidate``: the supervisor escalates; ``reason``
    says why."""

    decision: Literal["migrated", "declined", "no_candidate"]
    reason: str
    substitute: str | None = None
    intent: str | None = None
    devices: tuple[str, ...] | None = None  # the substitute's whitelist: own ∩ original's


@attrs.frozen
class MigrationPlan(MigrationAnswer):
    """A `MigrationAnswer` plus what the supervisor may use beyond it: ``devices`` is the
    substitute's whitelist (its own ∩ the original's, never more)."""

    similarity: float | None = None
    decision_id: int = 0


@attrs.frozen
class PlanOffer:
    """Planner → itself: plan ``offer`` now. Told behind the events the bus delivered before
    the offer, so the planner's ledger has seen them (the failed run's exit among them)."""

    offer: MigrationOffer


@attrs.frozen
class QueryDecisions:
    limit: int = 100


@attrs.frozen
class QueryMatrix:
    """Answered with the current `SimilarityMatrix`."""
