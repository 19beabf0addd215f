"""The immune view of one running process: its figures so far against its template's baseline.

`live_view` reads the guard's `RunRecord` of the process and the current `Snapshot` without a
lock and without asking the daemon, so inspecting never waits for a busy daemon or a process
in the middle of a step. Only the process's own thread writes its record: a figure can be one
call behind, never torn (each is one int or float, and the dicts are copied in one step).

The thresholds are the guard's own (`model_bounds`, `call_bounds`): a figure above its
``limit`` is what the next full check alerts on.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from rnix_actors.immune.baseline import RUN_STEPS, RUN_TOKENS, STEP_DURATION, STEP_TOKENS
from rnix_actors.immune.detector import (
    MIX_MIN_CALLS,
    MODEL_METRICS,
    Baseline,
    call_bounds,
    call_metrics,
    model_bounds,
)
from rnix_actors.immune.guard import Shared
from rnix_actors.immune.sample import RunRecord


@attrs.frozen
class Figure:
    """One metric of the run so far: ``value`` now, the baseline's ``mean`` (None: never seen
    in a learned run) and the ``limit`` above which it alerts (None: no active baseline)."""

    metric: str
    value: float
    mean: float | None = None
    limit: float | None = None

    @property
    def over(self) -> bool:
        return self.limit is not None and self.value > self.limit

    def to_dict(self) -> dict[str, Any]:
        limit = _finite(self.limit)
        return {"metric": self.metric, "value": self.value, "mean": self.mean, "limit": limit}


@attrs.frozen
class LiveView:
    """The immune figures of one running process. ``learned`` runs of its template are in the
    baseline; detection applies once ``active`` (``min_samples`` runs learned)."""

    template: str
    learned: int
    active: bool
    min_samples: int
    step: int
    calls: int
    figures: tuple[Figure, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "learned": self.learned,
            "active": self.active,
            "min_samples": self.min_samples,
            "step": self.step,
            "calls": self.calls,
            "figures": [f.to_dict() for f in self.figures],
        }


def live_view(shared: Shared, pid: int) -> LiveView | None:
    """The view of ``pid``, or None when it made no call the guard saw (or has finished)."""
    record = shared.records.get(pid)
    if record is None:
        return None
    snap = shared.snapshot
    baseline = snap.baselines.get(record.template)
    return LiveView(
        template=record.template,
        learned=0 if baseline is None else baseline.profile.runs,
        active=baseline is not None and baseline.active,
        min_samples=snap.settings.min_samples,
        step=record.step,
        calls=record.calls,
        figures=_model_figures(record, baseline) + _call_figures(record, baseline),
    )


def _model_figures(record: RunRecord, baseline: Baseline | None) -> tuple[Figure, ...]:
    values = {
        STEP_TOKENS: float(record.tokens),
        STEP_DURATION: record.duration_ms,
        RUN_TOKENS: float(record.run_tokens),
        RUN_STEPS: float(record.steps),
    }
    active = _active(baseline)
    limits = None if active is None else model_bounds(active)
    return tuple(
        _figure(baseline, name, values[name], None if limits is None else limits[i])
        for i, name in enumerate(MODEL_METRICS)
    )


def _call_figures(record: RunRecord, baseline: Baseline | None) -> tuple[Figure, ...]:
    figures: list[Figure] = []
    calls = record.calls
    active = _active(baseline)
    for counted in tuple(record.keys.values()):  # one copy: the agent's thread may add a key
        key, device = counted.key, counted.device
        names = call_metrics(key, device)
        bounds = None if active is None else call_bounds(active, key, device)
        in_step = counted.in_step if counted.step == record.step else 0
        values = [float(in_step), float(counted.in_run)]
        if calls >= MIX_MIN_CALLS:
            values.append(counted.dev.calls / calls)
        figures += [
            _figure(baseline, name, value, None if bounds is None else bounds[i])
            for i, (name, value) in enumerate(zip(names, values, strict=False))
        ]
    return tuple(sorted(set(figures), key=lambda f: f.metric))


def _active(baseline: Baseline | None) -> Baseline | None:
    """The baseline when detection applies with it (it has ``min_samples`` runs)."""
    return baseline if baseline is not None and baseline.active else None


def _figure(baseline: Baseline | None, name: str, value: float, limit: float | None) -> Figure:
    stats = None if baseline is None else baseline.profile.get(name)
    return Figure(name, value, None if stats is None else stats.mean, limit)


def _finite(value: float | None) -> float | None:
    """JSON has no infinity: a limit no value can pass is ``None``."""
    return None if value is None or not math.isfinite(value) or value >= 1 << 62 else value
