"""The immune guard: checks every syscall and model answer in the agent's own thread.

The hot path takes no actor round trip. Each agent thread updates its own `RunRecord` and
judges it against the current `Snapshot`, an immutable value the daemon replaces whole when
it relearns (a reference swap, atomic in Python), so readers need no lock. A call that
passes a full check leaves caps on its counts (`KeyCount.within`): until a count passes
one, or the snapshot changes, the calls after it are only counted. Only when it finds
something new does the guard `tell` the daemon, and in enforce mode it answers
``suspend``: the call is refused and the process suspends before it runs anything else.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pykka

from rnix_actors.immune.detector import Baseline, Settings, check_call, check_model_step
from rnix_actors.immune.messages import AnomalyDetected
from rnix_actors.immune.sample import RunRecord
from rnix_actors.kernel.guards import ALLOW, SyscallAttempt, Verdict

log = logging.getLogger(__name__)

RECENTLY_CLOSED = 4096
"""Finished pids remembered so that a killed process's last call cannot recreate a record."""


@attrs.frozen
class Snapshot:
    """What the guards check against: compiled profiles, known threat names, settings, mode."""

    baselines: Mapping[str, Baseline] = attrs.field(factory=dict)
    known: frozenset[str] = frozenset()
    settings: Settings = attrs.field(factory=Settings)
    enforce: bool = False
    stopped: bool = False


class Shared:
    """The state guards and daemon share: the snapshot and the live run records."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._lock = threading.Lock()
        self.records: dict[int, RunRecord] = {}  # read without the lock (atomic get)
        self._closed: OrderedDict[int, None] = OrderedDict()

    def record(self, pid: int, template: str) -> RunRecord | None:
        """The record of ``pid`` (created on its first call), or None once it finished."""
        found = self.records.get(pid)
        if found is not None:
            return found
        with self._lock:
            if pid in self._closed:
                return None
            return self.records.setdefault(pid, RunRecord(template))

    def take(self, pid: int) -> RunRecord | None:
        """Remove and return the record of a finished process."""
        with self._lock:
            self._closed[pid] = None
            while len(self._closed) > RECENTLY_CLOSED:
                self._closed.popitem(last=False)
            return self.records.pop(pid, None)


Report = Callable[[AnomalyDetected], None]


def tell_report(ref: pykka.ActorRef[Any]) -> Report:
    """Report to the daemon actor; a stopped daemon only costs the alert, never the call."""

    def report(message: AnomalyDetected) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(message)

    return report


class ImmuneGuard:
    """A kernel guard (``Callable[[SyscallAttempt], Verdict]``)."""

    def __init__(self, shared: Shared, report: Report) -> None:
        self.shared = shared
        self.report = report

    def __call__(self, attempt: SyscallAttempt) -> Verdict:
        snap = self.shared.snapshot
        if snap.stopped:
            return ALLOW
        record = self.shared.records.get(attempt.pid) or self.shared.record(
            attempt.pid, attempt.template
        )
        if record is None:
            return ALLOW
        with record.lock:
            if attempt.syscall == "ReasonStep":
                record.begin_step(attempt.step, attempt.tokens, attempt.duration_ms)
                found = check_model_step(
                    snap.baselines.get(attempt.template), record, snap.settings,
                    self._known(snap, record),
                )  # fmt: skip
            else:
                counted = record.add_call(attempt.step, attempt.syscall, attempt.device)
                # The common call: within the caps the last full check set, against the
                # same snapshot, no limit can have been reached.
                if record.armed is snap and counted.within():
                    return ALLOW
                record.arm(snap)
                found = check_call(
                    snap.baselines.get(attempt.template), record, counted, snap.settings,
                    self._known(snap, record),
                )  # fmt: skip
            if not found:
                return ALLOW
            # One alert per metric and run: after a user resumes, the same deviation passes.
            fresh = tuple(a for a in found if a.metric not in record.reported)
            record.reported.update(a.metric for a in fresh)
            record.minted.update(a.threat for a in fresh if not a.known)
        if not fresh:
            return ALLOW
        self.report(
            AnomalyDetected(attempt.pid, attempt.template, attempt.step, fresh, snap.enforce)
        )
        if not snap.enforce:
            return ALLOW
        return Verdict("suspend", "; ".join(a.describe() for a in fresh), origin="immune")

    @staticmethod
    def _known(snap: Snapshot, record: RunRecord) -> frozenset[str]:
        # A pattern this very run made known is not a re-appearance of a known threat.
        return snap.known - record.minted if record.minted else snap.known
