"""Threat memory ("antibodies"): anomaly patterns that are recognised again at once.

A signature is created only from a *high* finding (a side-effecting call, or one far beyond
the baseline), never from a warning, and so never from benign variation or a training run.
It has a readable kebab-case name (``send-money-to-new-recipient``, ``shell-injection-
pattern``) and, for a novelty finding, the concrete pattern that fired: the kind of call, the
item (the destination, host or call that was new) and the context (the kind of call before
it). The guard matches that pattern on every call, in every template, before the call runs:
a repeat is stopped at its first matching call. Count findings (a burst) are remembered by
name, shared across templates. Signatures are deduplicated by name and pattern; one lives
until it has not been seen for ``ttl_days`` (0: forever); beyond ``cap`` (0: no cap) the
least recently seen go.

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
NOVEL = "novel"
KNOWN = "known"

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
    "unusual-device-access": "a read-only call the template has never made",
    "<tool>-burst": "more calls to the host device <tool> than the template has ever made "
    "(e.g. send-money-burst for /dev/banking/send_money)",
    "unexpected-<tool>-call": "a side-effecting call the template has never made",
    "<tool>-to-new-<argument>": "a side-effecting call to a destination the template has "
    "never used (e.g. send-money-to-new-recipient)",
    "<tool>-to-new-host": "a call naming a network host no template has used",
}


def _kebab(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def _tool(key: str) -> str:
    device = split_key(key)[1] if " " in key else key
    return _kebab(device.rstrip("/").rsplit("/", 1)[-1])


@functools.lru_cache(maxsize=4096)
def item_threat(item: str, key: str) -> str:
    """The readable name of a novelty finding of ``item`` on a call of kind ``key``."""
    kind, _, rest = item.partition(":")
    if kind == "dest":
        key, _, target = rest.partition("|")
        return f"{_tool(key)}-to-new-{_kebab(target.partition('=')[0])}"
    if kind == "net":
        return f"{_tool(key)}-to-new-host"
    if kind == "call.side":
        return f"unexpected-{_tool(rest)}-call"
    return "unusual-device-access"


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
    """One remembered pattern: where and when it was first seen, and how often since.
    ``call`` and ``item`` are the concrete pattern the guard matches (empty for a count
    finding, which is remembered by name); ``context`` the kind of call before it."""

    name: str
    family: str
    metric: str
    template: str
    detail: str
    created_at: float
    last_seen: float
    hits: int = 1
    call: str = ""
    item: str = ""
    context: str = ""

    @property
    def key(self) -> str:
        """The identity: the name, and the pattern when there is one."""
        return f"{self.name}|{self.call}|{self.item}" if self.item else self.name

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
        self._by_name = {s.key: s for s in signatures}

    def names(self) -> frozenset[str]:
        """The names of the count patterns (known by name in every template)."""
        return frozenset(s.name for s in self._by_name.values() if not s.item)

    def patterns(self) -> dict[str, dict[str, str]]:
        """Concrete patterns for the guard: call key -> {item: signature key}."""
        found: dict[str, dict[str, str]] = {}
        for sig in self._by_name.values():
            if sig.item:
                found.setdefault(sig.call, {})[sig.item] = sig.key
        return found

    def get(self, key: str) -> ThreatSignature | None:
        return self._by_name.get(key)

    def list(self) -> list[ThreatSignature]:
        """Oldest first (the order of the status listing)."""
        return sorted(self._by_name.values(), key=lambda s: (s.created_at, s.name))

    def record(
        self,
        name: str,
        metric: str,
        template: str,
        detail: str,
        now: float,
        pattern: tuple[str, str, str] = ("", "", ""),
    ) -> tuple[ThreatSignature, Change]:
        """Remember a detection: a new signature, or one more hit of a known one.
        ``pattern`` is (call key, item, context) for a novelty finding."""
        call, item, context = pattern
        fresh = ThreatSignature(
            name, metric.partition(":")[0], metric, template, detail, now, now, 1, call, item,
            context,
        )  # fmt: skip
        old = self._by_name.get(fresh.key)
        sig = fresh if old is None else attrs.evolve(old, last_seen=now, hits=old.hits + 1)
        self._by_name[sig.key] = sig
        evicted = self._evict(now)
        return sig, Change(saved=(sig,) if sig.key not in evicted else (), removed=evicted)

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
        """Remove every signature of that name (or with that key), or all with ``all``."""
        if all:
            removed = tuple(self._by_name)
            self._by_name.clear()
            return Change(removed=removed)
        gone = tuple(k for k, s in self._by_name.items() if name in (s.name, k))
        for key in gone:
            del self._by_name[key]
        return Change(removed=gone)
