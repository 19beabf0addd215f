"""Plain-text renderers shared by the CLI commands (no colour codes: safe for pipes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rnix_actors.ipc.protocol import process_from_wire
from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.messages.events import Event
from rnix_actors.supervision.views import SupervisorView

RULE = "═" * 72


def _short(value: object, width: int = 60) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def event_line(event: Event) -> str:
    """One human line for an event, or "" for events not worth showing."""
    tag = f"[agent/{event.pid}]"
    if event.syscall == "Start":
        return (
            f"[kernel] spawning PID {event.pid} ({event.template}, depth "
            f"{event.args.get('depth', 0)}, devices {event.args.get('allowed_devices')})"
        )
    if event.syscall in ("ReasonStep", "Write", "Read") and event.device.startswith("/dev/llm"):
        return ""
    if event.syscall == "ReasonStep":
        return f"{tag} step {event.step}: {event.tokens} tokens"
    if event.syscall in ("Signal", "Suspend", "Resume", "Denied", "Blocked"):
        return f"{tag} {event.syscall} {_short(event.args)}"
    if event.syscall == "Exit":
        return ""
    if event.syscall == "Complete":
        return f"{tag} step {event.step}: complete → {_short(event.args.get('result', ''))}"
    if event.error:
        return f"{tag} step {event.step}: {event.syscall} {event.device} ✗ {_short(event.error)}"
    target = event.args.get("path") or event.args.get("command") or event.args.get("pattern")
    where = f"{event.device} {_short(target, 50)}" if target else (event.device or "")
    return f"{tag} step {event.step}: {event.syscall} {where} → {_short(event.result or '')}"


def result_block(info: ProcessInfo, elapsed: float) -> str:
    body = "\n".join("  " + line for line in (info.result or "").splitlines()) or "  (empty)"
    return (
        f"══ Result {RULE[10:]}\n{body}\n{RULE}\n"
        f"{exit_line(info)} | "
        f"tokens: {info.tokens_used:,} | steps: {info.steps} | elapsed: {elapsed:.1f}s"
    )


def process_table(procs: list[ProcessInfo]) -> str:
    header = ("PID", "PPID", "STATE", "AGENT", "DEPTH", "TOKENS", "STEPS", "EXIT", "INTENT")
    rows = [header]
    for p in procs:
        exit_text = "" if p.exit_code is None else f"{p.exit_code} {_short(p.exit_reason, 24)}"
        rows.append(
            (
                str(p.pid),
                str(p.ppid),
                str(p.state),
                p.template,
                str(p.depth),
                f"{p.tokens_used:,}",
                str(p.steps),
                exit_text,
                _short(p.intent, 40),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    active = sum(1 for p in procs if not p.finished)
    lines.append(f"\n{active} active, {len(procs)} total")
    return "\n".join(lines)


def supervision_tree(views: list[SupervisorView], unsupervised: list[ProcessInfo]) -> str:
    """The supervision trees, then the live processes no supervisor owns."""
    lines: list[str] = []
    for view in views:
        lines.append(view.render())
    if unsupervised:
        lines.append("Unsupervised processes:")
        lines.extend(
            f"  PID {p.pid}  {p.template}  {p.state}  depth {p.depth}" for p in unsupervised
        )
    return "\n".join(lines) if lines else "No supervisors and no live processes."


def exit_line(info: ProcessInfo) -> str:
    """``[kernel] PID 3 exited(0) completed`` or ``[kernel] PID 3 suspended(2) …``."""
    verb = "suspended" if info.state is ProcessState.SUSPENDED else "exited"
    return f"[kernel] PID {info.pid} {verb}({info.exit_code}) {info.exit_reason}"


def end_line(data: Mapping[str, Any] | None, pid: int | None = None) -> str:
    """A stream's ``end`` frame as one line."""
    data = data or {}
    process = data.get("process")
    if isinstance(process, Mapping):
        return exit_line(process_from_wire(process))
    reason = data.get("reason", "ended")
    if reason == "overflow":
        return f"[watch] stopped: too slow to keep up ({data.get('dropped', 0)} events dropped)"
    target = f" PID {pid}" if pid is not None else ""
    return f"[watch] stopped watching{target} ({reason})"


def process_tree(procs: list[ProcessInfo]) -> str:
    """Every process under its parent (ppid), as an indented tree."""
    children: dict[int, list[int]] = {}
    by_pid = {p.pid: p for p in procs}
    for p in procs:
        parent = p.ppid if p.ppid in by_pid else 0
        children.setdefault(parent, []).append(p.pid)
    lines: list[str] = []

    def walk(pid: int, prefix: str) -> None:
        kids = children.get(pid, [])
        for index, kid in enumerate(kids):
            p = by_pid[kid]
            last = index == len(kids) - 1
            exit_text = "" if p.exit_code is None else f" exit {p.exit_code} {p.exit_reason}"
            lines.append(
                f"{prefix}{'└── ' if last else '├── '}PID {p.pid} {p.template} {p.state}{exit_text}"
            )
            walk(kid, prefix + ("    " if last else "│   "))

    walk(0, "")
    return "\n".join(lines) if lines else "No processes recorded."


def daemon_status(status: Mapping[str, Any]) -> str:
    """``rnix daemon status`` of a running daemon, as aligned ``key: value`` lines."""
    procs = status.get("processes") or {}
    immune = status.get("immune") or {}
    rows = [
        ("status", "running"),
        ("pid", str(status.get("pid"))),
        ("version", str(status.get("version"))),
        ("socket", str(status.get("socket"))),
        ("project", str(status.get("project_dir"))),
        ("state", str(status.get("state_dir"))),
        ("uptime", f"{float(status.get('uptime_s') or 0):.1f}s"),
        (
            "procs",
            f"{procs.get('live', 0)} live ({procs.get('running', 0)} running, "
            f"{procs.get('suspended', 0)} suspended)",
        ),
        (
            "immune",
            f"{immune.get('mode', 'unavailable')}, {immune.get('alerts', 0)} alerts"
            if immune
            else "unavailable",
        ),
    ]
    width = max(len(key) for key, _ in rows) + 1
    return "\n".join(f"{(key + ':').ljust(width)} {value}" for key, value in rows)
