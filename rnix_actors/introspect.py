"""`inspect`: everything known about one process, for people (``rnix inspect``) and programs
(``--json``, `System.inspect`).

A running process is read from the process table: its live figures and the snapshots its own
thread publishes at each step boundary and model answer (the context tail, the breaker
counts), so inspecting never waits for a process in the middle of a long step. A finished one
is read from the store and its event log (the model's text and the tool results it recorded).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from rnix_actors.errors import RnixError
from rnix_actors.immune import Immune
from rnix_actors.immune.live import LiveView
from rnix_actors.kernel.devices import DeviceRegistry, path_within
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.kernel.table import Rollup, TableView
from rnix_actors.messages.events import Event
from rnix_actors.shellconf import ShellSettings
from rnix_actors.supervision.views import SupervisorView
from rnix_actors.templates import AgentTemplate, Limits

DEFAULT_TAIL = 10


class Inspected(Protocol):
    """What inspecting reads of a system (the `System` facade provides it)."""

    devices: DeviceRegistry

    @property
    def table(self) -> TableView: ...

    @property
    def templates(self) -> dict[str, AgentTemplate]: ...

    @property
    def immune(self) -> Immune: ...

    def ps(self, all: bool = False) -> list[ProcessInfo]: ...

    def events_file(self, pid: int) -> Path: ...

    def tree(self) -> list[SupervisorView]: ...


@attrs.frozen
class ContextEntry:
    """One context message: ``role`` is ``user``, ``assistant`` or ``tool``."""

    role: str
    text: str
    tool_calls: tuple[str, ...] = ()  # "name {json input}" for an assistant's tool calls

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "tool_calls": list(self.tool_calls)}


@attrs.frozen
class ProcessDetail:
    """What ``rnix inspect PID`` shows. ``live`` is false when the process is not running in
    this system (then the context comes from its event log)."""

    info: ProcessInfo
    live: bool
    children: tuple[ProcessInfo, ...] = ()
    rollup: Rollup | None = None
    limits: Limits | None = None
    breaker: tuple[int, int, str] = (0, 0, "")  # errors in all, the current run, fingerprint
    supervisor: str = ""  # "/tree/child" of the supervisor child that owns it, or ""
    context: tuple[ContextEntry, ...] = ()
    alerts: tuple[dict[str, Any], ...] = ()  # the immune daemon's alerts on this process
    immune_suspended: bool = False
    immune_live: LiveView | None = None  # its figures so far against the template's baseline
    shell: str = ""  # how its /dev/shell commands run ("" when it has no shell)

    def to_dict(self) -> dict[str, Any]:
        return {
            "process": self.info.to_dict(),
            "live": self.live,
            "children": [c.to_dict() for c in self.children],
            "rollup": None if self.rollup is None else self.rollup.to_dict(),
            "limits": None if self.limits is None else attrs.asdict(self.limits),
            "breaker": dict(zip(("errors", "run", "last"), self.breaker, strict=True)),
            "supervisor": self.supervisor,
            "context": [c.to_dict() for c in self.context],
            "immune": {
                "alerts": list(self.alerts),
                "suspended": self.immune_suspended,
                "live": None if self.immune_live is None else self.immune_live.to_dict(),
            },
            "shell": self.shell,
        }


def inspect_process(system: Inspected, pid: int, tail: int = DEFAULT_TAIL) -> ProcessDetail | None:
    """The detail of ``pid``, or None when this state dir never ran it."""
    info = system.table.get(pid)
    live = info is not None and not info.finished
    if info is None:
        info = next((p for p in system.ps(all=True) if p.pid == pid), None)
        if info is None:
            return None
    children = tuple(
        c for c in (system.table.get(child) for child in info.children) if c is not None
    )
    template = system.templates.get(info.template)
    figures = system.table.figures(pid) if live else None
    if figures is not None:
        context = tuple(_entry(m) for m in figures.context)[-tail:]
        breaker = figures.breaker
    else:
        context = tuple(_from_events(read_event_log(system.events_file(pid))))[-tail:]
        breaker = (0, 0, "")
    alerts, suspended, immune_live = _immune_view(system, pid, live)
    return ProcessDetail(
        info=info,
        live=live,
        children=children,
        rollup=system.table.rollup(pid),
        limits=None if template is None else template.limits,
        breaker=breaker,
        supervisor=_owner(system.tree(), pid),
        context=context,
        alerts=alerts,
        immune_suspended=suspended,
        immune_live=immune_live,
        shell=_shell_view(system, info, template),
    )


def _entry(message: Any) -> ContextEntry:
    calls = tuple(
        f"{c.name} {json.dumps(dict(c.input), default=str, ensure_ascii=False)}"
        for c in getattr(message, "tool_calls", ())
    )
    return ContextEntry(str(message.role), str(message.content), calls)


def read_event_log(path: Path) -> list[Event]:
    """The events of one ``events.jsonl`` (a torn or unreadable line is skipped: after a
    crash the last line may be half-written); [] when there is no file."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    events = []
    for raw in lines:
        try:
            events.append(Event.from_dict(json.loads(raw)))
        except ValueError:
            continue  # a torn last line after a crash: the rest still tells the story
    return events


def _from_events(events: Iterable[Event]) -> Iterable[ContextEntry]:
    """The context as the event log recorded it: the model's answers and the tool results."""
    for event in events:
        if event.syscall == "Start":
            yield ContextEntry("user", str(event.args.get("intent", "")))
        elif event.device.startswith("/dev/llm"):
            if event.syscall == "Read" and event.result:
                yield ContextEntry("assistant", str(event.result))
        elif event.syscall in ("Open", "Read", "Write", "Exec", "Close") and event.device:
            args = event.args
            target = args.get("path") or args.get("command") or args.get("pattern") or ""
            text = event.error or str(event.result if event.result is not None else "")
            yield ContextEntry("tool", f"{event.syscall} {event.device} {target}: {text}")
        elif event.syscall == "Complete":
            yield ContextEntry("assistant", f"complete: {event.args.get('result', '')}")


def _shell_view(system: Inspected, info: ProcessInfo, template: AgentTemplate | None) -> str:
    """``sandboxed, network off`` (or ``sandbox OFF``) for a process that may use the shell."""
    if not any(
        path_within("/dev/shell", d) or path_within(d, "/dev/shell") for d in info.allowed_devices
    ):
        return ""
    try:
        _, device, _ = system.devices.lookup("/dev/shell")
    except RnixError:
        return ""
    base = getattr(device, "settings", None)
    if not isinstance(base, ShellSettings):
        return "not the built-in shell"
    settings = base.merged(None if template is None else template.shell)
    network = "network on" if settings.network else "network off"
    if settings.sandbox is False:
        return f"sandbox OFF (shell.sandbox: off), {network}"
    return f"sandboxed, {network}"


def _owner(views: Sequence[SupervisorView], pid: int) -> str:
    for view in views:
        for child in view.children:
            if child.pid == pid:
                return child.path
            if child.supervisor is not None:
                found = _owner([child.supervisor], pid)
                if found:
                    return found
    return ""


def _immune_view(
    system: Inspected, pid: int, live: bool
) -> tuple[tuple[dict[str, Any], ...], bool, LiveView | None]:
    """The alerts on ``pid``, whether the daemon suspended it, and (while it runs) its
    figures against the baseline."""
    try:
        immune = system.immune
        status = immune.status()
    except Exception:  # no immune daemon in this system: nothing to show
        return (), False, None
    alerts = tuple(a.to_dict() for a in status.alerts if a.pid == pid)
    return alerts, pid in status.suspended, immune.live(pid) if live else None
