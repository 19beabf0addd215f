"""The daemon's wire protocol: newline-delimited JSON over a Unix socket.

One JSON object per line, UTF-8, in both directions::

    request   {"id": 7, "method": "ps", "params": {"all": true}}
    response  {"id": 7, "ok": true, "result": {...}}
              {"id": 7, "ok": false, "error": {"code": "NO_SUCH_PROCESS", "message": "..."}}

A streaming method (`STREAMING`) answers with a response whose result is ``{"stream": id}``,
then sends frames carrying the same id, and always finishes with one ``end`` frame unless the
connection goes away first::

    frame     {"id": 7, "frame": "event", "data": {<event>}}
    end       {"id": 7, "frame": "end", "data": {"reason": "exited", "process": {...}}}

A line that is not a JSON object with a string ``method`` gets an error response (id null when
none could be read) and the connection stays open. This module holds the pure parts: framing,
validation, error codes and converting wire dicts back into `ProcessInfo` / `Event`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.messages.events import Event

MAX_LINE_BYTES = 1 << 20
"""Longest request line accepted (1 MiB); a longer one is refused and skipped."""

STREAMING = frozenset({"watch", "follow", "run"})
"""Methods answered with frames until an ``end`` frame."""

SOCKET_NAME = "rnix.sock"
PID_NAME = "daemon.pid"
LOG_NAME = "daemon.log"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on BSDs


class Code:
    """Error codes of failed responses."""

    MALFORMED = "MALFORMED"  # not JSON, not an object, or a field of the wrong type
    UNKNOWN_METHOD = "UNKNOWN_METHOD"
    BAD_PARAMS = "BAD_PARAMS"
    NO_SUCH_AGENT = "NO_SUCH_AGENT"  # a spawn named an unknown agent template
    BAD_WORKDIR = "BAD_WORKDIR"  # a spawn's work dir is missing or not allowed
    NO_SUCH_PROCESS = "NO_SUCH_PROCESS"
    SPAWN_ERROR = "SPAWN_ERROR"
    CONFIG_ERROR = "CONFIG_ERROR"
    TIMEOUT = "TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"  # a subsystem (immune) is not attached, or the system stopped
    INTERNAL = "INTERNAL"


class ApiError(Exception):
    """A request failed; ``code`` is one of `Code`, ``message`` says what to do next."""

    def __init__(self, code: str, message: str, request_id: Any = None) -> None:
        self.code = code
        self.message = message
        self.request_id = request_id  # set when a malformed request still had a usable id
        super().__init__(message)

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def encode(message: Mapping[str, Any]) -> bytes:
    """One wire line (with its newline). Values JSON cannot hold are sent as strings."""
    return orjson.dumps(message, default=str, option=orjson.OPT_NON_STR_KEYS) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """Parse one line into an object; raises `ApiError` (MALFORMED) for anything else."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ApiError(Code.MALFORMED, f"malformed request: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ApiError(Code.MALFORMED, "malformed request: expected a JSON object")
    return value


def parse_request(line: bytes) -> tuple[Any, str, dict[str, Any]]:
    """(id, method, params) of a request line; raises `ApiError` (MALFORMED), carrying the
    request's id when one could be read so that the answer can name it."""
    message = decode(line)
    request_id = message.get("id")
    method = message.get("method")
    params = message.get("params", {})
    problem = ""
    if request_id is not None and not isinstance(request_id, int | str):
        problem, request_id = "'id' must be an integer or a string", None
    elif not isinstance(method, str) or not method:
        problem = "'method' must be a non-empty string"
    elif params is None:
        params = {}
    elif not isinstance(params, dict):
        problem = "'params' must be an object"
    if problem:
        raise ApiError(Code.MALFORMED, f"malformed request: {problem}", request_id)
    return request_id, str(method), params


def response_ok(request_id: Any, result: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": request_id, "ok": True, "result": dict(result)}


def response_error(request_id: Any, error: ApiError) -> dict[str, Any]:
    return {"id": request_id, "ok": False, "error": error.to_wire()}


# -- parameters --------------------------------------------------------------------------------
def param_int(params: Mapping[str, Any], name: str, *, minimum: int = 1) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ApiError(
            Code.BAD_PARAMS, f"param '{name}' must be an integer >= {minimum} (got {value!r})"
        )
    return value


def param_opt_int(params: Mapping[str, Any], name: str, *, minimum: int = 0) -> int | None:
    return None if params.get(name) is None else param_int(params, name, minimum=minimum)


def param_str(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(Code.BAD_PARAMS, f"param '{name}' must be a non-empty string")
    return value


def param_opt_str(params: Mapping[str, Any], name: str) -> str | None:
    return None if params.get(name) is None else param_str(params, name)


def param_bool(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(Code.BAD_PARAMS, f"param '{name}' must be true or false (got {value!r})")
    return value


# -- wire dicts back into values ---------------------------------------------------------------
def process_from_wire(data: Mapping[str, Any]) -> ProcessInfo:
    """The `ProcessInfo` that `ProcessInfo.to_dict` produced; raises `ApiError` if malformed."""
    try:
        return ProcessInfo(
            pid=int(data["pid"]),
            uuid=str(data["uuid"]),
            ppid=int(data["ppid"]),
            template=str(data["template"]),
            intent=str(data["intent"]),
            state=ProcessState(data["state"]),
            depth=int(data["depth"]),
            allowed_devices=tuple(data.get("allowed_devices") or ()),
            created_at=float(data["created_at"]),
            exit_code=None if data.get("exit_code") is None else int(data["exit_code"]),
            exit_reason=str(data.get("exit_reason") or ""),
            result=str(data.get("result") or ""),
            tokens_used=int(data.get("tokens_used") or 0),
            steps=int(data.get("steps") or 0),
            ended_at=None if data.get("ended_at") is None else float(data["ended_at"]),
            children=tuple(int(c) for c in data.get("children") or ()),
            cost_usd=float(data.get("cost_usd") or 0.0),
            token_budget=int(data.get("token_budget") or 0),
            step_started_at=(
                None if data.get("step_started_at") is None else float(data["step_started_at"])
            ),
            activity=str(data.get("activity") or ""),
            exit_kind=str(data.get("exit_kind") or ""),
            exit_origin=str(data.get("exit_origin") or ""),
            node=str(data.get("node") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError(Code.MALFORMED, f"malformed process record: {exc!r}") from None


def event_from_wire(data: Mapping[str, Any]) -> Event:
    """The `Event` of an ``event`` frame or an ``events.jsonl`` line; raises `ApiError`."""
    try:
        return Event.from_dict(data)
    except ValueError as exc:
        raise ApiError(Code.MALFORMED, str(exc)) from None


# -- where the daemon lives --------------------------------------------------------------------
def socket_path(state_dir: Path) -> Path:
    """``<state>/rnix.sock``, or, when that path is too long for a Unix socket, a per-user
    ``$XDG_RUNTIME_DIR/rnix`` (else ``/tmp/rnix-<uid>``) path named by a hash of the state
    dir, so every client of the same state dir finds the same socket."""
    path = state_dir / SOCKET_NAME
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/rnix-{os.getuid()}"
    digest = hashlib.sha256(os.fsencode(state_dir.resolve())).hexdigest()[:16]
    return Path(runtime) / "rnix" / f"{digest}.sock"


def pid_path(state_dir: Path) -> Path:
    return state_dir / PID_NAME


def log_path(state_dir: Path) -> Path:
    return state_dir / LOG_NAME
