"""The `MigrationPlanner` actor: answers a supervisor's `MigrationOffer`.

Thin around pure functions: it gathers the inputs (templates and skills, collaboration
counts, success records, the failed run's events), calls `plan_migration`, builds the
transferred intent, records the decision and answers. It never asks a supervisor (the one
offering is blocked on this ask), so no call cycle can form.

It owns the `Ledger`: the bus's subscriber tells it every ``Start`` and ``Exit``. An offer
must be planned on a ledger that has seen the failed run's exit, so the planner first
syncs the bus (every event published so far is then in its inbox, behind the offer), tells
itself `PlanOffer` behind them and answers with that ask's future. Each incarnation owns
its store connection (closed when it ends); the ledger and the migrations awaiting their
outcome pass from one incarnation to the next in a `PlannerMemory`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from rnix_actors.errors import RnixError
from rnix_actors.kernel.base import RnixActor
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.messages.events import Event
from rnix_actors.messages.migration import (
    MigrationOffer,
    MigrationPlan,
    PlanOffer,
    QueryDecisions,
    QueryMatrix,
)
from rnix_actors.migration.context import (
    RunSummary,
    read_events,
    strip_transfer,
    summarise_run,
    transfer_intent,
)
from rnix_actors.migration.gate import Assessment, Plan, plan_migration
from rnix_actors.migration.ledger import Ledger, Outcome, PlannerMemory, task_key
from rnix_actors.migration.similarity import Blend, SimilarityMatrix, similarity_matrix
from rnix_actors.migration.store import DecisionRecord, MigrationStore
from rnix_actors.templates import AgentTemplate, Skill, effective_devices

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 5.0


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class MigrationHost(Protocol):
    """What the planner needs from the system (`rnix_actors.System` fits structurally)."""

    def subscribe(
        self, callback: Callable[[Event], None], syscalls: Iterable[str] | None = None
    ) -> Cancellable: ...

    def sync_events(self, timeout: float = ...) -> None: ...

    def info(self, pid: int) -> ProcessInfo: ...

    def events_file(self, pid: int) -> Path: ...

    @property
    def templates(self) -> dict[str, AgentTemplate]: ...

    @property
    def skills(self) -> dict[str, Skill]: ...

    def set_migration_planner(self, planner: Any) -> None: ...


class Collaboration(Protocol):
    """The topology, as the planner sees it (`rnix_actors.topology.Topology` fits)."""

    def collaboration(self) -> dict[tuple[str, str], int]: ...

    def record(self, kind: Any, source: str, target: str, label: str = "") -> None: ...


@attrs.frozen
class MigrationSettings:
    """``min_similarity`` is the config's ``immune.min_migration_similarity``; a migration must
    beat the failing agent's expected success by more than ``margin``."""

    min_similarity: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0.0), attrs.validators.le(1.0)]
    )
    blend: Blend = attrs.field(factory=Blend)
    margin: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))


def template_skills(templates: Mapping[str, AgentTemplate]) -> dict[str, tuple[str, ...]]:
    return {name: template.skills for name, template in templates.items()}


class MigrationPlanner(RnixActor):
    def __init__(
        self,
        host: MigrationHost,
        db: MigrationStore,
        topology: Collaboration | None,
        settings: MigrationSettings,
        memory: PlannerMemory | None = None,
    ) -> None:
        """``memory``: what the previous incarnation of this system run's planner kept (the
        first one creates it)."""
        super().__init__()
        self.host = host
        self.db = db
        self.at_end(db.store.close)
        memory = PlannerMemory() if memory is None else memory
        if memory.ledger is None:
            memory.ledger = Ledger(db.load_records())
        self.ledger = memory.ledger
        self.topology = topology
        self.settings = settings
        self.pending = memory.pending  # migrated task → decision id

    def handle(self, message: Any) -> Any:
        match message:
            case Event():
                outcome = self.ledger.observe(message)
                if outcome is not None:
                    self._outcome(outcome)
            case MigrationOffer():
                # Every event published before the offer reaches this inbox (unless the bus
                # does not answer: then the plan uses what the ledger has, which only makes
                # the gate more conservative); the plan goes behind them.
                with contextlib.suppress(Exception):
                    self.host.sync_events(SYNC_TIMEOUT)
                return self.actor_ref.ask(PlanOffer(message), block=False)
            case PlanOffer(offer=offer):
                return self._offer(offer)
            case QueryDecisions(limit=limit):
                return self.db.decisions(limit)
            case QueryMatrix():
                return self._matrix()
            case _:
                self.unhandled(message)
        return None

    def _matrix(self) -> SimilarityMatrix:
        history = self.topology.collaboration() if self.topology is not None else {}
        return similarity_matrix(template_skills(self.host.templates), history, self.settings.blend)

    def _offer(self, offer: MigrationOffer) -> MigrationPlan:
        templates, skills = self.host.templates, self.host.skills
        origin = f"supervisor {offer.supervisor}"
        task = self.ledger.task(task_key(origin, offer.intent, offer.template))
        original_devices = self._original_devices(offer, templates, skills)
        plan = plan_migration(
            offer.template,
            self._matrix(),
            self.settings.min_similarity,
            self.ledger.records(),
            task,
            lambda name: effective_devices(templates[name], skills),
            original_devices,
            self.settings.margin,
        )
        chosen = plan.chosen
        attempts = max(task.failures, 1)
        summary = summarise_run(
            read_events(self.host.events_file(offer.last_pid)) if offer.last_pid else [],
            offer.last_pid,
            offer.exit_reason,
        )
        intent = None if chosen is None else _transferred(offer, chosen, summary, attempts)
        decision_id = self._record(offer, plan, attempts, summary.to_dict(), intent)
        if chosen is None:
            return MigrationPlan(plan.decision, plan.reason, decision_id=decision_id)
        key = task_key(origin, offer.intent, chosen.agent)
        self.pending[key] = decision_id
        if self.topology is not None:
            self.topology.record("migration", offer.template, chosen.agent, offer.supervisor)
        return MigrationPlan(
            "migrated",
            plan.reason,
            chosen.agent,
            intent,
            devices=chosen.devices,  # () for a device-less original: never the template's
            similarity=chosen.similarity,
            decision_id=decision_id,
        )

    def _original_devices(
        self, offer: MigrationOffer, templates: dict[str, AgentTemplate], skills: dict[str, Skill]
    ) -> frozenset[str]:
        if offer.last_pid:
            with contextlib.suppress(RnixError):
                return frozenset(self.host.info(offer.last_pid).allowed_devices)
        if offer.devices is not None:
            return frozenset(offer.devices)
        template = templates.get(offer.template)
        return frozenset() if template is None else effective_devices(template, skills)

    def _record(
        self,
        offer: MigrationOffer,
        plan: Plan,
        attempts: int,
        summary: dict[str, Any],
        intent: str | None,
    ) -> int:
        chosen = plan.chosen
        record = DecisionRecord(
            id=0,
            ts=time.time(),
            supervisor=offer.supervisor,
            child=offer.child,
            original=offer.template,
            substitute="" if chosen is None else chosen.agent,
            decision=plan.decision,
            reason=plan.reason,
            similarity=None if chosen is None else chosen.similarity,
            original_expected=plan.original_expected,
            substitute_expected=None if chosen is None else chosen.expected,
            last_pid=offer.last_pid,
            attempts=attempts,
            detail={
                "exit_reason": offer.exit_reason,
                "candidates": [c.to_dict() for c in plan.candidates],
                "summary": summary,
                "intent": intent,
            },
        )
        decision_id = self.db.add_decision(record)
        log.info(
            "migration %s for %s/%s: %s", plan.decision, offer.supervisor, offer.child, plan.reason
        )
        return decision_id

    def _outcome(self, outcome: Outcome) -> None:
        self.db.save_record(outcome.template, outcome.record)
        if outcome.key is None:
            return
        decision_id = self.pending.get(outcome.key)
        if decision_id is not None:
            result = "completed" if outcome.ok else "failed"
            self.db.set_outcome(decision_id, result, outcome.pid, outcome.reason)
            del self.pending[outcome.key]  # once written: a failed write leaves it pending


def _transferred(
    offer: MigrationOffer, chosen: Assessment, summary: RunSummary, attempts: int
) -> str:
    """The substitute's intent: the task, with what the failed runs learned and where."""
    environment = {
        "supervisor": offer.supervisor,
        "child": offer.child,
        "original_agent": offer.template,
        "devices": ",".join(chosen.devices),
    }
    task = strip_transfer(offer.intent)
    return transfer_intent(task, offer.template, chosen.agent, summary, environment, attempts)
