"""The immune page: mode, alerts, threat memory, and each template's baseline as plots."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from rnix_actors.dashboard.data import (
    RunFigures,
    immune_profiles,
    immune_status,
    process_events,
    run_figures,
)
from rnix_actors.dashboard.html import Page, Region, esc
from rnix_actors.dashboard.pages import dom_id, pid_link, stat
from rnix_actors.dashboard.svg_plots import PlotRow, range_plot
from rnix_actors.immune.baseline import RUN_COUNT, RUN_SHARE, STEP_COUNT, TemplateProfile
from rnix_actors.immune.detector import Baseline, Settings, compile_baseline
from rnix_actors.immune.status import ImmuneStatus
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.system import System

RUN_CHOICES = 8


def _summary(status: ImmuneStatus | None) -> str:
    if status is None:
        return stat("mode", "unavailable")
    return "".join(
        [
            stat("mode", status.mode),
            stat("monitoring", len(status.monitoring)),
            stat("active alerts", len(status.alerts), "alert" if status.alerts else ""),
            stat("suspended", len(status.suspended)),
            stat("threat memory", len(status.threats)),
        ]
    )


def _alerts(status: ImmuneStatus | None) -> tuple[tuple[str, str], ...]:
    parts = []
    for a in () if status is None else status.alerts:
        key = dom_id("a", a.id)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.ts))
        button = (
            f'<button data-action="immune-resume" data-pid="{a.pid}" data-confirm="Clear the '
            f'alerts of PID {a.pid} and resume it?">Clear &amp; resume</button>'
            if a.suspended
            else ""
        )
        parts.append(
            (
                key,
                f'<tr id="{key}" class="alert-row" data-pid="{a.pid}"><td class=num>{a.id}</td>'
                f"<td class=num>{pid_link(a.pid)}</td><td>{esc(a.template)}</td>"
                f'<td class="alert">{esc(a.message)}</td><td>{esc(a.threat)}</td>'
                f"<td>{'suspended' if a.suspended else 'warned'}"
                f"{' · known' if a.known else ''}</td><td>{when}</td><td>{button}</td></tr>",
            )
        )
    return tuple(parts) or (
        ("a-none", '<tr id="a-none"><td colspan=8 class=mute>No active alerts.</td></tr>'),
    )


def _threats(status: ImmuneStatus | None) -> str:
    threats = () if status is None else status.threats
    if not threats:
        return '<p class="mute">No threat signatures remembered.</p>'
    rows = "".join(
        f'<tr class="threat"><td>#{i}</td><td>{esc(t.name)}</td><td>{esc(t.template)}</td>'
        f"<td>{esc(t.detail)}</td><td class=num>{t.hits}</td><td>{esc(t.detected)}</td></tr>"
        for i, t in enumerate(threats, start=1)
    )
    return (
        "<table><thead><tr><th></th><th>Signature</th><th>Template</th><th>Pattern</th>"
        f'<th class="num">Hits</th><th>Detected</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _limit(baseline: Baseline, name: str) -> float:
    """The detector's limit for ``name`` (its family's default when the profile lacks it)."""
    found = baseline.limits.get(name) or baseline.missing.get(name.partition(":")[0])
    return math.inf if found is None else found.above


def _metric_rows(baseline: Baseline, run: RunFigures | None, family: str) -> list[PlotRow]:
    profile = baseline.profile
    prefix = family + ":"
    names = {m for m in profile.stats if m.startswith(prefix)}
    whole = {RUN_SHARE: run.shares, RUN_COUNT: run.totals} if run is not None else {}
    if run is not None:
        if family in whole:
            names |= {prefix + key for key in whole[family]}
        else:
            names |= {m for m in run.per_step if m.startswith(prefix)}
    rows = []
    for name in sorted(names):
        label = name[len(prefix) :]
        if run is None:
            values: tuple[float, ...] = ()
        elif family in whole:
            values = (whole[family].get(label, 0.0),)
        else:
            values = tuple(run.per_step.get(name, ()))
        rows.append(PlotRow(label, profile.get(name), _limit(baseline, name), values))
    return rows


def _single(baseline: Baseline, run: RunFigures | None, name: str, label: str) -> PlotRow:
    values = () if run is None else tuple(run.per_step.get(name, ()))
    return PlotRow(label, baseline.profile.get(name), _limit(baseline, name), values)


def profile_card(baseline: Baseline, run: RunFigures | None, runs: list[ProcessInfo]) -> str:
    profile = baseline.profile
    choices = " ".join(
        f'<a href="/immune?run={p.pid}"{" class=current" if run and run.pid == p.pid else ""}>'
        f"PID {p.pid}</a>"
        for p in runs
    )
    selected = f"selected run: PID {run.pid} ({run.steps} steps)" if run else "no run selected"
    active = "" if baseline.active else " · detection not active yet (too few runs)"
    plots = [
        range_plot("per-step syscall frequency", _metric_rows(baseline, run, STEP_COUNT)),
        range_plot("calls per run", _metric_rows(baseline, run, RUN_COUNT)),
        range_plot("device mix", _metric_rows(baseline, run, RUN_SHARE), percent=True),
        range_plot("tokens per step", [_single(baseline, run, "step.tokens", "tokens")]),
        range_plot("step duration", [_single(baseline, run, "step.duration_ms", "ms")]),
    ]
    titles = (
        "Per-step syscall frequency",
        "Calls per run",
        "Device mix",
        "Tokens per step",
        "Step duration",
    )
    body = "".join(
        f"<h3>{t}</h3>{p or '<p class=mute>nothing learned yet</p>'}"
        for t, p in zip(titles, plots, strict=True)
    )
    return (
        f'<section class="card profile" data-template="{esc(profile.template)}">'
        f"<h2>{esc(profile.template)} <span class=mute>{profile.runs} learned runs · "
        f"{esc(selected)}{active}</span></h2><p class=mute>runs: {choices or 'none'}</p>"
        f"{body}</section>"
    )


def _profiles(system: System, selected: int | None, settings: Settings) -> str:
    profiles: Mapping[str, TemplateProfile] = immune_profiles(system)
    if not profiles:
        return '<p class="mute">No baselines learned yet (each template needs finished runs).</p>'
    history = system.ps(all=True)
    by_pid = {p.pid: p for p in history}
    picked = None if selected is None else by_pid.get(selected)
    cards = []
    for name, profile in profiles.items():
        runs = [p for p in history if p.template == name][-RUN_CHOICES:][::-1]
        chosen = picked if picked is not None and picked.template == name else None
        chosen = chosen or (runs[0] if runs else None)
        figures = None
        if chosen is not None:
            figures = run_figures(chosen.pid, process_events(system, chosen.pid, 5000))
        cards.append(profile_card(compile_baseline(profile, settings), figures, runs))
    legend = (
        '<p class="mute">Grey: the values learned runs showed; dark line: their mean; green: '
        "what the detector accepts, up to its limit (red line) for deviation_threshold "
        f"{settings.threshold:g}; dots: the selected run, one per step, red above the limit."
        "</p>"
    )
    return legend + "".join(cards)


def immune_page(system: System, selected: int | None) -> Page:
    status = immune_status(system)
    config = system.immune_config
    settings = Settings(float(config.deviation_threshold), int(config.min_samples))
    head = "".join(
        f"<th>{h}</th>" for h in ("#", "PID", "Template", "Alert", "Threat", "Action", "Time", "")
    )
    return Page(
        "Immune",
        "/immune",
        (
            "<h1>Immune system</h1>",
            Region("immune-summary", _summary(status), cls="card stats"),
            '<p id="flash" role="status"></p><h2>Active alerts</h2>',
            f"<table><thead><tr>{head}</tr></thead>",
            Region("alerts", parts=_alerts(status), tag="tbody"),
            "</table><h2>Threat memory</h2>",
            Region("threats", _threats(status), cls="card"),
            "<h2>Baselines</h2>",
            Region("profiles", _profiles(system, selected, settings)),
        ),
    )
