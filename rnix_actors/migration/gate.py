"""Candidate ranking and the net-improvement gate: pure functions.

Expected success is a measured rate, not a guess:

- an agent's **record** is its finished runs (completed vs failed), read as a rate with a
  neutral prior: ``(successes + 1) / (runs + 2)`` — 0.5 for an agent never seen;
- the **failing agent** on this task starts from its own record, weighted as ``PRIOR_RUNS``
  runs, and is updated with what it just did on this very task (every failed attempt the
  supervisor saw): ``(task_successes + PRIOR_RUNS·rate) / (task_runs + PRIOR_RUNS)``;
- a **substitute** is discounted by how much of the capability it shares:
  ``similarity · rate``.

A migration is taken only if the best substitute's expected success is strictly higher than
the failing agent's (plus ``margin``); otherwise it is declined, with the numbers in the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import attrs

from rnix_actors.migration.similarity import SimilarityMatrix

PRIOR_RUNS = 2

Decision = Literal["migrated", "declined", "no_candidate"]


@attrs.frozen
class Record:
    """Finished runs of an agent: ``successes`` completed, ``failures`` failed."""

    successes: int = 0
    failures: int = 0

    @property
    def runs(self) -> int:
        return self.successes + self.failures

    @property
    def rate(self) -> float:
        """Success rate with a neutral (Laplace) prior: 0.5 with no runs."""
        return (self.successes + 1) / (self.runs + 2)

    def add(self, ok: bool) -> Record:
        if ok:
            return Record(self.successes + 1, self.failures)
        return Record(self.successes, self.failures + 1)

    def __str__(self) -> str:
        return f"{self.successes}/{self.runs}"


def expected_original(overall: Record, task: Record) -> float:
    """The failing agent's expected success on this task (its record, then this task)."""
    return (task.successes + PRIOR_RUNS * overall.rate) / (task.runs + PRIOR_RUNS)


def expected_substitute(similarity: float, record: Record) -> float:
    return similarity * record.rate


@attrs.frozen
class Assessment:
    """One candidate as judged; ``verdict`` is ``chosen`` or why it was passed over."""

    agent: str
    similarity: float
    record: Record
    expected: float
    devices: tuple[str, ...]
    verdict: str

    def to_dict(self) -> dict[str, object]:
        return {
            "agent": self.agent,
            "similarity": round(self.similarity, 4),
            "record": {"successes": self.record.successes, "failures": self.record.failures},
            "expected": round(self.expected, 4),
            "devices": list(self.devices),
            "verdict": self.verdict,
        }


@attrs.frozen
class Plan:
    decision: Decision
    reason: str
    original_expected: float
    candidates: tuple[Assessment, ...] = ()

    @property
    def chosen(self) -> Assessment | None:
        return next((c for c in self.candidates if c.verdict == "chosen"), None)


def _assess(
    agent: str,
    similarity: float,
    records: Mapping[str, Record],
    devices_of: Callable[[str], frozenset[str]],
    original_devices: frozenset[str],
) -> Assessment:
    """One candidate: its expected success and the devices it would run with (its own ∩
    the original's); a verdict when those rule it out."""
    record = records.get(agent, Record())
    own = devices_of(agent)
    devices = tuple(sorted(own & original_devices))
    verdict = ""
    if own and not devices:
        verdict = "no device in common" if original_devices else "original holds no devices"
    expected = expected_substitute(similarity, record)
    return Assessment(agent, similarity, record, expected, devices, verdict)


def plan_migration(
    original: str,
    matrix: SimilarityMatrix,
    min_similarity: float,
    records: Mapping[str, Record],
    task: Record,
    devices_of: Callable[[str], frozenset[str]],
    original_devices: frozenset[str],
    margin: float = 0.0,
) -> Plan:
    """Rank the substitutes of ``original`` and apply the gate.

    Candidates need ``similarity >= min_similarity`` and, when they use devices, at least one
    in common with the original (a substitute runs with its own devices ∩ the original's, never
    more; an original with no devices admits only substitutes that need none). They are ranked
    by expected success, then similarity, then name.
    """
    base = expected_original(records.get(original, Record()), task)
    similar = matrix.similar(original, 0.0)
    eligible = [s for s in similar if s.score >= min_similarity]
    if not eligible:
        top = f" (best: {similar[0].other(original)} {similar[0].score:.2f})" if similar else ""
        reason = f"no agent reaches similarity {min_similarity:.2f} with {original}{top}"
        return Plan("no_candidate", reason, base)
    candidates = (
        _assess(e.other(original), e.score, records, devices_of, original_devices) for e in eligible
    )
    assessed = sorted(candidates, key=lambda a: (-a.expected, -a.similarity, a.agent))
    viable = [a for a in assessed if not a.verdict]
    if not viable:
        reason = (
            f"no candidate shares a device with {original}"
            if original_devices
            else f"{original} held no devices, and a substitute may not gain any"
        )
        return Plan("declined", reason, base, tuple(assessed))
    best = viable[0]
    if best.expected <= base + margin:
        judged = tuple(attrs.evolve(a, verdict=a.verdict or "no net improvement") for a in assessed)
        reason = (
            f"no net improvement: best candidate {best.agent} (similarity {best.similarity:.2f}, "
            f"record {best.record}) expects {best.expected:.2f}, not above {original}'s "
            f"{base:.2f}"
        )
        return Plan("declined", reason, base, judged)
    judged = tuple(
        attrs.evolve(a, verdict="chosen" if a is best else (a.verdict or "ranked lower"))
        for a in assessed
    )
    reason = (
        f"{best.agent}: similarity {best.similarity:.2f} >= {min_similarity:.2f}, expected "
        f"success {best.expected:.2f} > {original}'s {base:.2f} (record {best.record} vs "
        f"{records.get(original, Record())} overall, {task} on this task)"
    )
    return Plan("migrated", reason, base, judged)
