"""Inline SVG plots: a baseline's learned ranges against one run, and a run's timeline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from rnix_actors.dashboard.html import esc
from rnix_actors.immune.baseline import Stats

LABEL_W, PLOT_W, VALUE_W, ROW = 210, 380, 330, 26


@attrs.frozen
class PlotRow:
    """One metric: its learned statistics (None: the baseline never saw it), the detector's
    limit for it (a value above is anomalous; ``inf``: none) and the selected run's values
    (one per step, or one for a whole-run figure; empty: the run made none)."""

    label: str
    stats: Stats | None
    limit: float = math.inf
    values: tuple[float, ...] = ()


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.2g}"


def _row(row: PlotRow, y: float, top: float, percent: bool) -> str:
    def x(v: float) -> float:
        return LABEL_W + (min(v, top) / top) * PLOT_W if top > 0 else LABEL_W

    show = (lambda v: f"{v:.0%}") if percent else _fmt
    parts = [f'<text x="4" y="{y + 16:.1f}">{esc(row.label)}</text>']
    parts.append(
        f'<rect class="band" x="{LABEL_W}" y="{y + 9:.1f}" '
        f'width="{max(1.0, x(row.limit) - LABEL_W):.1f}" height="8"/>'
    )
    described = ["not in the baseline"]
    if row.stats is not None and row.stats.n:
        s = row.stats
        parts += [
            f'<rect class="span" x="{x(s.low):.1f}" y="{y + 7:.1f}" '
            f'width="{max(1.0, x(s.high) - x(s.low)):.1f}" height="12"/>',
            f'<line class="mean" x1="{x(s.mean):.1f}" y1="{y + 5:.1f}" x2="{x(s.mean):.1f}" '
            f'y2="{y + 21:.1f}"/>',
        ]
        described = [f"learned {show(s.low)}–{show(s.high)} (n={s.n})"]
    if math.isfinite(row.limit):
        beyond = " →" if row.limit > top else ""
        described.append(f"limit {show(row.limit)}{beyond}")
        if row.limit <= top:
            parts.append(
                f'<line class="limit" x1="{x(row.limit):.1f}" y1="{y + 3:.1f}" '
                f'x2="{x(row.limit):.1f}" y2="{y + 23:.1f}"/>'
            )
    for value in row.values:
        cls = "run-out" if value > row.limit else "run-in"
        parts.append(
            f'<circle class="{cls}" cx="{x(value):.1f}" cy="{y + 13:.1f}" r="4">'
            f"<title>{esc(show(value))}</title></circle>"
        )
    if row.values:
        lo, hi = min(row.values), max(row.values)
        described.insert(0, "run " + (show(lo) if lo == hi else f"{show(lo)}–{show(hi)}"))
    parts.append(
        f'<text class="small" x="{LABEL_W + PLOT_W + 10}" y="{y + 16:.1f}">'
        f"{esc(' · '.join(described))}</text>"
    )
    return f'<g class="metric" data-metric="{esc(row.label)}">{"".join(parts)}</g>'


def range_plot(title: str, rows: Sequence[PlotRow], percent: bool = False) -> str:
    """One row per metric: the green band is what the detector accepts (up to its limit, the
    red line), grey the values learned runs showed, the dark line their mean, dots the
    selected run (red above the limit). A limit far beyond every value is named, not drawn."""
    if not rows:
        return ""
    seen = [r.stats.high for r in rows if r.stats] + [max(r.values) for r in rows if r.values]
    top = max(seen, default=1.0) * 1.3 or 1.0
    limits = [r.limit for r in rows if math.isfinite(r.limit) and r.limit <= top * 2]
    top = 1.0 if percent else max([top, *limits]) * 1.05
    height = 24 + len(rows) * ROW
    width = LABEL_W + PLOT_W + VALUE_W
    grid = "".join(
        f'<line class="grid" x1="{LABEL_W + PLOT_W * f:.1f}" y1="18" '
        f'x2="{LABEL_W + PLOT_W * f:.1f}" y2="{height:.1f}"/>'
        f'<text class="small" x="{LABEL_W + PLOT_W * f:.1f}" y="14" text-anchor="middle">'
        f"{esc(f'{top * f:.0%}' if percent else _fmt(top * f))}</text>"
        for f in (0, 0.25, 0.5, 0.75, 1)
    )
    body = "".join(_row(r, 20 + i * ROW, top, percent) for i, r in enumerate(rows))
    return (
        f'<svg class="plot" data-title="{esc(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{esc(title)}">'
        f"{grid}{body}</svg>"
    )


LANES = (
    ("lifecycle", {"Start", "Exit", "Reap", "Signal", "Suspend", "Resume"}),
    ("model", {"ReasonStep"}),
    ("devices", {"Open", "Read", "Write", "Close", "Exec"}),
    ("agents", {"Spawn", "Send", "Pipe", "Complete"}),
    ("refused", {"Blocked", "Denied"}),
)
_KNOWN_CLASSES = {"Start", "Exit", "ReasonStep", "Suspend", "Resume", "Signal", "Blocked", "Denied"}


def _lane(event: dict[str, Any]) -> int:
    syscall = event.get("syscall", "")
    if syscall in ("Read", "Write") and str(event.get("device", "")).startswith("/dev/llm"):
        return 1
    return next((i for i, (_, names) in enumerate(LANES) if syscall in names), 3)


def timeline_svg(events: Sequence[dict[str, Any]]) -> str:
    """A process's events on a time axis, one lane per kind, steps as grid lines."""
    if not events:
        return '<p class="mute">No events recorded.</p>'
    start = float(events[0].get("ts", 0))
    span = max(float(events[-1].get("ts", 0)) - start, 1e-3)
    left, width = 80, 900
    height = 30 + len(LANES) * 24

    def x(ts: float) -> float:
        return left + (ts - start) / span * width

    parts = [
        f'<text class="small" x="4" y="{34 + i * 24}">{name}</text>'
        for i, (name, _) in enumerate(LANES)
    ]
    for event in events:
        if event.get("syscall") == "ReasonStep":
            sx = x(float(event.get("ts", start)))
            parts.append(
                f'<line class="grid" x1="{sx:.1f}" y1="18" x2="{sx:.1f}" y2="{height}"/>'
                f'<text class="small" x="{sx + 2:.1f}" y="14">step {event.get("step")}</text>'
            )
    for event in events:
        syscall = str(event.get("syscall", ""))
        kind = (
            "error" if event.get("error") else (syscall if syscall in _KNOWN_CLASSES else "other")
        )
        ex, ey = x(float(event.get("ts", start))), 24 + _lane(event) * 24
        label = f"step {event.get('step')}: {syscall} {event.get('device', '')}".strip()
        parts.append(
            f'<rect class="mark ev-{kind}" data-syscall="{esc(syscall)}" x="{ex - 3:.1f}" '
            f'y="{ey:.1f}" width="6" height="14" rx="2"><title>{esc(label)}</title></rect>'
        )
    total = left + width + 20
    return (
        f'<svg class="timeline" viewBox="0 0 {total} {height + 6}" width="{total}" '
        f'height="{height + 6}" role="img" aria-label="event timeline">{"".join(parts)}</svg>'
    )
