"""The detector's statistics: calibrated tails, small samples, risk-weighted novelty."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.immune.baseline import ProfileBuilder
from rnix_actors.immune.detector import (
    Anomaly,
    Baseline,
    Settings,
    check_call,
    check_model_step,
    compile_baseline,
    score_run,
)
from rnix_actors.immune.novelty import call_item, call_items, hosts
from rnix_actors.immune.risk import judge_items
from rnix_actors.immune.sample import RunRecord, RunSample, StepSample
from rnix_actors.immune.stats import (
    alpha,
    continuous_limit,
    count_limit,
    count_tail,
    novelty_p,
    t_quantile,
    t_tail,
)

SETTINGS = Settings(threshold=2.0, min_samples=5)
NONE: frozenset[str] = frozenset()
SHELL = "Exec /dev/shell"
OPEN = "Open /dev/fs"
PAY = "Write /dev/bank/send_money"


def step(tokens: int = 500, ms: float = 2000.0, **calls: int) -> StepSample:
    keys = {"shell": SHELL, "open": OPEN, "pay": PAY}
    return StepSample(tokens, ms, tuple(sorted((keys[k], n) for k, n in calls.items())))


def profile(*runs: tuple[StepSample, ...], settings: Settings = SETTINGS) -> Baseline:
    builder = ProfileBuilder("t")
    for steps in runs:
        keys = {k for s in steps for k, _ in s.calls}
        items = {call_item(k, k != OPEN) for k in keys}
        if PAY in keys:
            items.add(f"dest:{PAY}|recipient=gb29")
        builder.learn(RunSample("t", steps, frozenset(items)))
    return compile_baseline(builder.snapshot(), settings)


def calls(record: RunRecord, base: Baseline, n: int, key: str, step_no: int = 1) -> list[Anomaly]:
    """Make ``n`` calls in ``step_no``; return the anomalies of the last one."""
    syscall, _, device = key.partition(" ")
    found: list[Anomaly] = []
    for _ in range(n):
        counted = record.add_call(step_no, syscall, device, key != OPEN)
        found = check_call(base, record, counted, SETTINGS, NONE)
    return found


def test_alpha_is_the_normal_tail() -> None:
    assert math.isclose(alpha(2.0), 0.02275, rel_tol=1e-3)
    assert math.isclose(alpha(3.0), 0.00135, rel_tol=1e-3)


def test_student_t_matches_known_values() -> None:
    assert math.isclose(t_tail(2.015, 5), 0.05, abs_tol=5e-4)
    assert math.isclose(t_quantile(0.025, 10), 2.228, abs_tol=2e-3)


def test_a_two_after_eight_ones_is_not_rare_but_six_is() -> None:
    assert count_tail(2, 8, 8) > 0.2
    assert count_tail(6, 8, 8) < alpha(2.0)
    assert count_limit(8, 8, alpha(2.0)) in (3, 4, 5)


@given(st.floats(0.5, 4.0), st.floats(0.5, 4.0), st.integers(0, 40), st.integers(1, 40))
def test_a_higher_threshold_never_lowers_a_limit(k1: float, k2: float, total: int, n: int) -> None:
    low, high = sorted((k1, k2))
    assert count_limit(total, n, alpha(high)) >= count_limit(total, n, alpha(low))
    assert continuous_limit(n, 500, 50, 0.1, alpha(high)) >= continuous_limit(
        n, 500, 50, 0.1, alpha(low)
    )
    assert novelty_p(0, n, 0.1, 1) <= novelty_p(0, max(1, n - 1), 0.1, 1)


def test_zero_variance_is_a_small_sample_not_a_certainty() -> None:
    flat = profile(*[(step(500, shell=1), step(500, open=1)) for _ in range(8)])
    record = RunRecord("t")
    record.begin_step(1, 500, 2000.0)
    assert calls(record, flat, 2, SHELL) == []  # 2 against a history of 1s
    assert {a.metric for a in calls(record, flat, 8, SHELL)} >= {"step.count:Exec /dev/shell"}


def test_nothing_is_judged_before_min_samples_runs() -> None:
    young = profile(*[(step(shell=1),) for _ in range(4)])
    record = RunRecord("t")
    record.begin_step(1, 500, 2000.0)
    assert calls(record, young, 40, SHELL) == []


def test_a_read_only_burst_warns_and_a_far_one_is_high() -> None:
    base = profile(*[(step(open=1),) for _ in range(8)])
    record = RunRecord("t")
    record.begin_step(1, 500, 2000.0)
    severities = []
    for _ in range(30):
        found = calls(record, base, 1, OPEN)
        severities += [a.severity for a in found]
    assert severities[0] == "warn" and "high" in severities


def test_token_spikes_need_a_real_effect() -> None:
    base = profile(*[(step(400 + 40 * i), step(500)) for i in range(8)])
    record = RunRecord("t")
    record.begin_step(1, 1_500, 2000.0)  # far beyond the t tail, below the 2,000 floor
    assert check_model_step(base, record, SETTINGS, NONE) == []
    record.begin_step(2, 50_000, 2000.0)
    assert "step.tokens" in {a.family for a in check_model_step(base, record, SETTINGS, NONE)}


def test_score_run_judges_the_finished_run() -> None:
    base = profile(*[(step(shell=1), step(open=1)) for _ in range(8)])
    burst = RunSample("t", (step(shell=20), step(open=1)))
    found = score_run(base, burst, frozenset({SHELL}), NONE)
    assert {a.metric for a in found} >= {"run.count:Exec /dev/shell"}
    assert all(a.severity == "high" for a in found if "shell" in a.metric)


def novelty(base: Baseline, key: str, args: dict[str, str], side: bool) -> Anomaly | None:
    record = RunRecord("t")
    record.begin_step(1, 500, 2000.0)
    syscall, _, device = key.partition(" ")
    counted = record.add_call(1, syscall, device, side)
    items = call_items(key, args, side)
    return judge_items(base, record, counted, items, SETTINGS, frozenset(), "")


def test_novelty_is_weighed_by_risk() -> None:
    base = profile(*[(step(open=1), step(pay=1)) for _ in range(8)])
    assert novelty(base, "Read /dev/bank/get_iban", {}, side=False) is None
    new_call = novelty(base, "Write /dev/bank/update_password", {"password": "x"}, side=True)
    assert new_call is not None and new_call.severity == "high"
    assert new_call.threat == "unexpected-update-password-call"
    assert novelty(base, PAY, {"recipient": "GB29", "amount": "7"}, side=True) is None
    new_dest = novelty(base, PAY, {"recipient": "US13", "amount": "7"}, side=True)
    assert new_dest is not None and new_dest.threat == "send-money-to-new-recipient"
    assert new_dest.item == f"dest:{PAY}|recipient=us13" and new_dest.p is not None
    assert new_dest.p < alpha(2.0) and new_dest.deviation is not None
    fetch = novelty(base, "Read /dev/web/get", {"url": "https://evil.example/x?d=1"}, False)
    assert fetch is not None and fetch.item == "net:evil.example" and fetch.severity == "high"


def test_the_threshold_trades_novelty_recall_monotonically() -> None:
    runs = [(step(open=1), step(pay=1)) for _ in range(8)]
    flagged = []
    for k in (1.5, 2.0, 2.5, 3.0):
        base = profile(*runs, settings=Settings(k, 5))
        record = RunRecord("t")
        counted = record.add_call(1, "Write", "/dev/bank/send_money", True)
        items = call_items(PAY, {"recipient": "US13"}, True)
        found = judge_items(base, record, counted, items, Settings(k, 5), frozenset(), "")
        flagged.append(found is not None)
    assert flagged == sorted(flagged, reverse=True) and flagged[0] and not flagged[-1]


def test_destinations_are_targets_not_content() -> None:
    items = call_items(
        "Write /dev/mail/send",
        {"recipients": "['a@x.org', 'B@y.org']", "body": "see www.site.org", "subject": "hi"},
        True,
    )
    assert set(items) == {
        "dest:Write /dev/mail/send|recipients=a@x.org",
        "dest:Write /dev/mail/send|recipients=b@y.org",
        "net:site.org",
    }
    assert call_items("Write /dev/fs", {"path": "docs/a/b.md", "content": "x"}, True) == (
        "dest:Write /dev/fs|path=docs/a/",
    )
    assert hosts("go to https://www.Example.com:8080/x") == ["example.com"]


def test_tokens_are_judged_on_the_log_scale() -> None:
    # Steps whose tokens vary by factors (300 to 3,000): a step a third above the largest
    # is within the spread on the log scale; one ten times larger is not.
    base = profile(*[(step(300 * (1 + i % 4)), step(3_000 - 200 * i)) for i in range(10)])
    record = RunRecord("t")
    record.begin_step(1, 4_000, 2000.0)
    assert check_model_step(base, record, SETTINGS, NONE) == []
    record = RunRecord("t")
    record.begin_step(1, 40_000, 2000.0)
    assert "step.tokens" in {a.family for a in check_model_step(base, record, SETTINGS, NONE)}
