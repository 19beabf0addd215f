"""The guard's fast path: a call within the caps of the last full check is allowed unchecked.

The property: over any run and any baseline, the guard reports exactly what a full check
of every call would report (the caps never hide an anomaly), also across a snapshot swap.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rnix_actors.immune.baseline import ProfileBuilder
from rnix_actors.immune.detector import Baseline, Settings, compile_baseline
from rnix_actors.immune.guard import ImmuneGuard, Shared, Snapshot, full_check
from rnix_actors.immune.novelty import call_item
from rnix_actors.immune.sample import RunRecord, RunSample, StepSample
from rnix_actors.kernel.devices import Effect
from rnix_actors.messages.guards import SyscallAttempt
from rnix_actors.messages.immune import AnomalyDetected

SETTINGS = Settings(threshold=2.0, min_samples=5)
LEARNED = ("Exec /dev/shell", "Open /dev/fs", "Write /dev/fs", "Call /dev/x")
READ, SIDE = Effect.READ, Effect.EXTERNAL
ALICE, MALLORY = {"to": "alice"}, {"to": "mallory"}
CALLS = (("Exec", "/dev/shell", {"command": "ls"}, SIDE), ("Open", "/dev/fs", {}, READ),
         ("Write", "/dev/fs", {"path": "docs/a.md"}, Effect.WRITE),
         ("Call", "/dev/x", ALICE, SIDE), ("Call", "/dev/x", MALLORY, SIDE),
         ("Read", "/proc/12/status", {}, READ), ("Call", "/dev/new", {}, SIDE),
         ("Open", "/dev/fs", {"path": "https://evil.example/a"}, READ))  # fmt: skip
ITEMS = frozenset(
    {call_item(key, not key.startswith("Open")) for key in LEARNED}
    | {"dest:Call /dev/x|to=alice", "dest:Write /dev/fs|path=docs/"}
)
# A threat signature the second snapshot knows (the first does not).
PATTERNS = {"Call /dev/x": {"dest:Call /dev/x|to=mallory": "x-to-new-to|Call /dev/x|dest"}}

steps = st.builds(
    StepSample,
    st.integers(100, 900),
    st.floats(100.0, 3000.0),
    st.lists(st.tuples(st.sampled_from(LEARNED), st.integers(1, 4)), max_size=3, unique_by=lambda
             kc: kc[0]).map(lambda calls: tuple(sorted(calls))),
)  # fmt: skip
runs = st.lists(st.lists(steps, min_size=1, max_size=4).map(tuple), min_size=5, max_size=8)
step_event = st.tuples(
    st.just("step"),
    st.tuples(st.integers(100, 40_000), st.sampled_from([500.0, 9_000.0, 60_000.0])),
)
calls = st.tuples(st.just("call"), st.sampled_from(CALLS)).flatmap(
    lambda call: st.lists(st.just(call), min_size=1, max_size=12)  # bursts cross the limits
)
events = st.lists(st.one_of(step_event.map(lambda e: [e]), calls), max_size=30).map(
    lambda groups: [e for group in groups for e in group]
)


def baseline_of(samples: list[tuple[StepSample, ...]]) -> Baseline:
    builder = ProfileBuilder("t")
    for sample in samples:
        builder.learn(RunSample("t", sample, ITEMS))
    return compile_baseline(builder.snapshot(), SETTINGS)


def snapshot(baseline: Baseline, signatures: bool = False) -> Snapshot:
    patterns = PATTERNS if signatures else {}
    watched = frozenset({"/dev/x"}) if signatures else frozenset()
    return Snapshot(
        {"t": baseline}, frozenset(), SETTINGS, False, False, patterns, frozenset(), watched
    )


Event = tuple[str, object]


def guard_against_full_checks(
    old: Baseline, new: Baseline, events: list[Event], swap_at: int
) -> list[tuple[int, tuple[str, ...]]]:
    """Run ``events`` through a guard and through a full check of every call; assert they
    report the same anomalies at the same calls (the baseline changes at ``swap_at``), and
    return the reports."""
    shared = Shared(snapshot(old))
    reports: list[AnomalyDetected] = []
    guard = ImmuneGuard(shared, reports.append)
    reference = RunRecord("t")
    expected: list[tuple[int, tuple[str, ...]]] = []
    got: list[tuple[int, tuple[str, ...]]] = []
    step = 1
    for index, (kind, detail) in enumerate(events):
        if index == swap_at:
            # The daemon relearned and remembered a threat: caps must not carry over.
            shared.snapshot = snapshot(new, signatures=True)
        if kind == "step":
            step += 1
            assert isinstance(detail, tuple)
            tokens, ms = detail
            attempt = SyscallAttempt(7, "t", step, "ReasonStep", "/dev/llm/x", {}, tokens, ms)
        else:
            assert isinstance(detail, tuple)
            syscall, device, args, effect = detail
            attempt = SyscallAttempt(7, "t", step, syscall, device, args, effect=effect)
        found = full_check(shared.snapshot, reference, attempt)
        fresh = tuple(a.metric for a in found if a.metric not in reference.reported)
        reference.reported.update(fresh)
        reference.minted.update(a.threat for a in found if a.metric in fresh)
        reference.minted.update(a.item for a in found if a.metric in fresh and a.item)
        if fresh:
            expected.append((index, fresh))
        before = len(reports)
        guard(attempt)
        if len(reports) > before:
            got.append((index, tuple(a.metric for a in reports[-1].anomalies)))
    assert got == expected
    if events:
        assert shared.records[7].sample() == reference.sample()
    return got


@settings(max_examples=100, deadline=None)
@given(runs, runs, events, st.integers(0, 120))
def test_the_guard_reports_what_a_full_check_of_every_call_reports(
    first: list[tuple[StepSample, ...]],
    second: list[tuple[StepSample, ...]],
    events: list[Event],
    swap_at: int,
) -> None:
    guard_against_full_checks(baseline_of(first), baseline_of(second), events, swap_at)


def run_of(
    steps: int, tokens: int = 500, ms: float = 500.0, **calls: int
) -> tuple[StepSample, ...]:
    keys = {"x": "Call /dev/x", "open": "Open /dev/fs", "shell": "Exec /dev/shell"}
    counts = tuple(sorted((keys[k], n) for k, n in calls.items()))
    return tuple(StepSample(tokens, ms, counts) for _ in range(steps))


def in_steps(
    call: tuple[str, str, dict[str, str], Effect], total: int, per_step: int
) -> list[Event]:
    """``total`` calls, ``per_step`` in each step (a model answer before each group)."""
    out: list[Event] = []
    for done in range(total):
        if done % per_step == 0:
            out.append(("step", (500, 500.0)))
        out.append(("call", call))
    return out


def test_a_device_share_passing_its_limit_between_full_checks_is_caught() -> None:
    # /dev/x takes 25-40% of the calls; its counts per step and per run have room to spare.
    base = baseline_of([run_of(10, x=2 + i % 3, open=6 + i % 3) for i in range(6)])
    events = in_steps(CALLS[1], 20, 2) + in_steps(CALLS[3], 40, 3)
    reports = guard_against_full_checks(base, base, events, swap_at=-1)
    assert "run.share:/dev/x" in [m for _, found in reports for m in found]


def test_caps_set_against_an_old_baseline_do_not_carry_over() -> None:
    loose = baseline_of([run_of(2, shell=8 + i % 3) for i in range(6)])
    tight = baseline_of([run_of(2, shell=1) for _ in range(6)])
    events: list[Event] = [("step", (500, 500.0))] + [("call", CALLS[0])] * 8
    reports = guard_against_full_checks(loose, tight, events, swap_at=5)
    assert reports and reports[0][0] == 5  # the first call judged against the new baseline


def test_a_run_count_trips_on_the_first_call_beyond_its_limit() -> None:
    # One payment per run, the only call: a second is ordinary small-sample noise, but the
    # call that passes the predictive limit is judged in full, between fast-path calls.
    pays_once = baseline_of([run_of(1, x=1) + run_of(2 + i % 3) for i in range(6)])
    limit = int(pays_once.limits["run.count:Call /dev/x"].above)
    assert 2 <= limit < 8
    events: list[Event] = [("step", (500, 500.0)), ("call", CALLS[3])] * 8
    reports = guard_against_full_checks(pays_once, pays_once, events, swap_at=-1)
    assert reports[0] == (2 * limit + 1, ("run.count:Call /dev/x",))


def test_model_answers_passing_a_limit_between_full_checks_are_caught() -> None:
    # 20 steps of 1,000 tokens and 6 s: each run-level limit sits above its absolute floor.
    long = baseline_of([run_of(20 + i % 2, tokens=1000, ms=6000.0) for i in range(6)])
    # Each case stays within every other cap, so only the metric named can send it to a full
    # check: the step where it passes its limit must be judged in full.
    cases: dict[str, list[Event]] = {
        "run.tokens": [("step", (1400, 6000.0))] * 25,
        "run.steps": [("step", (100, 6000.0))] * 40,
        "step.tokens": [("step", (1000, 6000.0))] * 3 + [("step", (2500, 6000.0))],
        "step.duration_ms": [("step", (1000, 6000.0))] * 3 + [("step", (1000, 40_000.0))],
    }
    for metric, events in cases.items():
        reports = guard_against_full_checks(long, long, events, swap_at=-1)
        assert [m for _, found in reports for m in found] == [metric]
