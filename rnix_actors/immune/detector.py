"""Anomaly detection against a template's Normal Profile (DESIGN §8). Pure functions.

A value is anomalous when all of these hold (``k`` is ``deviation_threshold``):

1. the template has at least ``min_samples`` learned runs (before that nothing is judged);
2. **deviation**: ``(value - mean) / σ' > k`` with ``σ' = max(σ, σ_floor, rel · |mean|)``,
   so that a metric with zero variance is not infinitely sensitive;
3. **growth**: ``value > max_seen · growth + margin``: beyond the historical maximum by a
   margin, so the normal tail (a step a bit longer than any before) does not alarm;
4. **floor**: ``value >= floor``: rare-but-normal events (one shell call in a template that
   seldom uses the shell) stay quiet below an absolute level. A known threat pattern halves
   the floor (``KNOWN_FLOOR``): memory makes the response faster the second time.

Exception: a run total that was the same positive number in every one of at least
``min_samples`` runs (``Stats.invariant``) is a property of the task, like one payment per
run, and any count above it is anomalous -- unless that kind of call has varied in *any*
template's baseline (``varying``): if one task naturally repeats a look-up, look-ups are
not relied on to be fixed anywhere. Evidence is pooled across templates because one
template's few runs cannot tell a fixed count from a rare repeat. A call to a device the
template never used is always an anomaly once detection is active.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping

import attrs

from rnix_actors.immune.baseline import (
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
from rnix_actors.immune.sample import KeyCount, RunRecord, RunSample, split_key
from rnix_actors.immune.threats import NEW_DEVICE, threat_name

KNOWN_FLOOR = 0.5
"""A known threat pattern needs only this fraction of a metric's absolute floor."""

MIX_MIN_CALLS = 10
"""The access mix is judged only once a run made this many calls: early shares are noise."""


@attrs.frozen
class Gate:
    """The gates of one metric family (see the module docstring)."""

    floor: float
    growth: float = 1.5
    margin: float = 0.0
    sigma_floor: float = 0.0
    rel_sigma_floor: float = 0.1
    exact: bool = False


GATES: Mapping[str, Gate] = {
    STEP_COUNT: Gate(floor=5, sigma_floor=0.5),
    RUN_COUNT: Gate(floor=10, sigma_floor=0.5, exact=True),
    RUN_SHARE: Gate(floor=0.5, growth=1.0, margin=0.2, sigma_floor=0.05, rel_sigma_floor=0.0),
    STEP_TOKENS: Gate(floor=2_000),
    RUN_TOKENS: Gate(floor=20_000),
    STEP_DURATION: Gate(floor=10_000, growth=3.0),
    RUN_STEPS: Gate(floor=10, sigma_floor=0.5),
}


@attrs.frozen
class Settings:
    threshold: float = 2.0
    min_samples: int = 5


@attrs.frozen
class Anomaly:
    """One deviation: the metric, what was observed, the baseline range (min-max seen) and
    the deviation in standard deviations (None when the baseline had no variance)."""

    family: str
    metric: str
    subject: str
    observed: float
    low: float | None
    high: float | None
    deviation: float | None
    threat: str
    known: bool = False

    def describe(self) -> str:
        """The alert text after ``PID n:``, in the seed's wording."""
        text = _describe(self)
        return f"{text[:-1]}; known threat {self.threat})" if self.known else text


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _range(a: Anomaly) -> str:
    low, high = a.low or 0.0, a.high or 0.0
    if a.family == RUN_SHARE:
        return f"{low:.0%}" if low == high else f"{low:.0%}-{high:.0%}"
    if a.family == STEP_DURATION:
        return f"{low / 1000:.1f}-{high / 1000:.1f}s"
    return _num(low) if low == high else f"{_num(low)}-{_num(high)}"


def _describe(a: Anomaly) -> str:
    family, value, base = a.family, a.observed, _range(a)
    if family == NEW_DEVICE:
        return f"access to unusual device {a.subject} (never used by this template)"
    if family == STEP_COUNT:
        return f"unusual {a.subject} frequency ({_num(value)}/step, baseline: {base})"
    if family == RUN_COUNT:
        return f"unusual {a.subject} volume ({_num(value)}/run, baseline: {base})"
    if family == RUN_SHARE:
        return f"unusual device mix ({a.subject} {value:.0%} of calls, baseline: {base})"
    if family == STEP_TOKENS:
        return f"token consumption spike ({_num(value)} tokens/step, baseline: {base})"
    if family == RUN_TOKENS:
        return f"token consumption spike ({_num(value)} tokens/run, baseline: {base})"
    if family == STEP_DURATION:
        return f"unusual step duration ({value / 1000:.1f}s/step, baseline: {base})"
    return f"unusual run length ({_num(value)} steps, baseline: {base})"


@attrs.frozen
class Limit:
    """A metric's gates folded into two numbers: a value is anomalous iff it is above
    ``above`` and at least ``floor`` (``KNOWN_FLOOR`` times that for a known threat)."""

    above: float
    floor: float

    def hit(self, value: float, known: bool) -> bool:
        return value > self.above and value >= (self.floor * KNOWN_FLOOR if known else self.floor)


def limit_of(stats: Stats, gate: Gate, settings: Settings) -> Limit:
    """Precompute the gates of one metric (so the hot path is one comparison)."""
    if gate.exact and stats.n >= settings.min_samples and stats.invariant:
        return Limit(stats.high, -math.inf)
    sigma = max(stats.std, gate.sigma_floor, gate.rel_sigma_floor * abs(stats.mean))
    # deviation > k  <=>  value > mean + k·σ'; growth: value > max · growth + margin.
    above = max(stats.mean + settings.threshold * sigma, stats.high * gate.growth + gate.margin)
    return Limit(above, gate.floor)


def deviation_of(
    value: float, stats: Stats, gate: Gate, settings: Settings, known: bool
) -> float | None:
    """The deviation (σ) if ``value`` is anomalous against ``stats``, else None; ``math.inf``
    when the baseline is an invariant count or has no spread at all."""
    if not limit_of(stats, gate, settings).hit(value, known):
        return None
    if gate.exact and stats.n >= settings.min_samples and stats.invariant:
        return math.inf
    sigma = max(stats.std, gate.sigma_floor, gate.rel_sigma_floor * abs(stats.mean))
    return (value - stats.mean) / sigma if sigma > 0 else math.inf


@attrs.frozen
class Baseline:
    """A profile compiled for checking: its limits per metric, and per family for metrics
    it lacks (a metric never seen counts as zero in every run)."""

    profile: TemplateProfile
    limits: Mapping[str, Limit]
    missing: Mapping[str, Limit]
    active: bool
    varying: frozenset[str] = frozenset()
    # Thresholds filled on first use, read on every check: call key -> (step, run, share);
    # "" -> (step tokens, step duration, run tokens, run steps) for model answers.
    bounds: dict[str, tuple[float, ...]] = attrs.field(factory=dict, eq=False, repr=False)

    def gate(self, family: str, detail: str) -> Gate:
        gate = GATES[family]
        return attrs.evolve(gate, exact=False) if gate.exact and detail in self.varying else gate


def compile_baseline(
    profile: TemplateProfile, settings: Settings, varying: frozenset[str] = frozenset()
) -> Baseline:
    """Precompute the limits of ``profile``; ``varying`` are the call keys whose run totals
    varied in some template (no invariant rule for them)."""
    zeros = Stats(profile.runs, 0.0, 0.0, 0.0, 0.0)
    empty = Baseline(profile, {}, {}, False, varying)
    limits = {
        name: limit_of(stats, empty.gate(*family_of(name)), settings)
        for name, stats in profile.stats.items()
    }
    missing = {family: limit_of(zeros, gate, settings) for family, gate in GATES.items()}
    return Baseline(profile, limits, missing, profile.runs >= settings.min_samples, varying)


def _subject(family: str, detail: str) -> str:
    if family in (STEP_COUNT, RUN_COUNT):
        syscall, device = split_key(detail)
        # /dev/fs is the one device with several kinds of call (list, read, write).
        return f"{device} {syscall}" if device == "/dev/fs" else device
    return detail


def judge(
    baseline: Baseline,
    name: str,
    value: float,
    settings: Settings,
    known: frozenset[str],
) -> Anomaly | None:
    """Judge one metric value. The fast path is the precomputed limit; names, threat lookup
    and the anomaly record are only built for a value above it."""
    family, detail = family_of(name)
    limit = baseline.limits.get(name) or baseline.missing[family]
    if value <= limit.above:
        return None
    threat = threat_name(family, detail)
    if not limit.hit(value, threat in known):
        return None
    stats = baseline.profile.get(name) or Stats(baseline.profile.runs, 0.0, 0.0, 0.0, 0.0)
    deviation = deviation_of(value, stats, baseline.gate(family, detail), settings, threat in known)
    assert deviation is not None  # the limit and the gates agree (tested)
    return Anomaly(
        family,
        name,
        _subject(family, detail),
        value,
        stats.low if stats.n else 0.0,
        stats.high if stats.n else 0.0,
        None if math.isinf(deviation) else round(deviation, 2),
        threat,
        threat in known,
    )


def new_device(device: str, count: int, known: frozenset[str]) -> Anomaly:
    threat = threat_name(NEW_DEVICE, device)
    return Anomaly(
        NEW_DEVICE, metric(NEW_DEVICE, device), device, count, None, None, None, threat,
        threat in known,
    )  # fmt: skip


def _all(
    baseline: Baseline,
    values: Iterable[tuple[str, float]],
    settings: Settings,
    known: frozenset[str],
) -> list[Anomaly]:
    found = (judge(baseline, name, value, settings, known) for name, value in values)
    return [a for a in found if a is not None]


@functools.lru_cache(maxsize=4096)
def _call_metrics(key: str, device: str) -> tuple[str, str, str]:
    return metric(STEP_COUNT, key), metric(RUN_COUNT, key), metric(RUN_SHARE, device)


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
    """Judge a call just counted into ``record`` (before it runs). When it passes, set the
    caps of its key and device, so the calls after it need no full check until one of
    their counts passes a cap (see `KeyCount.within`)."""
    if baseline is None or not baseline.active:
        counted.step_cap = counted.run_cap = counted.dev.cap = NO_CAP
        return []
    key, device, dev = counted.key, counted.device, counted.dev
    bounds = baseline.bounds.get(key)
    if bounds is None:
        if device not in baseline.profile.devices:
            return [new_device(device, dev.calls, known)]
        bounds = _bounds(baseline, key, device)
    step_value, run_value, calls = counted.in_step, counted.in_run, record.calls
    share = dev.calls / calls if calls >= MIX_MIN_CALLS else 0.0
    if step_value <= bounds[0] and run_value <= bounds[1] and share <= bounds[2]:
        counted.step_cap, counted.run_cap = _cap(bounds[0]), _cap(bounds[1])
        dev.cap = _share_cap(bounds[2], dev.calls, calls)
        return []
    step_name, run_name, share_name = _call_metrics(key, device)
    values = [(step_name, float(step_value)), (run_name, float(run_value))]
    if calls >= MIX_MIN_CALLS:
        values.append((share_name, share))
    return _all(baseline, values, settings, known)


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
    bounds = baseline.bounds.get("")
    if bounds is None:
        limits, missing = baseline.limits, baseline.missing
        names = (STEP_TOKENS, STEP_DURATION, RUN_TOKENS, RUN_STEPS)
        bounds = baseline.bounds[""] = tuple((limits.get(n) or missing[n]).above for n in names)
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
        (STEP_TOKENS, float(record.tokens)),
        (STEP_DURATION, record.duration_ms),
        (RUN_TOKENS, float(record.run_tokens)),
        (RUN_STEPS, float(steps)),
    )
    return _all(baseline, values, settings, known)


def score_run(
    baseline: Baseline | None,
    sample: RunSample,
    settings: Settings,
    known: frozenset[str],
) -> list[Anomaly]:
    """Judge a finished run as a whole (before it is learned): the worst step of each
    per-step metric, the run totals, the final access mix and any never-used device.
    One anomaly per metric."""
    if baseline is None or not baseline.active:
        return []
    worst = {name: max(values) for name, values in step_columns(sample).items()}
    values = run_values(sample)
    calls = sum(c for s in sample.steps for _, c in s.calls)
    devices = baseline.profile.devices
    fresh = {
        device
        for name in values
        for family, device in [family_of(name)]
        if family == RUN_SHARE and device not in devices
    }
    found = [new_device(d, round(values[metric(RUN_SHARE, d)] * calls), known) for d in fresh]
    for name, value in values.items():
        if family_of(name)[0] != RUN_SHARE or calls >= MIX_MIN_CALLS:
            worst[name] = value
    judged = [(n, v) for n, v in worst.items() if _device(n) not in fresh]
    return found + _all(baseline, judged, settings, known)


def _device(name: str) -> str:
    family, detail = family_of(name)
    if family in (STEP_COUNT, RUN_COUNT):
        return split_key(detail)[1]
    return detail if family == RUN_SHARE else ""
