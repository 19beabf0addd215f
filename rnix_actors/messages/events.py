"""The event record published for every syscall and lifecycle change (DESIGN §5)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

MAX_FIELD_CHARS = 2000


def _clip(value: Any) -> Any:
    """Keep event records small: long strings are cut, nested values are clipped recursively."""
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:
            return value[:MAX_FIELD_CHARS] + f"…[{len(value)} chars]"
        return value
    if isinstance(value, Mapping):
        return {str(k): _clip(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clip(v) for v in value]
    return value


@attrs.frozen
class Event:
    """One syscall or lifecycle event of a process.

    ``syscall`` is one of ``Open Read Write Close Exec Spawn Send Pipe Complete`` for syscalls,
    or a lifecycle name: ``Start ReasonStep Signal Suspend Resume Exit Reap Denied Blocked``.
    ``ts`` is wall-clock seconds; ``duration_ms`` is how long the call took.
    """

    ts: float
    pid: int
    template: str
    step: int
    syscall: str
    device: str = ""
    args: Mapping[str, Any] = attrs.field(factory=dict, converter=_clip)
    result: Any = attrs.field(default=None, converter=_clip)
    error: str = ""
    duration_ms: float = 0.0
    tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "pid": self.pid,
            "template": self.template,
            "step": self.step,
            "syscall": self.syscall,
            "device": self.device,
            "args": dict(self.args),
            "result": self.result,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
            "tokens": self.tokens,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str)


LIFECYCLE = frozenset(
    {"Start", "ReasonStep", "Signal", "Suspend", "Resume", "Exit", "Reap", "Denied", "Blocked"}
)
