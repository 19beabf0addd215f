"""The process model: states, legal transitions, exit statuses, signals.

Pure values and functions; the kernel and agent-process actors use them to decide, and tests
check them directly.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

import attrs

from rnix_actors.errors import IllegalTransition
from rnix_actors.messages.links import ExitKind, ExitReason


class ProcessState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    SUSPENDED = "suspended"
    ZOMBIE = "zombie"
    DEAD = "dead"
    LOST = "lost"  # only in the store: its system died while it ran (see docs/durability.md)


LEGAL_TRANSITIONS: dict[ProcessState, frozenset[ProcessState]] = {
    ProcessState.CREATED: frozenset({ProcessState.RUNNING, ProcessState.ZOMBIE}),
    ProcessState.RUNNING: frozenset({ProcessState.SUSPENDED, ProcessState.ZOMBIE}),
    ProcessState.SUSPENDED: frozenset({ProcessState.RUNNING, ProcessState.DEAD}),
    ProcessState.ZOMBIE: frozenset({ProcessState.DEAD}),
    ProcessState.DEAD: frozenset(),
    ProcessState.LOST: frozenset(),
}
"""created→zombie covers a process whose start failed before its first step."""


def check_transition(old: ProcessState, new: ProcessState, pid: int) -> None:
    """Raise `IllegalTransition` unless ``old → new`` is allowed."""
    if new not in LEGAL_TRANSITIONS[old]:
        raise IllegalTransition(f"PID {pid}: illegal state transition {old} → {new}")


class ExitCode(IntEnum):
    COMPLETED = 0
    ERROR = 1
    SUSPENDED = 2
    CONTEXT_FULL = 3


_KIND_OF_CODE = {
    ExitCode.COMPLETED: ExitKind.COMPLETED,
    ExitCode.ERROR: ExitKind.ERROR,
    ExitCode.SUSPENDED: ExitKind.PAUSED,
    ExitCode.CONTEXT_FULL: ExitKind.CONTEXT_FULL,
}


@attrs.frozen
class ExitStatus:
    """How a process ended (or why it is suspended: code 2/3).

    ``kind`` and ``origin`` are what code decides on (see `ExitKind`); ``reason`` is the
    text for people. ``kind`` defaults from the code (``error`` for code 1)."""

    code: ExitCode
    reason: str
    result: str = ""
    kind: ExitKind = attrs.field()
    origin: str = ""

    @kind.default
    def _kind_from_code(self) -> ExitKind:
        return _KIND_OF_CODE[self.code]

    @property
    def ok(self) -> bool:
        return self.code == ExitCode.COMPLETED

    @property
    def why(self) -> ExitReason:
        """The typed reason (kind, origin, detail)."""
        return ExitReason(self.kind, self.origin, self.reason)

    def event_args(self) -> dict[str, object]:
        """The ``args`` of its ``Exit`` or ``Suspend`` event: ``code``, ``kind``, ``origin``
        (what consumers decide on) and ``reason`` (the text for people)."""
        return {
            "code": int(self.code),
            "kind": str(self.kind),
            "origin": self.origin,
            "reason": self.reason,
        }


class Signal(StrEnum):
    SIGTERM = "SIGTERM"
    SIGKILL = "SIGKILL"
    SIGINT = "SIGINT"
    SIGPAUSE = "SIGPAUSE"
    SIGRESUME = "SIGRESUME"

    @classmethod
    def parse(cls, name: str) -> Signal:
        """Accept ``SIGTERM``, ``TERM`` or ``term``; raise ValueError listing the valid names."""
        key = name.strip().upper()
        if not key.startswith("SIG"):
            key = "SIG" + key
        try:
            return cls(key)
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown signal {name!r}; valid signals: {valid}") from None


TERMINATING_SIGNALS = frozenset({Signal.SIGTERM, Signal.SIGKILL, Signal.SIGINT})


@attrs.frozen
class ProcessInfo:
    """A snapshot of one process, as `System.ps()` and `System.wait()` return it."""

    pid: int
    uuid: str
    ppid: int
    template: str
    intent: str
    state: ProcessState
    depth: int
    allowed_devices: tuple[str, ...]
    created_at: float
    exit_code: int | None = None
    exit_reason: str = ""  # for people; code reads exit_kind
    result: str = ""
    tokens_used: int = 0
    steps: int = 0
    ended_at: float | None = None
    children: tuple[int, ...] = ()
    cost_usd: float = 0.0
    token_budget: int = 0  # the template's max_tokens (0: no budget)
    step_started_at: float | None = None  # while running: when the step in flight started
    activity: str = ""  # while running: what the step in flight is doing
    exit_kind: str = ""  # an `ExitKind` value once it ended or suspended ("" before, or unknown)
    exit_origin: str = ""  # who caused it (user, supervisor /svc, immune...), when known
    node: str = ""  # where it runs: "" on the local backend, a host's name with Ray

    def elapsed(self, now: float) -> float:
        """Seconds from creation to the end (or to ``now`` while it runs)."""
        end = self.ended_at if self.ended_at is not None else now
        return max(0.0, end - self.created_at)

    @property
    def finished(self) -> bool:
        return self.state in (ProcessState.ZOMBIE, ProcessState.DEAD)

    def to_dict(self) -> dict[str, object]:
        """The JSON-ready record (``ps --json``, the daemon's wire format)."""
        # Field by field rather than attrs.asdict: ps of 1,000 processes builds 1,000 of these
        # per refresh of `rnix top`, and asdict's generic recursion is 5x slower.
        data: dict[str, object] = {name: getattr(self, name) for name in _INFO_FIELDS}
        data["state"] = str(self.state)
        data["allowed_devices"] = list(self.allowed_devices)
        data["children"] = list(self.children)
        return data


_INFO_FIELDS = tuple(f.name for f in attrs.fields(ProcessInfo))
