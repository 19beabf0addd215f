"""Threat memory: readable names, dedup by pattern, TTL, cap, forget."""

from __future__ import annotations

import pytest

from rnix_actors.immune.baseline import (
    RUN_COUNT,
    RUN_SHARE,
    RUN_STEPS,
    STEP_COUNT,
    STEP_DURATION,
    STEP_TOKENS,
)
from rnix_actors.immune.threats import DAY, NEW_DEVICE, ThreatMemory, threat_name

T0 = 1_700_000_000.0


@pytest.mark.parametrize(
    ("family", "detail", "name"),
    [
        (STEP_COUNT, "Exec /dev/shell", "shell-injection-pattern"),
        (RUN_SHARE, "/dev/shell", "shell-injection-pattern"),
        (RUN_COUNT, "Open /dev/fs", "rapid-file-enumeration"),
        (STEP_COUNT, "Read /dev/fs", "rapid-file-enumeration"),
        (STEP_COUNT, "Write /dev/fs", "mass-file-write"),
        (STEP_TOKENS, "", "excessive-token-drain"),
        (STEP_DURATION, "", "slow-reasoning-step"),
        (RUN_STEPS, "", "runaway-reasoning-loop"),
        (NEW_DEVICE, "/dev/net/http", "unusual-device-access"),
        (RUN_COUNT, "Write /dev/banking/send_money", "send-money-burst"),
        (RUN_COUNT, "Read /proc", "process-table-scan"),
    ],
)
def test_names_are_readable_kebab_case(family: str, detail: str, name: str) -> None:
    assert threat_name(family, detail) == name


def test_the_same_pattern_is_one_signature_with_more_hits() -> None:
    memory = ThreatMemory(ttl_days=30, cap=10)
    first, change = memory.record("shell-injection-pattern", "step.count:x", "a", "d1", T0)
    assert change.saved == (first,) and first.hits == 1
    again, _ = memory.record("shell-injection-pattern", "run.count:x", "b", "d2", T0 + 60)
    assert len(memory.list()) == 1
    assert (again.hits, again.created_at, again.last_seen) == (2, T0, T0 + 60)
    assert (again.template, again.detail) == ("a", "d1")  # the first sighting is kept


def test_signatures_expire_after_ttl_days_without_a_sighting() -> None:
    memory = ThreatMemory(ttl_days=30, cap=0)
    memory.record("old", "m", "t", "d", T0)
    memory.record("seen-again", "m", "t", "d", T0)
    memory.record("seen-again", "m", "t", "d", T0 + 20 * DAY)
    change = memory.prune(T0 + 31 * DAY)
    assert change.removed == ("old",)
    assert memory.names() == {"seen-again"}
    forever = ThreatMemory(ttl_days=0, cap=0)
    forever.record("old", "m", "t", "d", T0)
    assert forever.prune(T0 + 10_000 * DAY).removed == ()


def test_the_cap_evicts_the_least_recently_seen() -> None:
    memory = ThreatMemory(ttl_days=0, cap=3)
    for i, name in enumerate(["a", "b", "c"]):
        memory.record(name, "m", "t", "d", T0 + i)
    memory.record("a", "m", "t", "d", T0 + 10)  # a is fresh again
    _, change = memory.record("d", "m", "t", "d", T0 + 11)
    assert change.removed == ("b",)
    assert memory.names() == {"a", "c", "d"}


def test_forget_one_or_all() -> None:
    memory = ThreatMemory(ttl_days=0, cap=0)
    for name in ("a", "b", "c"):
        memory.record(name, "m", "t", "d", T0)
    assert memory.forget("b").removed == ("b",)
    assert memory.forget("b").removed == ()
    assert memory.forget("nope").removed == ()
    assert sorted(memory.forget(all=True).removed) == ["a", "c"]
    assert memory.list() == []


def test_listing_is_oldest_first_with_local_dates() -> None:
    memory = ThreatMemory(ttl_days=0, cap=0)
    memory.record("late", "m", "t", "d", T0 + DAY)
    memory.record("early", "m", "t", "d", T0)
    listed = memory.list()
    assert [s.name for s in listed] == ["early", "late"]
    assert len(listed[0].detected) == 10 and listed[0].detected.count("-") == 2
