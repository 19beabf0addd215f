"""Profile maths: Welford statistics, zero variance, one sample, late and rare metrics."""

from __future__ import annotations

import math
import statistics

from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.immune.baseline import (
    RUN_COUNT,
    RUN_SHARE,
    RUN_STEPS,
    RUN_TOKENS,
    STEP_COUNT,
    STEP_TOKENS,
    ProfileBuilder,
    Welford,
    metric,
    run_values,
)
from rnix_actors.immune.sample import RunRecord, RunSample, StepSample, device_of

SHELL = "Exec /dev/shell"
OPEN = "Open /dev/fs"


def run(*steps: dict[str, int], tokens: int = 100, template: str = "t") -> RunSample:
    return RunSample(
        template, tuple(StepSample(tokens, 5.0, tuple(sorted(s.items()))) for s in steps)
    )


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60))
def test_welford_matches_the_two_pass_formulas(values: list[float]) -> None:
    acc = Welford()
    for value in values:
        acc.add(value)
    stats = acc.freeze()
    assert stats.n == len(values)
    assert math.isclose(stats.mean, statistics.fmean(values), rel_tol=1e-9, abs_tol=1e-6)
    expected_std = statistics.stdev(values) if len(values) > 1 else 0.0
    assert math.isclose(stats.std, expected_std, rel_tol=1e-6, abs_tol=1e-4)
    assert (stats.low, stats.high) == (min(values), max(values))


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=30),
    st.lists(st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=40), max_size=4),
)
def test_adding_values_in_batches_matches_adding_them_one_by_one(
    first: list[float], batches: list[list[float]]
) -> None:
    one, batched = Welford(), Welford()
    for value in first + [v for batch in batches for v in batch]:
        one.add(value)
    for value in first:
        batched.add(value)
    for batch in batches:
        batched.add_all(batch)
    a, b = one.freeze(), batched.freeze()
    assert (a.n, a.low, a.high) == (b.n, b.low, b.high)
    assert math.isclose(a.mean, b.mean, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(a.std, b.std, rel_tol=1e-6, abs_tol=1e-4)


def test_a_batch_of_one_repeated_value_keeps_zero_variance() -> None:
    acc = Welford()
    acc.add_all([0.1 + 0.2] * 1000)
    acc.add_all([0.1 + 0.2] * 3)
    assert acc.freeze().std == 0.0


def test_zero_variance_is_exactly_zero() -> None:
    acc = Welford()
    for _ in range(7):
        acc.add(0.1 + 0.2)  # not exactly representable: rounding must not leak into σ
    stats = acc.freeze()
    assert stats.std == 0.0
    assert stats.std == 0.0 and stats.total == stats.mean * stats.n


def test_one_sample_has_no_spread() -> None:
    one = Welford()
    one.add(4.0)
    assert one.freeze() == one.freeze()
    assert (one.freeze().n, one.freeze().std, one.freeze().mean) == (1, 0.0, 4.0)
    assert Welford.zeros(5).freeze().total == 0.0


def test_run_values_count_calls_shares_tokens_and_steps() -> None:
    values = run_values(run({SHELL: 2, OPEN: 1}, {OPEN: 1}))
    assert values[metric(RUN_COUNT, SHELL)] == 2
    assert values[metric(RUN_COUNT, OPEN)] == 2
    assert values[metric(RUN_SHARE, "/dev/shell")] == 0.5
    assert values[RUN_TOKENS] == 200 and values[RUN_STEPS] == 2


def test_a_metric_first_seen_late_counts_zeros_for_earlier_runs() -> None:
    builder = ProfileBuilder("t")
    for _ in range(4):
        builder.learn(run({OPEN: 1}))
    builder.learn(run({OPEN: 1, SHELL: 1}))  # a rare shell call in the 5th run
    profile = builder.snapshot()
    shell_runs = profile.get(metric(RUN_COUNT, SHELL))
    assert shell_runs is not None
    assert (shell_runs.n, shell_runs.mean, shell_runs.high) == (5, 0.2, 1.0)
    # Per step, a count is only sampled where the call was made.
    shell_steps = profile.get(metric(STEP_COUNT, SHELL))
    assert shell_steps is not None and shell_steps.n == 1
    assert profile.devices == {"/dev/fs", "/dev/shell"}


def test_a_run_without_a_known_metric_adds_a_zero() -> None:
    builder = ProfileBuilder("t")
    builder.learn(run({OPEN: 1, SHELL: 3}))
    builder.learn(run({OPEN: 1}))
    stats = builder.snapshot().get(metric(RUN_COUNT, SHELL))
    assert stats is not None
    assert (stats.n, stats.mean, stats.low, stats.high) == (2, 1.5, 0.0, 3.0)
    assert builder.snapshot().get(STEP_TOKENS) is not None
    assert builder.snapshot().runs == 2


def test_run_record_closes_steps_and_builds_the_same_sample() -> None:
    record = RunRecord("t")
    record.begin_step(1, 50, 10.0)
    record.add_call(1, "Open", "/dev/fs", side=False)
    record.add_call(1, "Exec", "/dev/shell")
    record.begin_step(2, 70, 20.0)
    record.add_call(2, "Exec", "/dev/shell")
    record.items.add("net:example.org")
    assert (record.steps, record.calls, record.run_tokens) == (2, 3, 120)
    items = {"call.read:Open /dev/fs", "call.side:Exec /dev/shell", "net:example.org"}
    items |= {"seq:>Open /dev/fs", "seq:Open /dev/fs>Exec /dev/shell"}
    assert record.sample() == RunSample(
        "t",
        (
            StepSample(50, 10.0, (("Exec /dev/shell", 1), ("Open /dev/fs", 1))),
            StepSample(70, 20.0, (("Exec /dev/shell", 1),)),
        ),
        frozenset(items),
    )
    assert RunSample.from_json(record.sample().to_json()) == record.sample()


def test_proc_paths_collapse_to_one_device() -> None:
    assert device_of("/proc/12/status") == "/proc"
    assert device_of("/dev/banking/send_money") == "/dev/banking/send_money"


def test_a_profile_counts_the_runs_that_brought_something_new() -> None:
    builder = ProfileBuilder("t")
    builder.learn(RunSample("t", (), frozenset({"call.read:a", "call.side:b"})))
    builder.learn(RunSample("t", (), frozenset({"call.read:a", "call.side:b"})))
    builder.learn(RunSample("t", (), frozenset({"call.read:c", "call.side:b"})))
    profile = builder.snapshot()
    assert profile.items == {"call.read:a", "call.read:c", "call.side:b"}
    assert dict(profile.fresh) == {"call.read": 1}  # the first run does not count
    assert builder.items["call.side:b"] == 3
