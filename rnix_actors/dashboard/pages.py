"""The processes and supervision pages, and the shared pieces of every page."""

from __future__ import annotations

import functools
import re
import time

from rnix_actors.dashboard.data import Row, immune_status, process_events, process_rows
from rnix_actors.dashboard.html import Page, Region, esc
from rnix_actors.dashboard.svg_graph import supervision_svg
from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.supervision.views import SupervisorView
from rnix_actors.system import System

FLASH = '<p id="flash" role="status"></p>'


def dom_id(prefix: str, key: object) -> str:
    return f"{prefix}-" + re.sub(r"[^A-Za-z0-9_-]", "-", str(key)).strip("-")


def money(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def tokens(value: int) -> str:
    return f"{value:,}"


def state_badge(info: ProcessInfo) -> str:
    state = str(info.state)
    why = f' title="{esc(info.exit_reason)}"' if info.exit_reason else ""
    return f'<span class="state state-{esc(state)}"{why}>{esc(state)}</span>'


def since(ts: float | None) -> str:
    """How long ago ``ts`` was, counted by the page's script (so that a row's HTML does not
    change every second and live updates carry only real changes)."""
    return "" if ts is None else f' <span class="since" data-since="{ts:.3f}"></span>'


def pid_link(pid: int) -> str:
    return f'<a href="/process/{pid}">{pid}</a>'


def action_buttons(info: ProcessInfo) -> str:
    """Kill / pause / resume as the process's state allows; each asks for confirmation."""
    if info.finished:
        return ""
    name = f"PID {info.pid} ({info.template})"
    buttons = []
    if info.state is ProcessState.RUNNING:
        buttons.append(("pause", "Pause", f"Pause {name} and its running subtree?", ""))
    if info.state is ProcessState.SUSPENDED:
        buttons.append(("resume", "Resume", f"Resume {name} and its subtree?", ""))
    buttons.append(("kill", "Kill", f"Kill {name} (SIGTERM)?", " danger"))
    return " ".join(
        f'<button class="act{extra}" data-action="{action}" data-pid="{info.pid}" '
        f'data-confirm="{esc(confirm)}">{label}</button>'
        for action, label, confirm, extra in buttons
    )


def _step(info: ProcessInfo, row: Row) -> str:
    limit = row.limits.max_steps if row.limits is not None and row.limits.max_steps else 0
    text = f"{info.steps}/{limit}" if limit else str(info.steps)
    if info.state is ProcessState.RUNNING and info.activity:
        text += f' <span class="mute">{esc(info.activity)}{since(info.step_started_at)}</span>'
    return text


def _budget(info: ProcessInfo, row: Row) -> str:
    limit = row.limits.max_tokens if row.limits is not None else 0
    return f"{tokens(info.tokens_used)} / {tokens(limit) if limit else '∞'}"


def process_row(row: Row) -> tuple[str, str]:
    """A row's HTML; rows are values, so an unchanged process costs a lookup, not a render
    (most rows of a big table are unchanged between two renders)."""
    try:
        return _cached_row(row)
    except TypeError:  # a field that cannot be hashed: render it every time
        return _render_row(row)


def _render_row(row: Row) -> tuple[str, str]:
    info = row.info
    key = dom_id("p", info.pid)
    level = min(row.level, 9)
    branch = "└ " if row.level else ""
    subtree = ""
    if row.rollup is not None:
        r = row.rollup
        subtree = (
            f"{r.processes} procs ({r.running} running, {r.suspended} suspended) · "
            f"{tokens(r.tokens)} tok · {money(r.cost_usd)}"
        )
    alerts = "".join(f'<div class="alert">⚠ {esc(a)}</div>' for a in row.alerts)
    cells = (
        f'<td class="num">{pid_link(info.pid)}</td>'
        f'<td class="tree-name l{level}">{branch}{esc(info.template)}'
        f'<div class="mute">{esc(_cut(info.intent, 60))}</div></td>'
        f"<td>{state_badge(info)}</td><td>{_step(info, row)}</td>"
        f'<td class="num">{_budget(info, row)}</td><td class="num">{money(info.cost_usd)}</td>'
        f'<td class="mute">{subtree}</td><td>{alerts}</td><td>{action_buttons(info)}</td>'
    )
    return key, f'<tr id="{key}" data-pid="{info.pid}" data-state="{info.state}">{cells}</tr>'


_cached_row = functools.lru_cache(maxsize=4096)(_render_row)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def stat(label: str, value: object, cls: str = "") -> str:
    extra = f" {cls}" if cls else ""
    return f'<div class="stat{extra}"><b>{esc(value)}</b><span>{esc(label)}</span></div>'


def processes_page(system: System) -> Page:
    status = immune_status(system)
    rows = process_rows(system, status)
    infos = [r.info for r in rows]
    running = sum(i.state is ProcessState.RUNNING for i in infos)
    suspended = sum(i.state is ProcessState.SUSPENDED for i in infos)
    alerts = 0 if status is None else len(status.alerts)
    summary = "".join(
        [
            stat("live processes", len(infos)),
            stat("running", running),
            stat("suspended", suspended),
            stat("tokens", tokens(sum(i.tokens_used for i in infos))),
            stat("cost", money(sum(i.cost_usd for i in infos))),
            stat("immune", "unavailable" if status is None else status.mode),
            stat("active alerts", alerts, "alert" if alerts else ""),
        ]
    )
    parts = tuple(process_row(r) for r in rows) or (
        ("p-none", '<tr id="p-none"><td colspan="9" class="mute">No live processes.</td></tr>'),
    )
    head = "".join(
        f"<th{c}>{h}</th>"
        for h, c in (
            ("PID", ' class="num"'), ("Agent", ""), ("State", ""), ("Step", ""),
            ("Tokens / budget", ' class="num"'), ("Cost", ' class="num"'),
            ("Subtree", ""), ("Immune alerts", ""), ("Actions", ""),
        )
    )  # fmt: skip
    return Page(
        "Processes",
        "/",
        (
            "<h1>Processes</h1>",
            Region("summary", summary, cls="card stats"),
            FLASH,
            f'<table class="procs"><thead><tr>{head}</tr></thead>',
            Region("procs", parts=parts, tag="tbody"),
            "</table>",
        ),
    )


SHOWN = {"SupervisorRestart", "SupervisorEscalate", "SupervisorBackoff", "SupervisorMigration"}


def _history(system: System) -> str:
    """Restarts and escalations, newest first, from the supervisors' event log (supervisor
    events without a child process are logged under PID 0)."""
    events = [e for e in process_events(system, 0, 2000) if e.get("syscall") in SHOWN]
    rows = []
    for event in reversed(events[-40:]):
        args = event.get("args") or {}
        when = time.strftime("%H:%M:%S", time.localtime(float(event.get("ts", 0))))
        what = str(event.get("syscall", "")).removeprefix("Supervisor")
        detail = str(args.get("reason") or "")
        if what == "Restart":
            detail = (
                f"restart #{args.get('restarts')} ({args.get('strategy')}), "
                f"old PID {args.get('old_pid')}"
            )
        rows.append(
            f'<tr class="sup-event kind-{esc(what)}"><td>{when}</td><td>{esc(what)}</td>'
            f"<td>{esc(args.get('path', ''))}</td><td>{esc(args.get('child', ''))}</td>"
            f"<td>{esc(detail)}</td></tr>"
        )
    if not rows:
        return '<p class="mute">No restarts or escalations yet.</p>'
    return (
        "<table><thead><tr><th>Time</th><th>Event</th><th>Supervisor</th><th>Child</th>"
        f"<th>Detail</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def supervisor_card(view: SupervisorView) -> tuple[str, str]:
    key = dom_id("s", view.path)
    reason = f'<p class="alert">{esc(view.reason)}</p>' if view.reason else ""
    html = (
        f'<section id="{key}" class="card supervisor" data-path="{esc(view.path)}" '
        f'data-status="{esc(view.status)}"><h2>{esc(view.path)} '
        f'<span class="mute">{esc(view.strategy)} · {esc(view.status)} · restarts '
        f"{view.restarts}/{view.max_restarts} in {view.max_window:g}s</span></h2>"
        f"{reason}{supervision_svg(view)}</section>"
    )
    return key, html


def supervision_page(system: System) -> Page:
    views = system.tree()
    parts = tuple(supervisor_card(v) for v in views) or (
        ("s-none", '<p id="s-none" class="mute">No supervision trees.</p>'),
    )
    return Page(
        "Supervision",
        "/supervision",
        (
            "<h1>Supervision trees</h1>",
            Region("supervisors", parts=parts),
            "<h2>Restarts and escalations</h2>",
            Region("sup-history", _history(system), cls="card"),
        ),
    )
