"""Success records per agent template and per task, learned from ``Start``/``Exit`` events.

The planner actor owns its ledger: the bus's subscriber tells it each event, and it plans
an offer only after the events published before the offer (see `MigrationPlanner`). The
planner persists the per-template records; per-task records only matter during one
supervision episode, so they live for one system run, in a `PlannerMemory` that each
incarnation of the planner takes over from the one before: a restart mid-episode keeps the
task's record, the running processes it counts and the migrations awaiting their outcome.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import attrs

from rnix_actors.messages.events import Event
from rnix_actors.messages.links import ExitKind, ExitReason
from rnix_actors.migration.context import strip_transfer
from rnix_actors.migration.gate import Record

MAX_TASKS = 2000

TaskKey = tuple[str, str, str]  # (origin, task intent, template)


def task_key(origin: str, intent: str, template: str) -> TaskKey:
    return (origin, strip_transfer(intent), template)


def counts_against(reason: ExitReason) -> bool | None:
    """True: a success, False: a failure, None: not the agent's doing (a supervisor stopping
    a sibling, the user, a system stop, a lost node: see `ExitKind.external`)."""
    if reason.kind is ExitKind.COMPLETED:
        return True
    if reason.kind.external:
        return None
    return False


@attrs.frozen
class Outcome:
    """One finished run as the ledger saw it."""

    pid: int
    template: str
    ok: bool
    reason: str
    key: TaskKey | None
    record: Record


class Ledger:
    """Plain state of one owner (the planner's thread): no lock."""

    def __init__(self, records: Mapping[str, Record] | None = None) -> None:
        self._records: dict[str, Record] = dict(records or {})
        self._tasks: OrderedDict[TaskKey, Record] = OrderedDict()
        self._running: dict[int, TaskKey] = {}

    def observe(self, event: Event) -> Outcome | None:
        """Account for a ``Start`` or ``Exit`` event; returns the outcome of a counted exit."""
        if event.syscall == "Start":
            origin = str(event.args.get("origin", ""))
            intent = str(event.args.get("intent", ""))
            self._running[event.pid] = task_key(origin, intent, event.template)
            return None
        if event.syscall != "Exit":
            return None
        why = ExitReason.from_event_args(event.args)
        reason = why.detail
        key = self._running.pop(event.pid, None)
        ok = counts_against(why)
        if ok is None or not event.template:
            return None
        record = self._records.get(event.template, Record()).add(ok)
        self._records[event.template] = record
        if key is not None:
            self._tasks[key] = self._tasks.get(key, Record()).add(ok)
            self._tasks.move_to_end(key)
            while len(self._tasks) > MAX_TASKS:
                self._tasks.popitem(last=False)
        return Outcome(event.pid, event.template, ok, reason, key, record)

    def records(self) -> dict[str, Record]:
        return dict(self._records)

    def task(self, key: TaskKey) -> Record:
        return self._tasks.get(key, Record())


@attrs.define
class PlannerMemory:
    """What one system run's planner keeps across its restarts (one owner at a time: an
    incarnation takes it over once its predecessor's thread has ended). ``ledger`` is None
    until the first incarnation loads the per-template records from the store."""

    ledger: Ledger | None = None
    pending: dict[TaskKey, int] = attrs.field(factory=dict)  # migrated task → decision id
