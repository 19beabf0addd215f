"""Judging what is new in one call, weighed by risk, and matching threat signatures.

A call's novelty is its most surprising new item (`rnix_actors.immune.novelty`): a kind of
call the template never made, or (for a known kind) a destination or host it never used.
Its probability is the Beta-Bernoulli predictive of the item's class; it is a finding when
below ``alpha``, and a high one when side-effecting (or ``RISK_WEIGHT_READ`` times rarer).
Before that, the call is matched against the concrete threat signatures: a signature whose
item the call has, and that the template has not learned as normal, is a high finding.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from rnix_actors.immune.detector import HIGH, WARN, Baseline, Settings, z_of
from rnix_actors.immune.novelty import (
    CALL_SIDE,
    DEST,
    NET,
    NET_SEEN,
    PRIORS,
    RISK_WEIGHT_READ,
    call_item,
    item_class,
)
from rnix_actors.immune.sample import KeyCount, RunRecord
from rnix_actors.immune.stats import novelty_p
from rnix_actors.immune.threats import item_threat
from rnix_actors.messages.anomaly import KNOWN, NOVEL, Anomaly

Patterns = Mapping[str, Mapping[str, str]]
"""Threat signatures for the guard: call key -> {item: signature key}."""

SIDE_CLASSES = frozenset({CALL_SIDE, DEST, NET})


def _subject(key: str) -> str:
    syscall, _, device = key.partition(" ")
    return f"{device} {syscall}" if device == "/dev/fs" else device


def _finding(
    family: str, item: str, key: str, p: float | None, severity: str, context: str, index: int
) -> Anomaly:
    return Anomaly(
        family, f"{family}:{item}", _subject(key), 1.0, None, None, z_of(p),
        item_threat(item, key), family == KNOWN, p, severity, item, context, index, "", key,
    )  # fmt: skip


def match_signature(
    patterns: Patterns,
    learned: frozenset[str],
    counted: KeyCount,
    items: tuple[str, ...],
    context: str,
    index: int,
) -> Anomaly | None:
    """The first signature this call matches (one the template has not learned), if any."""
    found = patterns.get(counted.key)
    if not found:
        return None
    for item in (call_item(counted.key, counted.side), *items):
        sig = found.get(item)
        if sig is not None and item not in learned:
            known = _finding(KNOWN, item, counted.key, 0.0, HIGH, context, index)
            return attrs.evolve(known, signature=sig)
    return None


def class_p(baseline: Baseline, item: str, hosts: frozenset[str]) -> tuple[float, bool]:
    """(predictive probability of something new of ``item``'s class, side-effecting?)."""
    cls = item_class(item)
    if cls == NET and item in hosts:
        cls = NET_SEEN  # another template has used this host: ordinary novelty
    a, b = PRIORS.get(cls, (1.0, 1.0))
    profile = baseline.profile
    return novelty_p(profile.fresh.get(cls, 0), profile.runs, a, b), cls in SIDE_CLASSES


def judge_items(
    baseline: Baseline | None,
    record: RunRecord,
    counted: KeyCount,
    items: tuple[str, ...],
    settings: Settings,
    hosts: frozenset[str],
    context: str,
) -> Anomaly | None:
    """The novelty finding of a call just counted into ``record`` (before it runs)."""
    if baseline is None or not baseline.active:
        return None
    learned = baseline.profile.items
    call = call_item(counted.key, counted.side)
    if call not in learned:
        candidates = [call] if counted.in_run == 1 else []
        candidates += [i for i in items if i not in record.items and item_class(i) == NET]
    else:
        candidates = [i for i in items if i not in learned and i not in record.items]
    best: tuple[float, str, float, bool] | None = None
    for item in candidates:
        p, side = class_p(baseline, item, hosts)
        weighted = p if side else p * RISK_WEIGHT_READ
        if p < settings.alpha and (best is None or weighted < best[0]):
            best = (weighted, item, p, side)
    if best is None:
        return None
    weighted, item, p, _ = best
    severity = HIGH if weighted < settings.alpha else WARN
    return _finding(NOVEL, item, counted.key, p, severity, context, record.calls)


def score_items(
    baseline: Baseline | None, items: frozenset[str], settings: Settings, hosts: frozenset[str]
) -> list[Anomaly]:
    """The novelty findings of a finished run (for runs whose calls were made before the
    baseline was active, or before its last update): one per new item."""
    if baseline is None or not baseline.active:
        return []
    learned = baseline.profile.items
    new_calls = {i.partition(":")[2] for i in items if i.startswith("call.") and i not in learned}
    found = []
    for item in sorted(items - learned):
        kind, _, rest = item.partition(":")
        if kind == "seq" or (kind == "dest" and rest.partition("|")[0] in new_calls):
            continue
        key = rest if kind.startswith("call.") else rest.partition("|")[0] if kind == "dest" else ""
        p, side = class_p(baseline, item, hosts)
        weighted = p if side else p * RISK_WEIGHT_READ
        if p < settings.alpha:
            severity = HIGH if weighted < settings.alpha else WARN
            found.append(_finding(NOVEL, item, key, p, severity, "", 0))
    return found
