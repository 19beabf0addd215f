"""Normal Profiles: online statistics of how each agent template behaves.

A profile is a set of *metrics*, each a Welford accumulator (count, mean, M2, min, max):

====================================  =========================================================
``step.count:<Syscall> <device>``     calls of one kind in a step, over the steps that made it
``step.tokens`` / ``step.duration_ms``  model tokens and model time of every step
``run.count:<Syscall> <device>``      calls of one kind in a whole run (0 when not made)
``run.share:<device>``                the device's share of the run's calls (access mix)
``run.tokens`` / ``run.steps``        whole-run totals
====================================  =========================================================

Every run-level metric gets exactly one value per learned run: a metric first seen in run N
starts with N-1 zeros, and a run that does not use a known metric adds a zero. Besides the
metrics a profile keeps the run's novelty *items* (kinds of call, destinations, hosts,
transitions: `rnix_actors.immune.novelty`) with the number of runs that used each, and per
item class the number of runs after the first that brought a new one. The daemon owns the
mutable `ProfileBuilder`s and publishes frozen `TemplateProfile` snapshots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

from rnix_actors.immune.novelty import MAX_ITEMS, fresh_classes
from rnix_actors.immune.sample import RunSample, split_key

STEP_COUNT = "step.count"
STEP_TOKENS = "step.tokens"
STEP_DURATION = "step.duration_ms"
RUN_COUNT = "run.count"
RUN_SHARE = "run.share"
RUN_TOKENS = "run.tokens"
LOG = "_log"
"""Suffix of a metric's companion on the log scale (``step.tokens_log``: log(1 + tokens)):
tokens and durations vary by factors, so their tails are judged there."""
RUN_STEPS = "run.steps"


def metric(family: str, detail: str = "") -> str:
    return f"{family}:{detail}" if detail else family


def family_of(name: str) -> tuple[str, str]:
    """``"run.count:Exec /dev/shell"`` → ``("run.count", "Exec /dev/shell")``."""
    family, _, detail = name.partition(":")
    return family, detail


@attrs.frozen
class Stats:
    """A frozen view of one metric: ``n`` values with this mean, sample standard deviation
    (0 for fewer than two values), minimum and maximum."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    @property
    def total(self) -> float:
        return self.mean * self.n


@attrs.define
class Welford:
    """Online mean and variance (Welford 1962): numerically stable, one value at a time."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    @classmethod
    def zeros(cls, n: int) -> Welford:
        """An accumulator that has seen ``n`` zeros."""
        return cls(n, 0.0, 0.0, 0.0, 0.0) if n else cls()

    def add(self, value: float) -> None:
        self.n += 1
        delta = value - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (value - self.mean)
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def add_all(self, values: Sequence[float]) -> None:
        """Add many values at once: their own mean and M2, merged in (Chan, Golub and
        LeVeque 1979). The same statistics as adding them one by one, up to rounding, at a
        fraction of the cost for the thousand steps of a long run."""
        count = len(values)
        if count == 0:
            return
        mean = math.fsum(values) / count
        m2 = math.fsum([(v - mean) * (v - mean) for v in values])
        total = self.n + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.n * count / total
        self.n = total
        self.low = min(self.low, min(values))
        self.high = max(self.high, max(values))

    def freeze(self) -> Stats:
        # max(0, ...): rounding can leave M2 a hair below zero for identical values.
        variance = max(0.0, self.m2) / (self.n - 1) if self.n > 1 else 0.0
        std = math.sqrt(variance)
        if std < 1e-12 * max(1.0, abs(self.mean)):
            std = 0.0  # identical values: exactly zero, so that invariants are recognised
        return Stats(self.n, self.mean, std, self.low, self.high)


@attrs.frozen
class TemplateProfile:
    """The immutable Normal Profile of one template, as the guard checks against it."""

    template: str
    runs: int
    stats: Mapping[str, Stats]
    devices: frozenset[str]
    items: frozenset[str] = frozenset()
    fresh: Mapping[str, int] = attrs.field(factory=dict)

    def get(self, name: str) -> Stats | None:
        return self.stats.get(name)


def step_columns(sample: RunSample) -> dict[str, list[float]]:
    """Per-step metric values of a run: one list per metric, in step order (a call key's
    list holds the steps that made such calls)."""
    steps = sample.steps
    if not steps:
        return {}
    columns: dict[str, list[float]] = {
        STEP_TOKENS: [float(step.tokens) for step in steps],
        STEP_DURATION: [step.duration_ms for step in steps],
        STEP_TOKENS + LOG: [math.log1p(max(0, step.tokens)) for step in steps],
        STEP_DURATION + LOG: [math.log1p(max(0.0, step.duration_ms)) for step in steps],
    }
    for step in steps:
        for key, count in step.calls:
            name = metric(STEP_COUNT, key)
            column = columns.get(name)
            if column is None:
                column = columns[name] = []
            column.append(float(count))
    return columns


def run_values(sample: RunSample) -> dict[str, float]:
    """Whole-run metric values of a run (metrics it does not use are absent, i.e. zero)."""
    counts = sample.run_counts()
    values: dict[str, float] = {
        RUN_TOKENS: float(sum(s.tokens for s in sample.steps)),
        RUN_TOKENS + LOG: math.log1p(max(0, sum(s.tokens for s in sample.steps))),
        RUN_STEPS: float(len(sample.steps)),
    }
    devices: dict[str, int] = {}
    for key, count in counts.items():
        values[metric(RUN_COUNT, key)] = float(count)
        device = split_key(key)[1]
        devices[device] = devices.get(device, 0) + count
    total = sum(devices.values())
    for device, count in devices.items():
        values[metric(RUN_SHARE, device)] = count / total
    return values


class ProfileBuilder:
    """The learning side of one template's profile (owned by the daemon's thread)."""

    def __init__(
        self,
        template: str,
        runs: int = 0,
        metrics: Mapping[str, Welford] | None = None,
        items: Mapping[str, int] | None = None,
        fresh: Mapping[str, int] | None = None,
    ) -> None:
        self.template = template
        self.runs = runs
        self.metrics: dict[str, Welford] = dict(metrics or {})
        self.items: dict[str, int] = dict(items or {})  # item -> runs that used it
        self.fresh: dict[str, int] = dict(fresh or {})  # class -> later runs with a new one

    def learn(self, sample: RunSample) -> None:
        """Add a finished run. Call only after the run was scored against `snapshot`."""
        if self.runs:
            for cls in fresh_classes(sample.items, frozenset(self.items)):
                self.fresh[cls] = self.fresh.get(cls, 0) + 1
        for item in sample.items:
            if item in self.items or len(self.items) < MAX_ITEMS:
                self.items[item] = self.items.get(item, 0) + 1
        for name, column in step_columns(sample).items():
            self._acc(name, runs_before=0).add_all(column)
        values = run_values(sample)
        known_run_metrics = [m for m in self.metrics if m.startswith("run.")]
        for name in known_run_metrics:
            if name not in values:
                self.metrics[name].add(0.0)
        for name, value in values.items():
            self._acc(name, runs_before=self.runs).add(value)
        self.runs += 1

    def _acc(self, name: str, runs_before: int) -> Welford:
        acc = self.metrics.get(name)
        if acc is None:
            acc = Welford.zeros(runs_before)
            self.metrics[name] = acc
        return acc

    def snapshot(self) -> TemplateProfile:
        stats = {name: acc.freeze() for name, acc in self.metrics.items()}
        devices = frozenset(
            family_of(name)[1]
            for name, acc in self.metrics.items()
            if name.startswith(RUN_SHARE + ":") and acc.high > 0
        )
        items = frozenset(self.items)
        return TemplateProfile(self.template, self.runs, stats, devices, items, dict(self.fresh))
