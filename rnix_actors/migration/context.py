"""Partial context transfer: what the substitute learns about the failed run.

The Go original handed over the intent string only. Here the substitute gets the intent, a
compact summary of the failed run read from its ``events.jsonl`` (what the model said last, the
tool calls it made with their outcomes, files it wrote, the error) and the environment (the
original agent, supervisor, devices). Everything is clipped so that the summary stays a few
hundred tokens whatever the run did.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

TAIL_EVENTS = 400  # lines of the events file read (from its end)
MAX_ACTIONS = 8
MAX_NOTES = 3
CLIP = 160
TOOL_SYSCALLS = frozenset({"Open", "Read", "Write", "Close", "Exec", "Spawn", "Send"})


def clip(text: object, limit: int = CLIP) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def read_events(path: Path, tail: int = TAIL_EVENTS) -> list[dict[str, Any]]:
    """The last ``tail`` events of a process log; a missing file or a bad line is skipped."""
    try:
        with path.open("rb") as handle:
            lines = deque(handle, maxlen=tail)
    except OSError:
        return []
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            events.append(data)
    return events


@attrs.frozen
class RunSummary:
    """A compact account of one failed run."""

    pid: int | None
    steps: int = 0
    notes: tuple[str, ...] = ()  # the model's last words
    actions: tuple[str, ...] = ()  # last tool calls and their outcome
    wrote: tuple[str, ...] = ()  # files written: partial results
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=False) | {
            "notes": list(self.notes),
            "actions": list(self.actions),
            "wrote": list(self.wrote),
        }


def summarise_run(events: Iterable[Mapping[str, Any]], pid: int | None, error: str) -> RunSummary:
    """Summarise a run's events (oldest first). ``error`` is the exit reason the supervisor saw;
    an ``Exit`` event's reason wins when the log has one."""
    notes: deque[str] = deque(maxlen=MAX_NOTES)
    actions: deque[str] = deque(maxlen=MAX_ACTIONS)
    wrote: list[str] = []
    steps = 0
    for event in events:
        syscall = str(event.get("syscall", ""))
        device = str(event.get("device", ""))
        args = event.get("args") or {}
        steps = max(steps, int(event.get("step") or 0))
        if device.startswith("/dev/llm/"):
            if syscall == "Read" and event.get("result"):
                notes.append(clip(event["result"]))
            continue
        if syscall == "Exit":
            error = str(args.get("reason") or error)
        elif syscall in TOOL_SYSCALLS:
            target = args.get("path") or args.get("pattern") or args.get("command") or ""
            target = target or args.get("agent") or args.get("pid") or ""
            outcome = f"error: {event['error']}" if event.get("error") else "ok"
            actions.append(
                clip(f"step {event.get('step', 0)} {syscall} {device} {target} → {outcome}")
            )
            if syscall == "Write" and device == "/dev/fs" and not event.get("error"):
                path = str(args.get("path", ""))
                if path and path not in wrote:
                    wrote.append(path)
    return RunSummary(pid, steps, tuple(notes), tuple(actions), tuple(wrote), clip(error, 300))


def transfer_intent(
    intent: str,
    original: str,
    substitute: str,
    summary: RunSummary,
    environment: Mapping[str, str],
    attempts: int,
) -> str:
    """The substitute's intent: the task, then what was already done and how it failed."""
    lines = [
        intent,
        "",
        f"[Capability migration] This task was started by the agent '{original}', which failed "
        f"{attempts} time(s); you ('{substitute}') continue it. Reuse the work below, avoid "
        "what failed, and finish the task with your own tools.",
    ]
    if summary.pid is not None:
        lines.append(f"Last failed run: PID {summary.pid}, {summary.steps} step(s).")
    if summary.notes:
        lines.append("Its last notes: " + " | ".join(summary.notes))
    if summary.actions:
        lines.append("Its last actions:")
        lines.extend(f"  - {action}" for action in summary.actions)
    if summary.wrote:
        lines.append("Partial results (files it wrote): " + ", ".join(summary.wrote))
    if summary.error:
        lines.append(f"The error: {summary.error}")
    if environment:
        lines.append("Environment: " + "; ".join(f"{k}={v}" for k, v in environment.items()))
    return "\n".join(lines)


def strip_transfer(intent: str) -> str:
    """The original task of an intent built by `transfer_intent` (for a second migration)."""
    head, marker, _ = intent.partition("\n\n[Capability migration]")
    return head if marker else intent
