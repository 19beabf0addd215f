"""One process: its figures and budget, devices, events as a timeline, context messages."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rnix_actors.dashboard.data import alerts_by_pid, immune_status, process_events
from rnix_actors.dashboard.html import Page, Region, esc
from rnix_actors.dashboard.pages import (
    action_buttons,
    money,
    pid_link,
    since,
    stat,
    state_badge,
    tokens,
)
from rnix_actors.dashboard.svg_plots import timeline_svg
from rnix_actors.errors import NoSuchProcess
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.system import System

EVENT_ROWS = 200
CONTEXT_MESSAGES = 60
DEVICE_SYSCALLS = ("Open", "Read", "Write", "Close", "Exec")
NONE_ROW = "<tr><td class=mute>none</td></tr>"


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _head(info: ProcessInfo, alerts: list[str]) -> str:
    children = ", ".join(pid_link(c) for c in info.children) or "none"
    parent = pid_link(info.ppid) if info.ppid else "none"
    exit_text = "" if info.exit_code is None else f"{info.exit_code} {info.exit_reason}"
    rows = [
        ("State", state_badge(info) + (f" {esc(info.exit_reason)}" if info.exit_reason else "")),
        ("Agent", esc(info.template)),
        ("Intent", f'<pre class="msg">{esc(info.intent)}</pre>'),
        ("Parent / children", f"{parent} / {children}"),
        ("Depth", str(info.depth)),
        ("Started", _when(info.created_at)),
        (
            "Elapsed",
            f"{info.elapsed(time.time()):.1f}s" if info.finished else since(info.created_at),
        ),
        ("Exit", esc(exit_text)),
        ("Activity", esc(info.activity)),
        ("Result", f'<pre class="msg">{esc(info.result)}</pre>' if info.result else ""),
        ("Immune alerts", "".join(f'<div class="alert">⚠ {esc(a)}</div>' for a in alerts)),
        ("Actions", action_buttons(info)),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows if v)
    return f"<table>{body}</table>"


def _budget(system: System, info: ProcessInfo) -> str:
    template = system.templates.get(info.template)
    limits = None if template is None else template.limits
    max_steps = limits.max_steps if limits else 0
    max_tokens = limits.max_tokens if limits else 0
    parts = [
        stat("steps", f"{info.steps}/{max_steps}" if max_steps else info.steps),
        stat("tokens", f"{tokens(info.tokens_used)} / {tokens(max_tokens) if max_tokens else '∞'}"),
        stat("cost", money(info.cost_usd)),
    ]
    if info.children:
        try:
            r = system.rollup(info.pid)
            parts.append(stat("subtree", f"{r.processes} procs · {tokens(r.tokens)} tok"))
            parts.append(stat("subtree cost", money(r.cost_usd)))
        except NoSuchProcess:
            pass
    return "".join(parts)


def _devices(info: ProcessInfo, events: list[dict[str, Any]]) -> str:
    used: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for e in events:
        device = str(e.get("device", ""))
        if e.get("syscall") in DEVICE_SYSCALLS and device:
            used[device] += 1
        elif e.get("syscall") in ("Denied", "Blocked"):
            refused[f"{e.get('syscall')} {device}"] += 1
    allowed = "".join(f"<li><code>{esc(d)}</code></li>" for d in info.allowed_devices)
    calls = "".join(
        f"<tr><td><code>{esc(d)}</code></td><td class=num>{n}</td></tr>"
        for d, n in used.most_common()
    )
    bad = "".join(f'<li class="alert">{esc(k)} ×{n}</li>' for k, n in refused.items())
    return (
        f"<h3>Allowed (whitelist)</h3><ul class=devices>{allowed or '<li>none</li>'}</ul>"
        f"<h3>Calls</h3><table><tbody>{calls or NONE_ROW}</tbody></table>"
        + (f"<h3>Refused</h3><ul>{bad}</ul>" if bad else "")
    )


def context_messages(info: ProcessInfo, events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The conversation as the event log recorded it: the intent, each model answer and each
    tool result (long values clipped as in the log)."""
    messages = [("user", info.intent)]
    for e in events:
        syscall, device = e.get("syscall"), str(e.get("device", ""))
        if syscall == "Read" and device.startswith("/dev/llm"):
            if e.get("error"):
                messages.append(("model error", str(e["error"])))
            elif e.get("result"):
                messages.append(("assistant", str(e["result"])))
        elif syscall in DEVICE_SYSCALLS and not device.startswith("/dev/llm"):
            args = e.get("args") or {}
            target = args.get("path") or args.get("command") or ""
            outcome = e.get("error") or e.get("result") or ""
            messages.append(("tool", f"{syscall} {device} {target}\n→ {outcome}"))
        elif syscall in ("Spawn", "Send", "Complete"):
            outcome = e.get("error") or e.get("result") or e.get("args")
            messages.append(("tool", f"{syscall}: {outcome}"))
    return messages[-CONTEXT_MESSAGES:]


def _context(info: ProcessInfo, events: list[dict[str, Any]]) -> str:
    return "".join(
        f'<div class="message role-{esc(role.split()[0])}"><span class=role>{esc(role)}</span>'
        f'<pre class="msg">{esc(text)}</pre></div>'
        for role, text in context_messages(info, events)
    )


def _event_rows(events: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    rows, seen = [], Counter[str]()
    for e in events[-EVENT_ROWS:]:
        stamp = f"e-{int(float(e.get('ts', 0)) * 1_000_000)}"
        seen[stamp] += 1
        key = f"{stamp}-{seen[stamp]}"
        outcome = e.get("error") or e.get("result") or ""
        rows.append(
            (
                key,
                f'<tr id="{key}" class="event" data-syscall="{esc(e.get("syscall", ""))}">'
                f"<td>{esc(time.strftime('%H:%M:%S', time.localtime(float(e.get('ts', 0)))))}</td>"
                f"<td class=num>{esc(e.get('step', ''))}</td><td>{esc(e.get('syscall', ''))}</td>"
                f"<td><code>{esc(e.get('device', ''))}</code></td>"
                f"<td>{esc(str(outcome)[:160])}</td></tr>",
            )
        )
    return tuple(rows) or (
        ("e-none", '<tr id="e-none"><td colspan=5 class=mute>No events.</td></tr>'),
    )


def process_page(system: System, pid: int) -> Page | None:
    """None for an unknown PID."""
    try:
        info: ProcessInfo | None = system.info(pid)
    except NoSuchProcess:
        info = next((p for p in system.ps(all=True) if p.pid == pid), None)
    if info is None:
        return None
    events = process_events(system, pid)
    alerts = alerts_by_pid(immune_status(system)).get(pid, [])
    return Page(
        f"PID {pid}",
        "/",
        (
            f"<h1>PID {pid} · {esc(info.template)}</h1>",
            '<p id="flash" role="status"></p>',
            Region("budget", _budget(system, info), cls="card stats"),
            '<div class="cols"><div>',
            Region("proc-head", _head(info, alerts), cls="card"),
            "</div><div>",
            Region("devices", _devices(info, events), cls="card"),
            "</div></div><h2>Timeline</h2>",
            Region("timeline", timeline_svg(events)),
            "<h2>Context messages</h2>",
            Region("context", _context(info, events), cls="card"),
            "<h2>Events</h2><table><thead><tr><th>Time</th><th class=num>Step</th>"
            "<th>Syscall</th><th>Device</th><th>Result</th></tr></thead>",
            Region("events", parts=_event_rows(events), tag="tbody"),
            "</table>",
        ),
    )
