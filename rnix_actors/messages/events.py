"""The event record published for every syscall and lifecycle change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

MAX_FIELD_CHARS = 2000


def _clip(value: Any) -> Any:
    """Keep event records small: long strings are cut, nested values are clipped recursively."""
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:
            return value[:MAX_FIELD_CHARS] + f"…[{len(value)} chars]"
        return value
    if value is None or isinstance(value, int | float):
        return value
    # dict first: the ABC check is much slower and events are on a hot path.
    if isinstance(value, (dict, Mapping)):
        return {str(k): _clip(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clip(v) for v in value]
    return value


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _dumps(data: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(data, default=str, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):  # e.g. integers beyond 64 bits
        return _ENCODER.encode(data).encode()


@attrs.frozen
class Event:
    """One syscall or lifecycle event of a process.

    ``syscall`` is one of ``Open Read Write Close Exec Spawn Send Pipe Complete`` for syscalls,
    or a lifecycle name: ``Start ReasonStep Signal Suspend Resume Exit Reap Denied Blocked``.
    ``ts`` is wall-clock seconds; ``duration_ms`` is how long the call took. Values are kept
    as given (the kernel previews large results); `to_dict` clips long strings for the log.
    """

    ts: float
    pid: int
    template: str
    step: int
    syscall: str
    device: str = ""
    args: Mapping[str, Any] = attrs.field(factory=dict)
    result: Any = None
    error: str = ""
    duration_ms: float = 0.0
    tokens: int = 0

    def to_dict(self, clip: bool = True) -> dict[str, Any]:
        """The record as plain data; ``clip`` shortens long strings (for logs and wires)."""
        return {
            "ts": self.ts,
            "pid": self.pid,
            "template": self.template,
            "step": self.step,
            "syscall": self.syscall,
            "device": self.device,
            "args": _clip(self.args) if clip else self.args,
            "result": _clip(self.result) if clip else self.result,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
            "tokens": self.tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The event `to_dict` produced (an ``events.jsonl`` line, an IPC ``event`` frame);
        raises `ValueError` naming what is malformed."""
        try:
            return cls(
                ts=float(data["ts"]),
                pid=int(data["pid"]),
                template=str(data.get("template") or ""),
                step=int(data.get("step") or 0),
                syscall=str(data["syscall"]),
                device=str(data.get("device") or ""),
                args=dict(data.get("args") or {}),
                result=data.get("result"),
                error=str(data.get("error") or ""),
                duration_ms=float(data.get("duration_ms") or 0.0),
                tokens=int(data.get("tokens") or 0),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed event record: {exc!r}") from None

    def to_json_bytes(self) -> bytes:
        """One JSON line (UTF-8, no newline); long values are clipped. The length is checked
        on the encoded line: most events are small, so the common case encodes once and never
        walks the values."""
        line = _dumps(self.to_dict(clip=False))
        return line if len(line) <= MAX_FIELD_CHARS else _dumps(self.to_dict())

    def to_json(self) -> str:
        return self.to_json_bytes().decode()


@attrs.frozen
class EventBatch:
    """Events of one process in order, sent to the bus in one message (one inbox hop for a
    whole step's worth of cheap syscalls)."""

    events: tuple[Event, ...]


LIFECYCLE = frozenset(
    {"Start", "ReasonStep", "Signal", "Suspend", "Resume", "Exit", "Reap", "Denied", "Blocked"}
)
