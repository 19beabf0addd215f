"""What ``rnix mcp list`` and ``rnix mcp call`` ask of a system, as JSON-ready dicts.

Used by the daemon's `Service` (and so by an embedded system behind `LocalApi` too). Entries
name servers, commands and URLs, never the values of their variables or headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rnix_actors.cancel import CancelToken
from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.mcp import configured_status
from rnix_actors.mcp.config import McpServerConfig


def mcp_list(service: Any, servers: Mapping[str, McpServerConfig], connect: bool) -> dict[str, Any]:
    """``{"servers": [...]}``: each server's state, tools, resources and prompts; with
    ``connect`` lazy servers are started to list them."""
    if service is None:
        return {"servers": configured_status(dict(servers))}
    return {"servers": service.status(connect)}


def mcp_call(
    service: Any, server: str, tool: str, arguments: Mapping[str, Any], timeout: float
) -> dict[str, Any]:
    """Call one tool as the user (no agent, no whitelist). ``{"ok", "text"}`` or ``{"ok":
    False, "code", "error"}`` for a tool error (a failed call is an answer, not a failure
    of the request)."""
    if service is None:
        detail = f"no MCP server '{server}' is enabled in mcp.yaml"
        return {"ok": False, "code": str(ErrorCode.NOT_FOUND), "error": detail}
    try:
        text = service.call(server, tool, arguments, CancelToken().child(timeout))
    except DeviceError as exc:
        return {"ok": False, "code": str(exc.code), "error": exc.message}
    return {"ok": True, "text": text}
