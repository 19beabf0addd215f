"""Spawn safety as pure functions: inheritance never widens, depth text, circuit breaker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.errors import SpawnError
from rnix_actors.kernel.devices import path_within
from rnix_actors.kernel.safety import (
    CircuitBreaker,
    child_devices,
    depth_rejection,
    narrow_devices,
)

segments = st.sampled_from(["dev", "fs", "shell", "llm", "docs", "src", "proc", "x"])
device_paths = st.lists(segments, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s))
device_sets = st.frozensets(device_paths, max_size=6)


@given(device_sets, device_sets)
def test_narrowing_never_widens(parent: frozenset[str], requested: frozenset[str]) -> None:
    child = narrow_devices(parent, requested)
    for device in child:
        assert any(path_within(device, held) for held in parent)
        assert any(path_within(device, req) for req in requested)


@given(st.lists(device_sets, min_size=1, max_size=9))
def test_a_chain_of_spawns_is_monotonic(chain: list[frozenset[str]]) -> None:
    held = chain[0]
    for requested in chain[1:]:
        try:
            child = child_devices(held, requested, None)
        except SpawnError:
            return  # an empty intersection stops the chain: no fail-open
        for device in child:
            assert any(path_within(device, h) for h in held)
        held = child


def test_narrower_parent_entry_wins() -> None:
    assert narrow_devices({"/dev/fs/docs"}, {"/dev/fs"}) == {"/dev/fs/docs"}
    assert narrow_devices({"/dev/fs"}, {"/dev/fs/docs", "/dev/shell"}) == {"/dev/fs/docs"}


def test_empty_intersection_is_a_spawn_error() -> None:
    with pytest.raises(SpawnError, match="would hold no devices"):
        child_devices({"/dev/fs"}, {"/dev/shell"}, None)


def test_requested_devices_only_narrow_top_level_spawns() -> None:
    assert child_devices(None, {"/dev/fs", "/dev/shell"}, {"/dev/fs"}) == {"/dev/fs"}
    assert child_devices(None, {"/dev/fs"}, {"/dev/fs", "/dev/shell"}) == {"/dev/fs"}


def test_depth_rejection_is_the_seed_text() -> None:
    assert depth_rejection(8) == (
        "spawn rejected: maximum spawn depth 8 reached (current depth 8).\n"
        "Child processes inherit your device restrictions and cannot gain new\n"
        "permissions by spawning deeper. Use complete to report your results\n"
        "with the devices you have."
    )


def test_breaker_trips_on_three_identical_in_a_row() -> None:
    breaker = CircuitBreaker()
    assert breaker.record_error("NOT_FOUND|/dev/fs") is None
    assert breaker.record_error("NOT_FOUND|/dev/fs") is None
    reason = breaker.record_error("NOT_FOUND|/dev/fs")
    assert reason == "circuit_breaker: 3 consecutive errors with fingerprint NOT_FOUND|/dev/fs"


def test_breaker_success_resets_the_run_but_not_the_total() -> None:
    breaker = CircuitBreaker()
    for _ in range(2):
        breaker.record_error("INTERNAL|spawn")
        breaker.record_error("INTERNAL|spawn")
        breaker.record_success()
    assert not breaker.tripped
    breaker.record_error("A|x")
    reason = breaker.record_error("B|y")
    assert reason == "circuit_breaker: 6 cumulative tool errors across fingerprints"


@given(st.lists(st.one_of(st.none(), st.sampled_from(["A|x", "B|y", "C|z"])), max_size=30))
def test_breaker_trips_exactly_when_the_rules_say(ops: list[str | None]) -> None:
    breaker = CircuitBreaker()
    total = run = 0
    last = None
    expected = False
    for op in ops:
        if op is None:
            breaker.record_success()
            run, last = 0, None
            continue
        breaker.record_error(op)
        total += 1
        run = run + 1 if op == last else 1
        last = op
        expected = expected or run >= 3 or total >= 6
        assert breaker.tripped == expected
