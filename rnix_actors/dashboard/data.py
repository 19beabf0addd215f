"""What the pages show, read through the system's public API (the same the CLI reads).

Processes and rollups from `System.ps` / `System.rollup`, supervision from `System.tree`,
alerts and threat memory from ``system.immune.status()``, the graph from
``system.topology.view`` with the overlap of ``system.migration.matrix``, a process's history
from its ``events.jsonl``. Immune baselines come from the profiles the immune daemon persists
after every run it learns (the store is its record of them). Nothing here keeps a copy.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from rnix_actors.immune.baseline import TemplateProfile
from rnix_actors.immune.sample import call_key, device_of
from rnix_actors.immune.status import ImmuneStatus
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.kernel.table import Rollup
from rnix_actors.migration import settings_from
from rnix_actors.system import System
from rnix_actors.templates import Limits
from rnix_actors.topology import Overlap, TopologyView

log = logging.getLogger(__name__)

DEVICE_SYSCALLS = frozenset({"Open", "Read", "Write", "Close", "Exec"})
TAIL_BYTES = 1 << 20
"""At most this much of the end of an events file is read for one page."""


@attrs.frozen
class Row:
    """One process in the live tree: its info, how deep it is drawn, its subtree figures
    (None for a leaf), its budget and its active alerts."""

    info: ProcessInfo
    level: int
    rollup: Rollup | None
    limits: Limits | None
    alerts: tuple[str, ...] = ()


def immune_status(system: System) -> ImmuneStatus | None:
    """The immune status, or None when the system has no running immune daemon."""
    try:
        return system.immune.status()
    except Exception as exc:  # stopped, not attached, or not answering: the page says so
        log.debug("immune status unavailable: %s", exc)
        return None


def alerts_by_pid(status: ImmuneStatus | None) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for alert in () if status is None else status.alerts:
        found.setdefault(alert.pid, []).append(alert.message)
    return found


def tree_order(procs: Iterable[ProcessInfo]) -> list[tuple[ProcessInfo, int]]:
    """Processes parents first, each under its parent (``ppid``), with its drawing level; a
    process whose parent is not in ``procs`` is a root."""
    by_pid = {p.pid: p for p in procs}
    kids: dict[int, list[int]] = {}
    for p in by_pid.values():
        parent = p.ppid if p.ppid in by_pid and p.ppid != p.pid else 0
        kids.setdefault(parent, []).append(p.pid)
    ordered: list[tuple[ProcessInfo, int]] = []
    stack = [(pid, 0) for pid in sorted(kids.get(0, []), reverse=True)]
    while stack:
        pid, level = stack.pop()
        ordered.append((by_pid[pid], level))
        stack.extend((kid, level + 1) for kid in sorted(kids.get(pid, []), reverse=True))
    return ordered


def process_rows(system: System, status: ImmuneStatus | None) -> list[Row]:
    """The live processes as a tree, with rollups for those that have children."""
    live = system.ps()
    alerts = alerts_by_pid(status)
    templates = system.templates
    rows = []
    for info, level in tree_order(live):
        rollup = None
        if info.children:
            with contextlib.suppress(Exception):  # it may have just been reaped
                rollup = system.rollup(info.pid)
        template = templates.get(info.template)
        limits = None if template is None else template.limits
        rows.append(Row(info, level, rollup, limits, tuple(alerts.get(info.pid, ()))))
    return rows


def read_events(path: Path, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` events of an events file (its last `TAIL_BYTES` at most)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line is probably cut
    events = []
    for line in lines[-limit - 1 :]:
        if line.strip():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events[-limit:]


def process_events(system: System, pid: int, limit: int = 400) -> list[dict[str, Any]]:
    system.sync_events()  # what was published before this call is in the file
    return read_events(system.events_file(pid), limit)


@attrs.frozen
class RunFigures:
    """One run's behaviour in the terms of a baseline: per-step values of each metric and
    the run's device mix."""

    pid: int
    steps: int
    per_step: dict[str, list[float]]
    shares: dict[str, float]
    totals: dict[str, float]


def run_figures(pid: int, events: Iterable[dict[str, Any]]) -> RunFigures:
    """Per-step call counts by call key, tokens and step duration, from a run's events."""
    tokens: dict[int, float] = {}
    duration: dict[int, float] = {}
    calls: dict[int, dict[str, int]] = {}
    devices: dict[str, int] = {}
    for event in events:
        step = int(event.get("step") or 0)
        syscall = str(event.get("syscall", ""))
        device = str(event.get("device", ""))
        if syscall == "ReasonStep":
            tokens[step] = float(event.get("tokens") or 0)
            duration[step] = float(event.get("duration_ms") or 0.0)
        elif syscall == "Blocked" and event.get("args", {}).get("syscall") in DEVICE_SYSCALLS:
            # A refused call reached the guards: it counts as an attempt, as in the profile.
            syscall = str(event["args"]["syscall"])
        if syscall in DEVICE_SYSCALLS and device and not device.startswith("/dev/llm"):
            dev = device_of(device)
            per = calls.setdefault(step, {})
            key = call_key(syscall, dev)
            per[key] = per.get(key, 0) + 1
            devices[dev] = devices.get(dev, 0) + 1
    steps = sorted(tokens)
    per_step: dict[str, list[float]] = {
        "step.tokens": [tokens[s] for s in steps],
        "step.duration_ms": [duration[s] for s in steps],
    }
    for step in sorted(calls):
        for key, count in calls[step].items():
            per_step.setdefault(f"step.count:{key}", []).append(float(count))
    total = sum(devices.values())
    shares = {d: n / total for d, n in devices.items()} if total else {}
    totals = {
        key: float(sum(column))
        for name, column in per_step.items()
        if name.startswith("step.count:")
        for key in [name.removeprefix("step.count:")]
    }
    return RunFigures(pid, len(steps), per_step, shares, totals)


def immune_profiles(system: System) -> dict[str, TemplateProfile]:
    """Every template's learned profile, as the immune daemon last saved it."""
    from rnix_actors.immune.persistence import ImmuneStore

    try:
        loaded = ImmuneStore(system.store).load()
    except Exception as exc:  # no store (stopped) or an unreadable one: no plots
        log.debug("immune profiles unavailable: %s", exc)
        return {}
    return {name: builder.snapshot() for name, builder in sorted(loaded.profiles.items())}


def topology_view(system: System) -> TopologyView | None:
    """The collaboration graph with the capability overlap of its agents."""
    try:
        topology = system.topology
    except Exception:
        return None
    overlap: tuple[Overlap, ...] = ()
    min_overlap = 0.5
    try:
        matrix = system.migration.matrix()
        min_overlap = settings_from(system.config).min_similarity
        overlap = tuple(Overlap(s.a, s.b, s.score) for s in matrix.pairs())
    except Exception as exc:
        log.debug("capability overlap unavailable: %s", exc)
    try:
        view = topology.view(overlap, min_overlap)
    except Exception as exc:
        log.debug("topology unavailable: %s", exc)
        return None
    nodes = {e.source for e in view.edges} | {e.target for e in view.edges}
    kept = tuple(o for o in view.overlap if o.a in nodes and o.b in nodes)
    return attrs.evolve(view, overlap=kept)
