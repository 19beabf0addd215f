"""Anomaly detection against a template's Normal Profile. Pure functions.

Every rule is a tail probability under the baseline (`rnix_actors.immune.stats`): a value is
anomalous when a run like the learned ones would reach it with probability below
``alpha = P(Z > deviation_threshold)``. Nothing is judged before ``min_samples`` runs.

* counts (calls of one kind per step and per run, steps per run): negative-binomial tails;
* tokens and step duration: Student-t tails, never below the highest value a learned run
  reached, with a minimum effect size (``FLOORS``);
* the access mix: a device's share above ``mean + k·σ`` and 20 points above its maximum;
* novelty (a kind of call, destination or host the template never used): the Beta-Bernoulli
  probability of its class (`rnix_actors.immune.novelty`).

Each finding has a *severity*. It is ``high`` when the call is side-effecting (write or
external, or it names a never-seen network host) or when a read-only finding is rarer than
``alpha / RISK_WEIGHT_READ``; only high findings suspend in enforce mode and become threat
signatures. A call matching a threat signature is a high finding whatever the baseline.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Iterable, Mapping

import attrs

from rnix_actors.immune.baseline import (
    LOG,
    RUN_COUNT,
    RUN_SHARE,
    RUN_STEPS,
    RUN_TOKENS,
    STEP_COUNT,
    STEP_DURATION,
    STEP_TOKENS,
    Stats,
    TemplateProfile,
    family_of,
    metric,
    run_values,
    step_columns,
)
from rnix_actors.immune.novelty import RISK_WEIGHT_READ
from rnix_actors.immune.sample import KeyCount, RunRecord, RunSample
from rnix_actors.immune.stats import alpha, continuous_limit, continuous_tail, count_limit
from rnix_actors.immune.stats import count_tail as _count_tail
from rnix_actors.immune.threats import threat_name
from rnix_actors.messages.anomaly import Anomaly

__all__ = ["Anomaly", "Baseline", "Limit", "Settings", "check_call", "check_model_step"]

MIX_MIN_CALLS = 10
"""The access mix is judged only once a run made this many calls: early shares are noise."""

FLOORS: Mapping[str, float] = {STEP_TOKENS: 2_000, RUN_TOKENS: 20_000, STEP_DURATION: 10_000}
"""Minimum effect sizes: a token or time figure below these is never an anomaly."""

LOG_SCALE: Mapping[str, float] = {STEP_TOKENS: 0.25, RUN_TOKENS: 0.25, STEP_DURATION: 0.5}
"""Prior spread of continuous metrics on the log scale (0.25: about 28% either way)."""

SHARE_MARGIN = 0.2
SHARE_SIGMA_FLOOR = 0.05
SHARE_FLOOR = 0.5
HIGH = "high"
WARN = "warn"
COUNTS = (STEP_COUNT, RUN_COUNT, RUN_STEPS)


@attrs.frozen
class Settings:
    threshold: float = 2.0
    min_samples: int = 5

    @property
    def alpha(self) -> float:
        return alpha(self.threshold)


@attrs.frozen
class Limit:
    """A metric's rule folded into numbers: a value above ``above`` is anomalous; above
    ``high`` it is high-risk even on a read-only call."""

    above: float
    high: float


def _count_limit(stats: Stats, family: str, runs: int, a: float, side: bool) -> Limit:
    # Steps of one run are not independent: per-step evidence weighs as much as the runs.
    n = float(runs if family == STEP_COUNT else stats.n)
    total = stats.mean * n
    if side:
        return Limit(count_limit(total, n, a), count_limit(total, n, a))
    # A read-only excess must be RISK_WEIGHT_READ times rarer to alert, and that again
    # to be high (suspend, become a threat signature).
    w = RISK_WEIGHT_READ
    return Limit(count_limit(total, n, a / w), count_limit(total, n, a / (w * w)))


def limit_of(
    name: str, stats: Stats, profile: TemplateProfile, settings: Settings, side: bool = True
) -> Limit:
    """The limit of one metric of ``profile`` (so the hot path is one comparison);
    ``side``: the metric counts a side-effecting kind of call."""
    family = family_of(name)[0]
    a = settings.alpha
    if family in COUNTS:
        return _count_limit(stats, family, profile.runs, a, side or family == RUN_STEPS)
    if family == RUN_SHARE:
        sigma = max(stats.std, SHARE_SIGMA_FLOOR)
        above = max(stats.mean + settings.threshold * sigma, stats.high + SHARE_MARGIN)
        return Limit(max(above, SHARE_FLOOR), math.inf)
    if family in (STEP_TOKENS, STEP_DURATION):
        a /= max(1.0, _mean_steps(profile))  # judged at every step: the run's rate stays a
    logs = profile.get(family + LOG) or _log_of(stats)
    above = math.expm1(continuous_limit(logs.n, logs.mean, logs.std, 0.0, a, LOG_SCALE[family]))
    # Tokens and durations vary by factors and have long tails (one long final answer per
    # run): judged on the log scale, and a value some learned run reached is never anomalous.
    return Limit(max(above, stats.high, FLOORS[family]), -math.inf)


def _log_of(stats: Stats) -> Stats:
    """A metric with no log-scale companion (a profile from before they existed), seen as
    the log of its mean."""
    return Stats(stats.n, math.log1p(max(0.0, stats.mean)), 0.0, 0.0, 0.0)


def _mean_steps(profile: TemplateProfile) -> float:
    steps = profile.get(RUN_STEPS)
    return steps.mean if steps is not None else 1.0


def tail_of(name: str, value: float, stats: Stats, profile: TemplateProfile) -> float | None:
    """P(a learned-like run reaches ``value``) for one metric (None for the access mix)."""
    family = family_of(name)[0]
    if family in COUNTS:
        n = float(profile.runs if family == STEP_COUNT else stats.n)
        return _count_tail(value, stats.mean * n, n)
    if family == RUN_SHARE:
        return None
    logs = profile.get(family + LOG) or _log_of(stats)
    return continuous_tail(
        math.log1p(max(0.0, value)), logs.n, logs.mean, logs.std, 0.0, LOG_SCALE[family]
    )


def z_of(p: float | None) -> float | None:
    """The deviation ``k`` whose normal tail is ``p``: ``p < alpha(k)`` iff ``z_of(p) > k``."""
    if p is None or p <= 1e-300 or p >= 1.0:
        return None
    return round(-statistics.NormalDist().inv_cdf(p), 2)


@attrs.frozen
class Baseline:
    """A profile compiled for checking: limits per metric, and per family for metrics it
    lacks (they are judged as if one run had shown zero: little evidence either way)."""

    profile: TemplateProfile
    limits: Mapping[str, Limit]
    missing: Mapping[str, Limit]
    active: bool
    # Thresholds filled on first use, read on every check: call key -> (step, run, share);
    # "" -> (step tokens, step duration, run tokens, run steps) for model answers.
    bounds: dict[str, tuple[float, ...]] = attrs.field(factory=dict, eq=False, repr=False)


ZERO = Stats(1, 0.0, 0.0, 0.0, 0.0)


def compile_baseline(profile: TemplateProfile, settings: Settings) -> Baseline:
    """Precompute the limits of ``profile``."""
    limits = {
        name: limit_of(name, s, profile, settings, _side_metric(name, profile.items))
        for name, s in profile.stats.items()
        if not name.endswith(LOG)
    }
    one = attrs.evolve(profile, runs=1)
    missing = {
        family: limit_of(family, ZERO, one, settings)
        for family in (STEP_COUNT, RUN_COUNT, RUN_SHARE)
    }
    for family in (STEP_COUNT, RUN_COUNT):
        missing[family + READ_ONLY] = limit_of(family, ZERO, one, settings, side=False)
    for family in (STEP_TOKENS, STEP_DURATION, RUN_TOKENS, RUN_STEPS):
        missing[family] = limits.get(family) or limit_of(family, ZERO, one, settings)
    return Baseline(profile, limits, missing, profile.runs >= settings.min_samples)


READ_ONLY = "/read"
"""Suffix of the `Baseline.missing` entries of read-only kinds of call."""


def _side_metric(name: str, items: frozenset[str]) -> bool:
    """Whether a count metric counts a side-effecting kind of call (by the profile's items;
    a kind of call the profile cannot place is side-effecting)."""
    family, detail = family_of(name)
    return family not in (STEP_COUNT, RUN_COUNT) or f"call.read:{detail}" not in items


def _subject(family: str, detail: str) -> str:
    if family in (STEP_COUNT, RUN_COUNT):
        syscall, _, device = detail.partition(" ")
        # /dev/fs is the one device with several kinds of call (list, read, write).
        return f"{device} {syscall}" if device == "/dev/fs" else device
    return detail


def judge(
    baseline: Baseline,
    name: str,
    value: float,
    known: frozenset[str],
    side: bool = True,
) -> Anomaly | None:
    """Judge one metric value; ``side``: it counts a side-effecting call. The fast path is
    the precomputed limit; the record is only built for a value above it."""
    family, detail = family_of(name)
    limit = baseline.limits.get(name)
    if limit is None:
        counted = family in (STEP_COUNT, RUN_COUNT) and not side
        limit = baseline.missing[family + READ_ONLY if counted else family]
    if value <= limit.above:
        return None
    profile = baseline.profile
    stats = profile.get(name)
    if stats is None:
        stats, profile = ZERO, attrs.evolve(profile, runs=1)
    p = tail_of(name, value, stats, profile)
    threat = threat_name(family, detail)
    high = value > limit.high if family in (STEP_COUNT, RUN_COUNT, RUN_SHARE) else True
    high = high or (side and family == RUN_SHARE)
    return Anomaly(
        family, name, _subject(family, detail), value,
        stats.low, stats.high, z_of(p), threat, threat in known, p, HIGH if high else WARN,
        call=detail if family in (STEP_COUNT, RUN_COUNT) else "",
    )  # fmt: skip


def _all(
    baseline: Baseline, values: Iterable[tuple[str, float, bool]], known: frozenset[str]
) -> list[Anomaly]:
    found = (judge(baseline, name, value, known, side) for name, value, side in values)
    return [a for a in found if a is not None]


@functools.lru_cache(maxsize=4096)
def _call_metrics(key: str, device: str) -> tuple[str, str, str]:
    return metric(STEP_COUNT, key), metric(RUN_COUNT, key), metric(RUN_SHARE, device)


MODEL_METRICS = (STEP_TOKENS, STEP_DURATION, RUN_TOKENS, RUN_STEPS)
"""The metrics of model answers, in the order of `model_bounds`."""


def model_bounds(baseline: Baseline) -> tuple[float, ...]:
    """The alert thresholds of `MODEL_METRICS` (cached in the baseline)."""
    found = baseline.bounds.get("")
    if found is None:
        limits, missing = baseline.limits, baseline.missing
        found = tuple((limits.get(n) or missing[n]).above for n in MODEL_METRICS)
        baseline.bounds[""] = found
    return found


def call_bounds(baseline: Baseline, key: str, device: str) -> tuple[float, ...]:
    """The alert thresholds of a call key's per-step count, per-run count and its device's
    share of the run's calls (cached in the baseline)."""
    return baseline.bounds.get(key) or _bounds(baseline, key, device)


def call_metrics(key: str, device: str) -> tuple[str, str, str]:
    """The metric names `call_bounds` gives thresholds for."""
    return _call_metrics(key, device)


def _bounds(baseline: Baseline, key: str, device: str) -> tuple[float, ...]:
    step_name, run_name, share_name = _call_metrics(key, device)
    limits, missing = baseline.limits, baseline.missing
    found = (
        (limits.get(step_name) or missing[STEP_COUNT]).above,
        (limits.get(run_name) or missing[RUN_COUNT]).above,
        (limits.get(share_name) or missing[RUN_SHARE]).above,
    )
    baseline.bounds[key] = found
    return found


NO_CAP = 1 << 62
"""The cap of a count no limit applies to."""


def _cap(bound: float) -> int:
    """The largest whole count that is ``<= bound``."""
    return math.floor(bound) if bound < NO_CAP else NO_CAP


def _share_cap(bound: float, device_calls: int, calls: int) -> int:
    """The device-call count up to which the device's share cannot pass ``bound``: with
    ``k`` more calls to it, ``(d + k) / (c + k) <= b`` iff ``k <= (b·c - d) / (1 - b)``.
    Calls to other devices only lower the share, so the cap holds whatever they do."""
    if bound >= 1.0:
        return NO_CAP
    room = (bound * calls - device_calls) / (1.0 - bound)
    return device_calls + max(0, math.floor(room - 1e-9))


def check_call(
    baseline: Baseline | None,
    record: RunRecord,
    counted: KeyCount,
    settings: Settings,
    known: frozenset[str],
) -> list[Anomaly]:
    """Judge the counts of a call just counted into ``record`` (before it runs). When they
    pass, set the caps of its key and device, so the calls after it need no full check of
    their counts until one passes a cap. Novelty is judged apart (`judge_items`)."""
    if baseline is None or not baseline.active:
        counted.step_cap = counted.run_cap = counted.dev.cap = NO_CAP
        return []
    key, device, dev = counted.key, counted.device, counted.dev
    bounds = baseline.bounds.get(key) or _bounds(baseline, key, device)
    step_value, run_value, calls = counted.in_step, counted.in_run, record.calls
    share = dev.calls / calls if calls >= MIX_MIN_CALLS else 0.0
    if step_value <= bounds[0] and run_value <= bounds[1] and share <= bounds[2]:
        counted.step_cap, counted.run_cap = _cap(bounds[0]), _cap(bounds[1])
        dev.cap = _share_cap(bounds[2], dev.calls, calls)
        return []
    step_name, run_name, share_name = _call_metrics(key, device)
    side = counted.side
    values = [(step_name, float(step_value), side), (run_name, float(run_value), side)]
    if calls >= MIX_MIN_CALLS:
        values.append((share_name, share, side))
    return _all(baseline, values, known)


def check_model_step(
    baseline: Baseline | None,
    record: RunRecord,
    settings: Settings,
    known: frozenset[str],
) -> list[Anomaly]:
    """Judge a model answer just recorded (before any of its tool calls runs). When it
    passes, the thresholds become the record's ``step_caps``: a model answer within them
    needs no full check."""
    if baseline is None or not baseline.active:
        record.step_caps = (math.inf, math.inf, math.inf, math.inf)
        return []
    bounds = baseline.bounds.get("") or model_bounds(baseline)
    steps = record.steps
    if (  # the hot path: four comparisons
        record.tokens <= bounds[0]
        and record.duration_ms <= bounds[1]
        and record.run_tokens <= bounds[2]
        and steps <= bounds[3]
    ):
        record.step_caps = (bounds[0], bounds[1], bounds[2], bounds[3])
        return []
    values = (
        (STEP_TOKENS, float(record.tokens), True),
        (STEP_DURATION, record.duration_ms, True),
        (RUN_TOKENS, float(record.run_tokens), True),
        (RUN_STEPS, float(steps), True),
    )
    return _all(baseline, values, known)


def score_run(
    baseline: Baseline | None,
    sample: RunSample,
    side_keys: frozenset[str],
    known: frozenset[str],
) -> list[Anomaly]:
    """Judge a finished run as a whole (before it is learned): the worst step of each
    per-step metric, the run totals and the final access mix. One anomaly per metric;
    ``side_keys`` are the run's side-effecting call keys. (Novelty was judged live.)"""
    if baseline is None or not baseline.active:
        return []
    worst = {
        name: max(values) for name, values in step_columns(sample).items() if not name.endswith(LOG)
    }
    values = run_values(sample)
    calls = sum(c for s in sample.steps for _, c in s.calls)
    for name, value in values.items():
        if name.endswith(LOG):
            continue
        if family_of(name)[0] != RUN_SHARE or calls >= MIX_MIN_CALLS:
            worst[name] = value
    judged = [(n, v, _side(n, side_keys)) for n, v in worst.items()]
    return _all(baseline, judged, known)


def _side(name: str, side_keys: frozenset[str]) -> bool:
    family, detail = family_of(name)
    if family in (STEP_COUNT, RUN_COUNT):
        return detail in side_keys
    if family == RUN_SHARE:
        return any(key.endswith(" " + detail) for key in side_keys)
    return True
