"""Each detector family, its gates (deviation, growth, floor, invariants) and known threats."""

from __future__ import annotations

import math

import attrs
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.immune.baseline import (
    RUN_COUNT,
    RUN_SHARE,
    RUN_STEPS,
    RUN_TOKENS,
    STEP_COUNT,
    STEP_DURATION,
    STEP_TOKENS,
    ProfileBuilder,
    Stats,
    metric,
)
from rnix_actors.immune.detector import (
    GATES,
    KNOWN_FLOOR,
    MIX_MIN_CALLS,
    Anomaly,
    Baseline,
    Settings,
    check_call,
    check_model_step,
    compile_baseline,
    deviation_of,
    limit_of,
    score_run,
)
from rnix_actors.immune.sample import RunRecord, RunSample, StepSample
from rnix_actors.immune.threats import NEW_DEVICE

SETTINGS = Settings(threshold=2.0, min_samples=5)
NONE: frozenset[str] = frozenset()
SHELL = "Exec /dev/shell"
OPEN = "Open /dev/fs"


def step(tokens: int = 500, ms: float = 2000.0, **calls: int) -> StepSample:
    keys = {"shell": SHELL, "open": OPEN, "write": "Write /dev/fs"}
    return StepSample(tokens, ms, tuple(sorted((keys[k], n) for k, n in calls.items())))


def profile(*runs: tuple[StepSample, ...]) -> Baseline:
    builder = ProfileBuilder("t")
    for steps in runs:
        builder.learn(RunSample("t", steps))
    return compile_baseline(builder.snapshot(), SETTINGS)


def varied(n: int = 8) -> Baseline:
    """Runs whose shell use varies 1-3 per step and tokens 400-640 per step."""
    runs = []
    for i in range(n):
        runs.append(
            (
                step(400 + 30 * i, 1500 + 100 * i, open=1 + i % 2),
                step(450 + 20 * i, 2000, shell=1 + i % 3, open=1),
            )
        )
    return profile(*runs)


def calls(record: RunRecord, prof: Baseline, n: int, syscall: str, device: str,
          step_no: int = 1, known: frozenset[str] = NONE) -> list[Anomaly]:  # fmt: skip
    """Make ``n`` calls in ``step_no``; return the anomalies of the last one."""
    found: list[Anomaly] = []
    for _ in range(n):
        counted = record.add_call(step_no, syscall, device)
        found = check_call(prof, record, counted, SETTINGS, known)
    return found


def families(found: list[Anomaly]) -> set[str]:
    return {a.family for a in found}


def test_nothing_is_judged_before_min_samples_runs() -> None:
    young = profile(*[(step(shell=1),)] * 4)
    record = RunRecord("t")
    assert calls(record, young, 50, "Exec", "/dev/shell") == []
    assert calls(record, young, 1, "Write", "/dev/net") == []


def test_a_shell_burst_alarms_once_past_every_gate() -> None:
    prof = varied()
    record = RunRecord("t")
    record.begin_step(1, 500, 2000)
    assert calls(record, prof, 4, "Exec", "/dev/shell") == []  # below the floor of 5
    found = calls(record, prof, 1, "Exec", "/dev/shell")
    (freq,) = [a for a in found if a.family == STEP_COUNT]
    assert freq.observed == 5 and (freq.low, freq.high) == (1, 3)
    assert freq.threat == "shell-injection-pattern" and freq.deviation is not None
    assert freq.describe() == "unusual /dev/shell frequency (5/step, baseline: 1-3)"


def test_rare_but_normal_events_do_not_alarm() -> None:
    # Shell in one run out of eight, once: seeing it again, even twice, is not alarming.
    prof = profile(*[(step(open=2),)] * 7, (step(open=2, shell=1),))
    record = RunRecord("t")
    record.begin_step(1, 500, 2000)
    assert calls(record, prof, 2, "Exec", "/dev/shell") == []


def test_the_heavy_tail_stays_quiet_but_a_real_outlier_alarms() -> None:
    stats = Stats(n=20, mean=30.0, std=15.0, low=5.0, high=60.0)
    gate = GATES[STEP_COUNT]
    assert deviation_of(88, stats, gate, SETTINGS, known=False) is None  # < 1.5 x max
    deviation = deviation_of(500, stats, gate, SETTINGS, known=False)
    assert deviation is not None and math.isclose(deviation, (500 - 30) / 15)


def test_an_invariant_count_alarms_on_any_excess() -> None:
    # One payment per run, every run: a second one is the anomaly (AgentDojo-style).
    prof = profile(*[(step(open=1), step(shell=1))] * 6)
    record = RunRecord("t")
    assert calls(record, prof, 1, "Exec", "/dev/shell", step_no=2) == []
    found = calls(record, prof, 1, "Exec", "/dev/shell", step_no=3)
    (volume,) = [a for a in found if a.family == RUN_COUNT]
    assert volume.deviation is None  # no variance: an infinite deviation is not a number
    assert volume.describe() == "unusual /dev/shell volume (2/run, baseline: 1)"


def test_a_never_used_device_is_an_anomaly_on_its_first_call() -> None:
    found = calls(RunRecord("t"), varied(), 1, "Write", "/dev/net/http")
    assert [(a.family, a.threat) for a in found] == [(NEW_DEVICE, "unusual-device-access")]
    assert found[0].describe() == (
        "access to unusual device /dev/net/http (never used by this template)"
    )


def test_the_device_mix_is_judged_once_enough_calls_were_made() -> None:
    # Normal: a tenth of the calls on the shell. Now: almost all of them.
    prof = profile(*[(step(open=9, shell=1),)] * 6)
    record = RunRecord("t")
    calls(record, prof, 1, "Open", "/dev/fs")
    found: list[Anomaly] = []
    for number in range(2, 2 + MIX_MIN_CALLS):
        found += calls(record, prof, 1, "Exec", "/dev/shell", step_no=number)
    mix = [a for a in found if a.family == RUN_SHARE]
    assert len(mix) >= 1 and mix[0].observed > 0.5
    assert "unusual device mix (/dev/shell" in mix[0].describe()


def test_token_spikes_per_step_and_per_run() -> None:
    prof = varied()
    record = RunRecord("t")
    record.begin_step(1, 700, 2000)
    assert check_model_step(prof, record, SETTINGS, NONE) == []  # just above max: normal
    record.begin_step(2, 30_000, 2000)
    found = check_model_step(prof, record, SETTINGS, NONE)
    assert families(found) == {STEP_TOKENS, RUN_TOKENS}
    assert {a.threat for a in found} == {"excessive-token-drain"}
    assert "token consumption spike (30000 tokens/step, baseline: 400-" in found[0].describe()


def test_a_slow_step_and_a_runaway_loop() -> None:
    prof = varied()
    record = RunRecord("t")
    record.begin_step(1, 500, 25_000)
    (slow,) = check_model_step(prof, record, SETTINGS, NONE)
    assert (slow.family, slow.threat) == (STEP_DURATION, "slow-reasoning-step")
    assert slow.describe() == "unusual step duration (25.0s/step, baseline: 1.5-2.2s)"
    found: list[Anomaly] = []
    for number in range(2, 12):
        record.begin_step(number, 500, 2000)
        found += check_model_step(prof, record, SETTINGS, NONE)
    # The detector is stateless (the guard reports each metric once per run).
    assert {a.threat for a in found} == {"runaway-reasoning-loop"}
    assert found[0].family == RUN_STEPS and found[0].observed == 10


def test_a_known_threat_lowers_the_floor() -> None:
    prof = profile(*[(step(shell=1 + i % 2),) for i in range(8)])  # 1-2 shell calls a step
    known = frozenset({"shell-injection-pattern"})

    def frequency(known: frozenset[str]) -> list[Anomaly]:
        found = calls(RunRecord("t"), prof, 4, "Exec", "/dev/shell", known=known)
        return [a for a in found if a.family == STEP_COUNT]

    assert frequency(NONE) == []  # 4 passes deviation and growth, not the floor of 5
    assert GATES[STEP_COUNT].floor * KNOWN_FLOOR <= 4
    (freq,) = frequency(known)
    assert freq.known and freq.describe() == (
        "unusual /dev/shell frequency (4/step, baseline: 1-2; known threat shell-injection-pattern)"
    )


def test_score_run_judges_the_finished_run_once_per_metric() -> None:
    prof = varied()
    attack = RunSample("t", (step(open=1), step(shell=12), step(shell=12)))
    found = score_run(prof, attack, SETTINGS, NONE)
    names = {a.metric for a in found}
    assert metric(STEP_COUNT, SHELL) in names and metric(RUN_COUNT, SHELL) in names
    assert len(names) == len(found)
    normal = RunSample("t", (step(430, 1700, open=2), step(470, 2000, shell=2, open=1)))
    assert score_run(prof, normal, SETTINGS, NONE) == []
    new_device = RunSample("t", (StepSample(400, 1000, (("Write /dev/net", 2),)),))
    (only,) = score_run(prof, new_device, SETTINGS, NONE)
    assert (only.family, only.observed) == (NEW_DEVICE, 2)


@given(
    st.floats(0, 100),
    st.floats(0, 50),
    st.floats(0, 200),
    st.floats(0, 500),
    st.booleans(),
    st.sampled_from(sorted(GATES)),
)
def test_the_precomputed_limit_is_exactly_the_gates(
    mean: float, std: float, high: float, value: float, known: bool, family: str
) -> None:
    gate = attrs.evolve(GATES[family], exact=False)
    stats = Stats(10, mean, std, 0.0, max(high, mean))
    sigma = max(std, gate.sigma_floor, gate.rel_sigma_floor * mean)
    floor = gate.floor * (KNOWN_FLOOR if known else 1.0)
    reference = (
        (sigma == 0 or (value - mean) / sigma > SETTINGS.threshold)
        and value > stats.high * gate.growth + gate.margin
        and value >= floor
    )
    hit = limit_of(stats, gate, SETTINGS).hit(value, known)
    # The limit is the closed form of the same inequalities; allow float rounding at the edge.
    edge = abs(value - max(mean + SETTINGS.threshold * sigma, stats.high * gate.growth))
    assert hit == reference or edge < 1e-9
