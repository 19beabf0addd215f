"""``/dev/mcp/<server>``: one MCP server as a device, each of its tools a path under it.

- ``/dev/mcp/notes/search`` with the tool's arguments as input calls the tool ``search``;
  its result (text, structured content, other blocks) is the tool message, and a result the
  server marks as an error is a tool error.
- ``/dev/mcp/notes`` itself reads: with no input it lists the tools, resources and prompts;
  ``{"resource": URI}`` reads a resource; ``{"prompt": NAME, "arguments": {...}}`` gets a
  prompt. Granting a single tool (``/dev/mcp/notes/search``) does not grant these.

Permissions, guards, events and the circuit breaker are the kernel's, as for every device.
The call blocks the agent's thread until the server answers, the server's ``timeout`` passes,
or the agent's cancel token fires (SIGKILL, step timeout), which cancels the request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import mcp_types as types
from mcp import Client

from rnix_actors.cancel import CancelToken
from rnix_actors.drivers.base import ToolSpec
from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall, Effect
from rnix_actors.mcp.connection import ServerConnection
from rnix_actors.mcp.loop import EventLoopThread
from rnix_actors.mcp.render import (
    catalogue,
    prompt_text,
    resource_text,
    result_text,
    tool_effect,
    tool_spec,
)

_T = TypeVar("_T")


class McpDevice:
    blocking = True

    def __init__(self, connection: ServerConnection, loop: EventLoopThread) -> None:
        self.connection = connection
        self.loop = loop
        self.description = f"MCP server {connection.config.name} ({connection.config.target()})"

    # -- the device protocol -----------------------------------------------------------------
    def handle(self, call: DeviceCall) -> str:
        if not call.subpath:
            return self._read(call)
        tool = call.subpath[1:]
        path = f"{call.device}{call.subpath}"
        if "/" in tool:
            raise DeviceError(ErrorCode.NOT_FOUND, path, "MCP tool paths have one segment")
        arguments = {str(k): v for k, v in call.args.items()}

        async def send(client: Client) -> types.CallToolResult:
            if tool not in self.connection.tools:
                known = ", ".join(sorted(self.connection.tools)) or "none"
                name = self.connection.config.name
                message = f"MCP server '{name}' has no tool '{tool}'; its tools: {known}"
                raise DeviceError(ErrorCode.NOT_FOUND, path, message)
            return await client.call_tool(tool, arguments)

        result = self._request(path, f"tool '{tool}'", send, call.cancel)
        text = self._scrub(result_text(result))
        if result.is_error:
            raise DeviceError(ErrorCode.INTERNAL, path, f"tool '{tool}' failed: {text}")
        return text

    def effect_of(self, op: str, subpath: str) -> Effect:
        """Reading the server's listing, a resource or a prompt is ``READ``; a tool call is
        what its annotations say (`tool_effect`), ``EXTERNAL`` while the tool is unknown."""
        if not subpath:
            return Effect.READ
        return tool_effect(self.connection.tools.get(subpath[1:]))

    # -- tools offered to models -------------------------------------------------------------
    def offer_tools(self, cancel: CancelToken) -> list[tuple[ToolSpec, str]]:
        """Each tool as a function tool for the model, with the device path it calls.
        Connects first (the server starts on its first use); raises `DeviceError` when the
        server is unavailable."""
        self._request(self.connection.device, "listing", _nothing, cancel)
        name = self.connection.config.name
        device = self.connection.device
        return [
            (tool_spec(name, tool), f"{device}/{tool.name}")
            for tool in self.connection.tools.values()
        ]

    # -- reading -----------------------------------------------------------------------------
    def _read(self, call: DeviceCall) -> str:
        args = call.args
        unknown = set(args) - {"resource", "prompt", "arguments"}
        if unknown:
            fix = 'give {"resource": URI}, {"prompt": NAME, "arguments": {...}} or nothing'
            raise DeviceError(
                ErrorCode.INVALID, call.device, f"unknown input {sorted(unknown)}: {fix}"
            )
        uri, prompt = args.get("resource"), args.get("prompt")
        if isinstance(uri, str) and uri:
            result = self._request(
                call.device, f"resource {uri}", lambda c: c.read_resource(uri), call.cancel
            )
            return self._scrub(resource_text(result))
        if isinstance(prompt, str) and prompt:
            raw = args.get("arguments") or {}
            if not isinstance(raw, dict):
                raise DeviceError(ErrorCode.INVALID, call.device, "'arguments' must be an object")
            values = {str(k): str(v) for k, v in raw.items()}
            got = self._request(
                call.device,
                f"prompt '{prompt}'",
                lambda c: c.get_prompt(prompt, values),
                call.cancel,
            )
            return self._scrub(prompt_text(got))
        self._request(call.device, "listing", _nothing, call.cancel)
        conn = self.connection
        listing = catalogue(conn.tools.values(), conn.resources, conn.prompts)
        return self._scrub(json.dumps(listing, ensure_ascii=False))

    def _scrub(self, text: str) -> str:
        # A server may echo what it was given (a token in an error message): never pass it on.
        secrets = self.connection.secrets
        return secrets.scrub(text) if secrets.values else text

    def _request(
        self,
        path: str,
        what: str,
        send: Callable[[Client], Awaitable[_T]],
        cancel: CancelToken,
    ) -> _T:
        config = self.connection.config
        timeout, start_timeout = config.timeout, config.start_timeout
        left = cancel.remaining()
        if left is not None:  # the step timeout (or a caller's deadline) bounds both
            timeout, start_timeout = min(timeout, left), min(start_timeout, left)
        request = self.connection.request(path, what, send, timeout, start_timeout)
        return self.loop.run(request, cancel)


async def _nothing(client: Client) -> None:
    return None
