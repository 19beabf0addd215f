"""Renderers shared by the CLI commands and the shell: events, processes and trees for
people. Lines wrap at word boundaries to the terminal; nothing is cut mid-word; colour only on
a terminal (see `rnix_actors.cli.text`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rnix_actors.cli.text import Column, table, wrap
from rnix_actors.ipc.protocol import process_from_wire
from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.messages.events import Event
from rnix_actors.supervision.views import SupervisorView

RULE = "═" * 72


def _flat(value: object) -> str:
    return " ".join(str(value).split())


def _first_line(text: str) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    more = " …" if len(lines) > 1 else ""
    return (lines[0].strip() + more) if lines else ""


def _lifecycle(event: Event) -> str:
    args = event.args
    if event.syscall == "Signal":
        extra = " (SIGTERM grace period expired)" if args.get("escalation") else ""
        return f"{args.get('signal', '?')} from {args.get('origin', '?')}{extra}"
    if event.syscall == "Suspend":
        return f"suspended: {args.get('reason', '')}"
    if event.syscall == "Resume":
        return f"resumed by {args.get('origin', '?')}"
    if event.syscall == "Denied":
        return f"denied: {event.device} is not on its device list (tool {args.get('tool', '?')})"
    if event.syscall == "Blocked":
        return (
            f"blocked {args.get('syscall', '')} on {event.device} by {args.get('origin', '?')}: "
            f"{args.get('reason', '')}"
        )
    return _flat(args)


def event_text(event: Event, verbose: bool = False) -> str:
    """One event for people (no dicts), or "" for events not worth showing. The model's text
    shows as its first line, all of it with ``verbose``. Not wrapped: see `event_line`."""
    tag = f"[agent/{event.pid}]"
    llm = event.device.startswith("/dev/llm")
    if event.syscall == "Start":
        devices = ", ".join(event.args.get("allowed_devices") or []) or "none"
        return (
            f"[kernel] spawning PID {event.pid} ({event.template}, depth "
            f"{event.args.get('depth', 0)}, devices {devices})"
        )
    if event.syscall == "Read" and llm:
        said = str(event.result or "").strip()
        if event.error:
            return f"{tag} step {event.step}: model error: {_flat(event.error)}"
        if not said:
            return ""
        return f"{tag} step {event.step}: says: " + (said if verbose else _first_line(said))
    if event.syscall == "Write" and llm:
        return ""
    if event.syscall == "ReasonStep":
        calls = int(event.args.get("tool_calls") or 0)
        plural = "" if calls == 1 else "s"
        return f"{tag} step {event.step}: {event.tokens:,} tokens, {calls} tool call{plural}"
    if event.syscall in ("Signal", "Suspend", "Resume", "Denied", "Blocked"):
        return f"{tag} {_lifecycle(event)}"
    if event.syscall == "Exit":
        return ""
    if event.syscall == "Complete":
        result = str(event.args.get("result", ""))
        return f"{tag} step {event.step}: complete → " + (
            result if verbose else _first_line(result)
        )
    if event.error:
        return f"{tag} step {event.step}: {event.syscall} {event.device} ✗ {_flat(event.error)}"
    target = event.args.get("path") or event.args.get("command") or event.args.get("pattern")
    where = f"{event.device} {_flat(target)}" if target else (event.device or "")
    result = str(event.result if event.result is not None else "")
    shown = result if verbose else _first_line(result)
    return f"{tag} step {event.step}: {event.syscall} {where} → {shown}".rstrip(" →")


def event_line(event: Event, verbose: bool = False, width: int | None = None) -> str:
    """`event_text` wrapped at word boundaries to the terminal (continuations indented)."""
    text = event_text(event, verbose)
    return wrap(text, width, hang="    ") if text else ""


def result_block(info: ProcessInfo, elapsed: float) -> str:
    body = "\n".join(wrap(line, indent="  ") for line in (info.result or "").splitlines())
    cost = f" | cost: ${info.cost_usd:.4f}" if info.cost_usd else ""
    return f"══ Result {RULE[10:]}\n{body or '  (empty)'}\n{RULE}\n" + wrap(
        f"{exit_line(info)} | tokens: {info.tokens_used:,} | steps: {info.steps} | "
        f"elapsed: {elapsed:.1f}s{cost}"
    )


PS_COLUMNS = (
    Column("PID", "right"),
    Column("PPID", "right", drop=3),
    Column("STATE"),
    Column("AGENT"),
    Column("STEP", "right", drop=1),
    Column("TOKENS", "right"),
    Column("COST", "right", drop=4),
    Column("ELAPSED", "right", drop=2),
    Column("EXIT", flex=True),
    Column("INTENT", flex=True, one_line=True),
)
# With the Ray backend: where each process runs, after its agent.
PS_NODE_COLUMNS = (*PS_COLUMNS[:4], Column("NODE", drop=5), *PS_COLUMNS[4:])
STATE_COLOURS = {"running": "green", "suspended": "yellow"}


def tokens_text(info: ProcessInfo) -> str:
    """``1,234`` or, with a budget, ``1,234/5,000``."""
    if info.token_budget:
        return f"{info.tokens_used:,}/{info.token_budget:,}"
    return f"{info.tokens_used:,}"


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def process_row(p: ProcessInfo, now: float) -> tuple[str, ...]:
    exit_text = "" if p.exit_code is None else f"{p.exit_code} {p.exit_reason}"
    return (
        str(p.pid),
        str(p.ppid),
        str(p.state),
        p.template,
        str(p.steps),
        tokens_text(p),
        f"${p.cost_usd:.4f}" if p.cost_usd else "-",
        duration_text(p.elapsed(now)),
        exit_text,
        p.intent,
    )


def row_colour(p: ProcessInfo) -> str | None:
    if p.finished:
        return None if p.exit_code in (0, None) else "red"
    return STATE_COLOURS.get(str(p.state))


def process_table(procs: list[ProcessInfo], wide: bool = False, width: int | None = None) -> str:
    """``ps``: one row a process, fitted to the terminal (``wide``: nothing shortened)."""
    now = time.time()
    rows = [process_row(p, now) for p in procs]
    columns: tuple[Column, ...] = PS_COLUMNS
    if any(p.node for p in procs):  # processes on Ray hosts: say where
        columns = PS_NODE_COLUMNS
        rows = [(*r[:4], p.node or "-", *r[4:]) for r, p in zip(rows, procs, strict=True)]
    body = table(
        columns,
        rows,
        wide=wide,
        width=width,
        colours=[row_colour(p) for p in procs],
    )
    active = sum(1 for p in procs if not p.finished)
    return f"{body}\n\n{active} active, {len(procs)} total"


def nodes_table(nodes: list[Mapping[str, Any]]) -> str:
    """``rnix nodes``: one row a host (or the local process), with its load and state."""
    rows = [
        (
            str(n["name"]),
            str(n["state"]),
            str(n["processes"]),
            str(n.get("restarts", 0)),
            str(n.get("address", "")),
            str(n.get("os_pid") or "-"),
            ", ".join(
                f"{k} {v:g}"
                for k, v in sorted((n.get("resources") or {}).items())
                if not k.startswith("node:") and k not in ("memory", "object_store_memory")
            ),
        )
        for n in nodes
    ]
    body = table(NODE_COLUMNS, rows)
    alive = sum(1 for n in nodes if n["state"] == "alive")
    total = sum(int(n["processes"]) for n in nodes)
    return f"{body}\n\n{alive} of {len(nodes)} alive, {total} processes"


NODE_COLUMNS = (
    Column("HOST"),
    Column("STATE"),
    Column("PROCS", "right"),
    Column("RESTARTS", "right", drop=2),
    Column("ADDRESS", drop=3),
    Column("WORKER", "right", drop=4),
    Column("RESOURCES", flex=True, one_line=True),
)


def supervision_tree(views: list[SupervisorView], unsupervised: list[ProcessInfo]) -> str:
    """The supervision trees, then the live processes no supervisor owns."""
    lines: list[str] = []
    for view in views:
        for line in view.render().splitlines():
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(wrap(line.lstrip(), indent=indent, hang=indent + "      "))
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


def inspect_text(detail: Mapping[str, Any], verbose: bool = False) -> str:
    """``rnix inspect``: a `ProcessDetail` dict (as the daemon sends it) for people."""
    info = process_from_wire(detail["process"])
    fields = _process_fields(info, detail, time.time()) + _detail_fields(detail)
    lines = [f"PID {info.pid}  {info.template}  {info.state}"]
    key_width = max(len(k) for k, _ in fields) + 1
    hang = " " * (key_width + 3)
    for key, value in fields:
        lines.append(wrap(f"{(key + ':').ljust(key_width)} {value}", indent="  ", hang=hang))
    immune = detail.get("immune") or {}
    for alert in immune.get("alerts") or []:
        text = f"PID {alert.get('pid')}: {alert.get('message', '')}"
        lines.append(wrap(text, indent="    ", hang="      "))
    if immune.get("live"):
        lines += immune_live_lines(immune["live"])
    context = detail.get("context") or []
    source = "live" if detail.get("live") else "from the event log"
    lines.append(f"  context ({len(context)} last messages, {source}):")
    for entry in context:
        text = entry["text"] if verbose else _first_line(entry["text"])
        calls = "; ".join(entry.get("tool_calls") or [])
        shown = text + (f" → calls {calls}" if calls else "")
        lines.append(wrap(f"{entry['role']}: {shown or '(empty)'}", indent="    ", hang="      "))
    return "\n".join(lines)


def _process_fields(
    info: ProcessInfo, detail: Mapping[str, Any], now: float
) -> list[tuple[str, str]]:
    """`inspect_text`'s fields of the process itself: what it is, where, how far it got."""
    children = detail.get("children") or []
    fields = [
        ("intent", info.intent),
        ("uuid", info.uuid),
        ("parent", f"PID {info.ppid}" if info.ppid else "none (started at depth 0)"),
        ("depth", str(info.depth)),
        *((("node", info.node),) if info.node else ()),
        (
            "children",
            ", ".join(f"PID {c['pid']} {c['template']} {c['state']}" for c in children) or "none",
        ),
        ("devices", ", ".join(info.allowed_devices) or "none"),
        ("shell", detail.get("shell") or "no /dev/shell"),
        ("supervisor", detail.get("supervisor") or "none"),
        ("step", f"{info.steps}" + (f" ({info.activity})" if info.activity else "")),
        ("tokens", tokens_text(info)),
        ("cost", f"${info.cost_usd:.4f}" if info.cost_usd else "not priced"),
        ("elapsed", duration_text(info.elapsed(now))),
    ]
    if info.exit_code is not None:
        fields.append(("exit", f"{info.exit_code} {info.exit_reason}"))
    return fields


def _detail_fields(detail: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`inspect_text`'s fields from the rest of the detail: limits, breaker, subtree, immune."""
    fields = []
    limits = detail.get("limits")
    if limits:
        fields.append(
            (
                "limits",
                f"max_steps {limits['max_steps'] or 'unlimited'}, max_tokens "
                f"{limits['max_tokens'] or 'unlimited'}, step_timeout "
                f"{limits['step_timeout'] or 'none'}s, context_slots {limits['context_slots']}",
            )
        )
    breaker = detail.get("breaker") or {}
    last = f", last {breaker['last']}" if breaker.get("last") else ""
    fields.append(
        ("breaker", f"{breaker.get('errors', 0)} errors, run {breaker.get('run', 0)}{last}")
    )
    rollup = detail.get("rollup")
    if rollup and rollup["processes"] > 1:
        fields.append(
            (
                "subtree",
                f"{rollup['processes']} processes ({rollup['running']} running, "
                f"{rollup['suspended']} suspended), {rollup['tokens']:,} tokens"
                + (f", ${rollup['cost_usd']:.4f}" if rollup["cost_usd"] else ""),
            )
        )
    immune = detail.get("immune") or {}
    alerts = immune.get("alerts") or []
    fields.append(
        (
            "immune",
            ("suspended by the immune daemon; " if immune.get("suspended") else "")
            + (f"{len(alerts)} alert(s)" if alerts else "no alerts"),
        )
    )
    return fields


def immune_live_lines(live: Mapping[str, Any]) -> list[str]:
    """The immune view of a running process: each figure so far against the baseline."""
    learned, need = int(live["learned"]), int(live["min_samples"])
    if live["active"]:
        head = f"baseline: {learned} runs of {live['template']} learned (detection on)"
    else:
        head = (
            f"baseline: learning, {learned} of {need} runs of {live['template']} (no detection yet)"
        )
    lines = [wrap(head, indent="    ", hang="      ")]
    figures = live.get("figures") or []
    width = max((len(f["metric"]) for f in figures), default=0)
    for figure in figures:
        mean = "never seen" if figure["mean"] is None else f"mean {_number(figure['mean'])}"
        limit = figure["limit"]
        text = f"{figure['metric'].ljust(width)}  {_number(figure['value'])}  ({mean}"
        if live["active"]:
            text += ", no limit" if limit is None else f", alerts above {_number(limit)}"
            if limit is not None and figure["value"] > limit:
                text += ": ABOVE"
        lines.append(wrap(text + ")", indent="      ", hang="        "))
    return lines


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
