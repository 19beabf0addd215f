"""What ``rnix top`` shows, as plain data: the process tree in display order with each
process's own figures and its subtree rolled up. No terminal here: the full-screen view
(`rnix_actors.cli.top`) only draws these rows, and tests and the benchmark build them
directly."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

import attrs

from rnix_actors.cli.render import duration_text
from rnix_actors.kernel.process import ProcessInfo, ProcessState

WARN_SHARE = 0.9  # tokens/budget at or above this share are shown in the warning colour

HEADER = ("PID", "STATE", "AGENT", "STEP", "TOKENS/BUDGET", "COST", "ELAPSED", "SUBTREE", "NOTE")


def node_short(node: str) -> str:
    """A Ray host's name without the common prefix: ``rnix-host-1a2b3c4d-9f8e7d6c`` →
    ``9f8e7d6c`` (the node's id)."""
    return node.rsplit("-", 1)[-1] if node.startswith("rnix-host-") else node


@attrs.frozen
class TopRow:
    info: ProcessInfo
    depth: int  # in the displayed tree (0: a root)
    subtree_processes: int
    subtree_tokens: int
    subtree_cost: float
    note: str  # immune alert or supervisor, shortest first

    @property
    def pid(self) -> int:
        return self.info.pid

    @property
    def budget_warning(self) -> bool:
        budget = self.info.token_budget
        return bool(budget) and self.info.tokens_used >= WARN_SHARE * budget

    def cells(self, now: float) -> tuple[str, ...]:
        info = self.info
        tokens = f"{info.tokens_used:,}" + (f"/{info.token_budget:,}" if info.token_budget else "")
        subtree = (
            f"{self.subtree_processes} procs, {self.subtree_tokens:,} tok"
            if self.subtree_processes > 1
            else ""
        )
        return (
            str(info.pid),
            str(info.state),
            "  " * self.depth + info.template + (f" @{node_short(info.node)}" if info.node else ""),
            str(info.steps) + (f" {info.activity}" if info.activity else ""),
            tokens,
            f"${info.cost_usd:.4f}" if info.cost_usd else "-",
            duration_text(info.elapsed(now)),
            subtree,
            self.note,
        )


@attrs.frozen
class Counts:
    running: int = 0
    suspended: int = 0
    total: int = 0
    tokens: int = 0
    cost: float = 0.0


def build_rows(
    procs: Sequence[ProcessInfo],
    alerts: Mapping[int, str] | None = None,
    supervised: Mapping[int, str] | None = None,
    text_filter: str = "",
) -> list[TopRow]:
    """The rows of ``procs`` in tree order (children under their parent, by PID), with each
    subtree rolled up. ``text_filter`` keeps rows whose agent, state, intent or PID contain
    it (and keeps their ancestors' rows in place, so the tree still reads). O(n)."""
    alerts = alerts or {}
    supervised = supervised or {}
    by_pid = {p.pid: p for p in procs}
    children: dict[int, list[int]] = {}
    for p in procs:
        parent = p.ppid if p.ppid in by_pid else 0
        children.setdefault(parent, []).append(p.pid)
    for kids in children.values():
        kids.sort()
    totals: dict[int, tuple[int, int, float]] = {}
    order: list[tuple[int, int]] = []  # (pid, depth), pre-order
    stack = [(pid, 0) for pid in reversed(children.get(0, []))]
    while stack:
        pid, depth = stack.pop()
        order.append((pid, depth))
        stack.extend((kid, depth + 1) for kid in reversed(children.get(pid, [])))
    for pid, _ in reversed(order):  # children before parents: add up bottom-up
        info = by_pid[pid]
        count, tokens, cost = 1, info.tokens_used, info.cost_usd
        for kid in children.get(pid, []):
            k_count, k_tokens, k_cost = totals[kid]
            count, tokens, cost = count + k_count, tokens + k_tokens, cost + k_cost
        totals[pid] = (count, tokens, cost)
    keep = _matching(order, by_pid, text_filter.strip().lower()) if text_filter.strip() else None
    rows = []
    for pid, depth in order:
        if keep is not None and pid not in keep:
            continue
        count, tokens, cost = totals[pid]
        note = alerts.get(pid) or supervised.get(pid, "")
        rows.append(TopRow(by_pid[pid], depth, count, tokens, cost, note))
    return rows


def _matching(
    order: Iterable[tuple[int, int]], by_pid: Mapping[int, ProcessInfo], needle: str
) -> set[int]:
    keep: set[int] = set()
    for pid, _ in order:
        info = by_pid[pid]
        haystack = f"{info.pid} {info.template} {info.state} {info.intent}".lower()
        if needle in haystack:
            current: int | None = pid
            while current is not None and current not in keep:
                keep.add(current)
                parent = by_pid.get(current)
                current = parent.ppid if parent is not None and parent.ppid in by_pid else None
    return keep


def counts(procs: Iterable[ProcessInfo]) -> Counts:
    running = suspended = total = tokens = 0
    cost = 0.0
    for p in procs:
        total += 1
        running += p.state is ProcessState.RUNNING
        suspended += p.state is ProcessState.SUSPENDED
        tokens += p.tokens_used
        cost += p.cost_usd
    return Counts(running, suspended, total, tokens, cost)


def column_widths(rows: Sequence[TopRow], now: float | None = None) -> list[int]:
    """Each column as wide as its widest cell among ``rows`` (and its header)."""
    now = time.time() if now is None else now
    widths = [len(h) for h in HEADER]
    for row in rows:
        for i, cell in enumerate(row.cells(now)):
            widths[i] = max(widths[i], len(cell))
    return widths
