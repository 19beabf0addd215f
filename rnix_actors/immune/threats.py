"""Threat memory ("antibodies"): named anomaly patterns that are recognised again at once.

A pattern's identity is its readable kebab-case name, derived from what deviated: a burst of
shell calls is ``shell-injection-pattern`` whichever template showed it, so memory is shared
across templates and deduplicated by name. A signature lives until it has not been seen for
``ttl_days`` (0: forever); beyond ``cap`` signatures (0: no cap) the least recently seen go.

Pure and single-threaded: the daemon owns the `ThreatMemory` and persists its changes.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable

import attrs

from rnix_actors.immune.baseline import (
    RUN_STEPS,
    RUN_TOKENS,
    STEP_DURATION,
    STEP_TOKENS,
)
from rnix_actors.immune.sample import split_key

NEW_DEVICE = "device.new"
DAY = 86_400.0

DESCRIPTIONS = {
    "shell-injection-pattern": "more /dev/shell commands (per step, per run or as a share of "
    "calls) than the template has ever run",
    "rapid-file-enumeration": "more /dev/fs listing, globbing or reading than the template "
    "has ever done",
    "mass-file-write": "more /dev/fs writes than the template has ever made",
    "process-table-scan": "more /proc reads than the template has ever made",
    "excessive-token-drain": "model tokens per step or per run far above the template's",
    "slow-reasoning-step": "a model step far slower than the template's slowest",
    "runaway-reasoning-loop": "far more reasoning steps than the template's longest run",
    "unusual-device-access": "a call to a device the template has never used",
    "<tool>-burst": "more calls to the host device <tool> than the template has ever made "
    "(e.g. send-money-burst for /dev/banking/send_money)",
}


def _kebab(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


@functools.lru_cache(maxsize=4096)
def threat_name(family: str, detail: str) -> str:
    """The readable pattern name of an anomaly of metric ``family:detail``."""
    if family == NEW_DEVICE:
        return "unusual-device-access"
    if family in (STEP_TOKENS, RUN_TOKENS):
        return "excessive-token-drain"
    if family == STEP_DURATION:
        return "slow-reasoning-step"
    if family == RUN_STEPS:
        return "runaway-reasoning-loop"
    # Counts carry a call key ("Exec /dev/shell"), shares a bare device path.
    syscall, device = split_key(detail) if " " in detail else ("", detail)
    if device == "/dev/shell":
        return "shell-injection-pattern"
    if device == "/dev/fs":
        return "mass-file-write" if syscall == "Write" else "rapid-file-enumeration"
    if device == "/proc":
        return "process-table-scan"
    return f"{_kebab(device.rstrip('/').rsplit('/', 1)[-1])}-burst"


@attrs.frozen
class ThreatSignature:
    """One remembered pattern: where and when it was first seen, and how often since."""

    name: str
    family: str
    metric: str
    template: str
    detail: str
    created_at: float
    last_seen: float
    hits: int = 1

    @property
    def detected(self) -> str:
        """The local date of the first detection (``2026-03-10``)."""
        return time.strftime("%Y-%m-%d", time.localtime(self.created_at))

    def to_dict(self) -> dict[str, object]:
        return {**attrs.asdict(self), "detected": self.detected}


@attrs.frozen
class Change:
    """What a memory operation did, for the caller to persist."""

    saved: tuple[ThreatSignature, ...] = ()
    removed: tuple[str, ...] = ()


class ThreatMemory:
    """Signatures by name, with TTL and cap."""

    def __init__(self, ttl_days: int, cap: int, signatures: Iterable[ThreatSignature] = ()) -> None:
        self.ttl = ttl_days * DAY
        self.cap = cap
        self._by_name = {s.name: s for s in signatures}

    def names(self) -> frozenset[str]:
        return frozenset(self._by_name)

    def get(self, name: str) -> ThreatSignature | None:
        return self._by_name.get(name)

    def list(self) -> list[ThreatSignature]:
        """Oldest first (the order of the status listing)."""
        return sorted(self._by_name.values(), key=lambda s: (s.created_at, s.name))

    def record(
        self, name: str, metric: str, template: str, detail: str, now: float
    ) -> tuple[ThreatSignature, Change]:
        """Remember a detection: a new signature, or one more hit of a known one."""
        old = self._by_name.get(name)
        if old is None:
            family = metric.partition(":")[0]
            sig = ThreatSignature(name, family, metric, template, detail, now, now)
        else:
            sig = attrs.evolve(old, last_seen=now, hits=old.hits + 1)
        self._by_name[name] = sig
        evicted = self._evict(now)
        return sig, Change(saved=(sig,) if name not in evicted else (), removed=evicted)

    def prune(self, now: float) -> Change:
        """Drop expired signatures and those beyond the cap."""
        return Change(removed=self._evict(now))

    def _evict(self, now: float) -> tuple[str, ...]:
        removed = []
        if self.ttl:
            removed = [n for n, s in self._by_name.items() if now - s.last_seen > self.ttl]
        for name in removed:
            del self._by_name[name]
        if self.cap and len(self._by_name) > self.cap:
            by_age = sorted(self._by_name.values(), key=lambda s: (s.last_seen, s.created_at))
            for sig in by_age[: len(self._by_name) - self.cap]:
                del self._by_name[sig.name]
                removed.append(sig.name)
        return tuple(removed)

    def forget(self, name: str | None = None, *, all: bool = False) -> Change:
        """Remove the named signature, or every signature with ``all``."""
        if all:
            removed = tuple(self._by_name)
            self._by_name.clear()
            return Change(removed=removed)
        if name is not None and self._by_name.pop(name, None) is not None:
            return Change(removed=(name,))
        return Change()
