"""The tools an agent sees and how each tool call becomes a syscall.

Pure: `plan_tool_call` maps a model's tool call to a `ToolPlan` (syscall, device, operation,
arguments) or raises `ToolInputError`, and `tool_specs` lists the tools for a whitelist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from rnix_actors.drivers.base import ToolCall, ToolSpec
from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.cancel import CancelToken
from rnix_actors.kernel.devices import DeviceRegistry, path_within, permission_error

FS = "/dev/fs"
SHELL = "/dev/shell"
PROC = "/proc"
LLM = "/dev/llm"  # read-only: describes the providers; the kernel alone calls models
MCP = "/dev/mcp"  # /dev/mcp/<server> reads (listing, resources, prompts); its tools below it

PlanKind = Literal["device", "spawn", "send", "complete"]


@attrs.frozen
class ToolPlan:
    kind: PlanKind
    syscall: str
    device: str = ""
    op: str = ""
    args: Mapping[str, Any] = attrs.field(factory=dict)


class ToolInputError(Exception):
    """The tool call itself is wrong (unknown tool, missing argument); a tool error."""

    def __init__(self, code: ErrorCode, path: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.path = path
        self.fingerprint = f"{code}|{path}"


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


_STR = {"type": "string"}

_FS_TOOLS = (
    ToolSpec("read_file", "Read a text file in the work dir.", _obj({"path": _STR}, ["path"])),
    ToolSpec(
        "write_file",
        "Write a text file in the work dir (parents are created).",
        _obj({"path": _STR, "content": _STR}, ["path", "content"]),
    ),
    ToolSpec("list_files", "List a directory of the work dir.", _obj({"path": _STR}, [])),
    ToolSpec("glob", "Find files by glob pattern.", _obj({"pattern": _STR}, ["pattern"])),
)
_SHELL_TOOL = ToolSpec(
    "shell",
    "Run a shell command in the work dir; returns output (and exit_code when non-zero).",
    _obj({"command": _STR, "timeout": {"type": "number"}}, ["command"]),
)
_DEVICE_TOOL = ToolSpec(
    "call_device",
    "Call a device by path (host devices, /proc/<pid>/status).",
    _obj({"device": _STR, "input": {"type": "object"}}, ["device"]),
)
_META_TOOLS = (
    ToolSpec(
        "spawn",
        "Start a child agent and wait for its result. It gets at most your devices.",
        _obj(
            {"agent": _STR, "intent": _STR, "devices": {"type": "array", "items": _STR}},
            ["agent", "intent"],
        ),
    ),
    ToolSpec(
        "send",
        "Send a message to another process.",
        _obj({"pid": {"type": "integer"}, "message": _STR}, ["pid", "message"]),
    ),
    ToolSpec("complete", "Finish with a result.", _obj({"result": _STR}, ["result"])),
)


def tool_specs(allowed: Iterable[str]) -> tuple[ToolSpec, ...]:
    """Tools offered to a process: device tools only for devices it may use, meta tools always."""
    allowed = list(allowed)
    specs: list[ToolSpec] = []
    if any(path_within(FS, a) or path_within(a, FS) for a in allowed):
        specs.extend(_FS_TOOLS)
    if any(path_within(SHELL, a) for a in allowed):
        specs.append(_SHELL_TOOL)
    if any(not path_within(a, FS) and not path_within(a, SHELL) for a in allowed):
        specs.append(_DEVICE_TOOL)
    specs.extend(_META_TOOLS)
    return tuple(specs)


def device_tools(
    devices: DeviceRegistry, allowed: Iterable[str], denied: Iterable[str], cancel: CancelToken
) -> tuple[tuple[ToolSpec, ...], dict[str, str]]:
    """Tools that devices offer of their own (an MCP server's tools), for a whitelist.

    A device offers them with ``offer_tools(cancel) -> [(ToolSpec, device path)]``; only the
    devices the whitelist reaches are asked, and only the tools it grants are kept. Returns
    the specs and, by tool name, the device path each one calls. A device that cannot list
    its tools now (a server that fails to start) offers none; calls to it still report why.
    Tools of a reached device that the whitelist does not grant are routed but not offered,
    so that calling one is a permission error rather than an unknown tool.
    """
    allowed, denied = list(allowed), list(denied)
    specs: list[ToolSpec] = []
    routes: dict[str, str] = {}
    for path, device in devices.items():
        offer = getattr(device, "offer_tools", None)
        if not callable(offer):
            continue
        if not any(path_within(a, path) or path_within(path, a) for a in allowed):
            continue
        try:
            offered = offer(cancel)
        except DeviceError:
            continue
        for spec, target in offered:
            if spec.name in routes:
                continue
            # Routed even when not granted: a model that guesses the name is told why not.
            routes[spec.name] = target
            if permission_error(target, allowed, denied) is None:
                specs.append(spec)
    return tuple(specs), routes


def _require_str(call: ToolCall, key: str, path: str) -> str:
    value = call.input.get(key)
    if not isinstance(value, str) or (key != "content" and not value):
        raise ToolInputError(
            ErrorCode.INVALID, path, f"tool {call.name}: argument '{key}' must be a string"
        )
    return value


def _mcp_server(device: str) -> bool:
    return path_within(device, MCP) and device.rstrip("/").count("/") == 3


def plan_tool_call(call: ToolCall) -> ToolPlan:
    """Map one tool call to the syscall it performs."""
    name = call.name
    if name == "call_device" or name.startswith("/"):
        return _device_plan(call)
    plan = _work_dir_plan(call) or _meta_plan(call)
    if plan is not None:
        return plan
    raise ToolInputError(
        ErrorCode.PERMISSION,
        name,
        f"unknown tool {name!r}; available tools: read_file, write_file, list_files, glob, "
        "shell, call_device, spawn, send, complete",
    )


def _work_dir_plan(call: ToolCall) -> ToolPlan | None:
    """The plan of a file or shell tool; None for another tool."""
    name = call.name
    if name == "read_file":
        return ToolPlan("device", "Read", FS, "read", {"path": _require_str(call, "path", FS)})
    if name == "write_file":
        args = {
            "path": _require_str(call, "path", FS),
            "content": _require_str(call, "content", FS),
        }
        return ToolPlan("device", "Write", FS, "write", args)
    if name == "list_files":
        path = call.input.get("path", ".")
        if not isinstance(path, str):
            raise ToolInputError(ErrorCode.INVALID, FS, "tool list_files: 'path' must be a string")
        return ToolPlan("device", "Open", FS, "list", {"path": path or "."})
    if name == "glob":
        return ToolPlan(
            "device", "Open", FS, "glob", {"pattern": _require_str(call, "pattern", FS)}
        )
    if name == "shell":
        shell_args: dict[str, Any] = {"command": _require_str(call, "command", SHELL)}
        if "timeout" in call.input:
            shell_args["timeout"] = call.input["timeout"]
        return ToolPlan("device", "Exec", SHELL, "exec", shell_args)
    return None


def _device_plan(call: ToolCall) -> ToolPlan:
    """The plan of ``call_device``, or of a tool named by its device path."""
    name = call.name
    device = name if name.startswith("/") else call.input.get("device")
    raw = call.input if name.startswith("/") else call.input.get("input", {})
    if not isinstance(device, str) or not device.startswith("/"):
        raise ToolInputError(
            ErrorCode.INVALID, "call_device", "tool call_device: 'device' must be a path"
        )
    if not isinstance(raw, dict) and not isinstance(raw, Mapping):
        raise ToolInputError(ErrorCode.INVALID, device, "'input' must be an object")
    if path_within(device, PROC) or path_within(device, LLM) or _mcp_server(device):
        return ToolPlan("device", "Read", device, "read", dict(raw))
    if path_within(device, MCP):  # an MCP tool runs an action, like a command
        return ToolPlan("device", "Exec", device, "call", dict(raw))
    return ToolPlan("device", "Write", device, "call", dict(raw))


def _meta_plan(call: ToolCall) -> ToolPlan | None:
    """The plan of a meta tool (``spawn``, ``send``, ``complete``); None for another tool."""
    name = call.name
    if name == "spawn":
        agent = _require_str(call, "agent", "spawn")
        intent = _require_str(call, "intent", "spawn")
        devices = call.input.get("devices")
        if devices is not None and (
            not isinstance(devices, list) or not all(isinstance(d, str) for d in devices)
        ):
            raise ToolInputError(ErrorCode.INVALID, "spawn", "'devices' must be a list of paths")
        return ToolPlan(
            "spawn", "Spawn", "", "", {"agent": agent, "intent": intent, "devices": devices}
        )
    if name == "send":
        pid = call.input.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise ToolInputError(ErrorCode.INVALID, "send", "tool send: 'pid' must be an integer")
        return ToolPlan(
            "send", "Send", "", "", {"pid": pid, "message": _require_str(call, "message", "send")}
        )
    if name == "complete":
        result = call.input.get("result", "")
        return ToolPlan("complete", "Complete", "", "", {"result": str(result)})
    return None
