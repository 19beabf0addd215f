"""The immune guard: checks every syscall and model answer in the agent's own thread.

The hot path takes no actor round trip. Each agent thread updates its own `RunRecord` and
judges it against the current `Snapshot`, an immutable value the daemon replaces whole when
it relearns (a reference swap, atomic in Python), so readers need no lock. A call that
passes a full check leaves caps on its counts (`KeyCount`, and ``RunRecord.step_caps`` for
model answers): until a count would pass one, or the snapshot changes, the calls after it are
only counted, with no lock (only the process's own thread writes its record). Only when it finds
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

from rnix_actors.immune.detector import (
    HIGH,
    Anomaly,
    Baseline,
    Settings,
    check_call,
    check_model_step,
)
from rnix_actors.immune.novelty import call_items, has_host
from rnix_actors.immune.risk import Patterns, judge_items, match_signature
from rnix_actors.immune.sample import RunRecord
from rnix_actors.kernel.devices import Effect
from rnix_actors.messages.guards import ALLOW, SyscallAttempt, Verdict
from rnix_actors.messages.immune import AnomalyDetected

IMMUNE_ORIGIN = "immune"
"""The origin of the immune daemon's signals and guard verdicts."""

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
    patterns: Patterns = attrs.field(factory=dict)  # concrete threat signatures by call key
    hosts: frozenset[str] = frozenset()  # net items some template has learned
    watched: frozenset[str] = frozenset()  # device paths some signature names


class Shared:
    """The state guards and daemon share: the snapshot and the live run records."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        # Agent threads create records, the daemon's thread takes finished ones (Ray results
        # adopt theirs): a record is never made again for a PID already taken.
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

    def adopt(self, pid: int, record: RunRecord) -> None:
        """Keep ``record``, made elsewhere (a process on a Ray host), as ``pid``'s: the daemon
        takes it when the process's exit arrives. Ignored for a pid that already finished."""
        with self._lock:
            if pid not in self._closed:
                self.records.setdefault(pid, record)

    def live(self) -> dict[int, str]:
        """The template of every process with a record (each made a call and is running)."""
        with self._lock:  # records gain entries on agents' threads: copy, never iterate live
            return {pid: record.template for pid, record in self.records.items()}

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
        self.records = shared.records
        self.report = report

    def check(self, attempt: SyscallAttempt) -> Verdict:
        """The guard. Install the bound method (``add_guard(guard.check)``): the kernel calls
        it before every call, and a bound method is called faster than an instance."""
        snap = self.shared.snapshot
        record = self.records.get(attempt.pid)
        if record is not None and record.armed is snap:
            # The common case, in the fewest steps (it runs before every call): with the
            # counts this attempt makes still within the caps the last full check set against
            # this snapshot, no limit can be reached. Count it and allow it.
            if attempt.syscall == "ReasonStep":
                caps = record.step_caps
                tokens = attempt.tokens
                if (
                    tokens <= caps[0]
                    and attempt.duration_ms <= caps[1]
                    and record.run_tokens + tokens <= caps[2]
                    and record.steps + 1 <= caps[3]
                ):
                    record.begin_step(attempt.step, tokens, attempt.duration_ms)
                    return ALLOW
            elif attempt.device not in snap.watched:
                counted = record.paths.get((attempt.syscall, attempt.device))
                step = attempt.step
                if (
                    counted is not None
                    and step == record.step
                    and (not attempt.args or self._judged(record, counted.key, attempt))
                ):
                    in_step = counted.in_step + 1 if counted.step == step else 1
                    dev = counted.dev
                    if (
                        in_step <= counted.step_cap
                        and counted.in_run < counted.run_cap
                        and dev.calls < dev.cap
                    ):
                        # `KeyCount.count`, inlined (this runs before every call); the
                        # property test in tests/test_immune_guard.py holds the two together.
                        if in_step == 1 and counted.in_step:
                            counted.earlier.append((counted.step, counted.in_step))
                        counted.step = step
                        counted.in_step = in_step
                        counted.in_run += 1
                        dev.calls += 1
                        record.calls += 1
                        if record.last is not counted:
                            record.pairs.add((record.last, counted))
                            record.last = counted
                        return ALLOW
        return self._check(snap, record, attempt)

    @staticmethod
    def _judged(record: RunRecord, key: str, attempt: SyscallAttempt) -> bool:
        """Whether every destination and host of the call was already judged in this run
        (read-only calls naming no host have none)."""
        side = attempt.effect is not Effect.READ
        args = attempt.args
        if not side and not has_host(args):
            return True
        return record.items.issuperset(call_items(key, args, side))

    __call__ = check

    def _check(self, snap: Snapshot, record: RunRecord | None, attempt: SyscallAttempt) -> Verdict:
        """Count the attempt and judge it in full against the snapshot."""
        if snap.stopped:
            return ALLOW
        if record is None:
            record = self.shared.record(attempt.pid, attempt.template)
            if record is None:
                return ALLOW
        found = full_check(snap, record, attempt)
        if not found:
            return ALLOW
        # One alert per metric and run: after a user resumes, the same deviation passes.
        fresh = tuple(a for a in found if a.metric not in record.reported)
        record.reported.update(a.metric for a in fresh)
        record.minted.update(a.threat for a in fresh if not a.known)
        record.minted.update(a.item for a in fresh if a.item and not a.known)
        if not fresh:
            return ALLOW
        high = [a for a in fresh if a.severity == HIGH]
        suspend = snap.enforce and bool(high)
        self.report(
            AnomalyDetected(
                attempt.pid, attempt.template, attempt.step, fresh, suspend, attempt.device
            )
        )
        if not suspend:
            return ALLOW
        return Verdict("suspend", "; ".join(a.describe() for a in high), origin=IMMUNE_ORIGIN)


def full_check(snap: Snapshot, record: RunRecord, attempt: SyscallAttempt) -> list[Anomaly]:
    """Count ``attempt`` into ``record`` and judge it in full against ``snap``: what the
    guard's fast path must agree with (the property test holds them together)."""
    record.arm(snap)
    baseline = snap.baselines.get(attempt.template)
    # A pattern this very run made known is not a re-appearance of a known threat.
    known = snap.known - record.minted if record.minted else snap.known
    if attempt.syscall == "ReasonStep":
        record.begin_step(attempt.step, attempt.tokens, attempt.duration_ms)
        return check_model_step(baseline, record, snap.settings, known)
    side = attempt.effect is not Effect.READ
    before = record.last
    context = before.key if before is not None else ""
    counted = record.add_call(attempt.step, attempt.syscall, attempt.device, side)
    args = attempt.args
    items = call_items(counted.key, args, side) if args and (side or has_host(args)) else ()
    found: list[Anomaly] = []
    # Signatures apply where the template knows what is normal: a template still learning
    # (a new task that really pays) must not be kept from learning by another's attack.
    if baseline is not None and baseline.active:
        learned = baseline.profile.items
        signed = match_signature(snap.patterns, learned, counted, items, context, record.calls)
        if signed is not None and signed.item not in record.minted:
            found.append(signed)
    novel = judge_items(baseline, record, counted, items, snap.settings, snap.hosts, context)
    if novel is not None and not found:
        found.append(novel)
    record.items.update(items)
    counts = check_call(baseline, record, counted, snap.settings, known)
    found += [attrs.evolve(a, context=context, call_index=record.calls) for a in counts]
    return found
