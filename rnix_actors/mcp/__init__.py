"""MCP servers as devices: ``/dev/mcp/<server>``, each tool a path under it.

`attach_mcp` reads ``mcp.yaml`` (the shipped example under the project's ``.rnix/mcp.yaml``)
and, when it lists enabled servers, registers their devices and returns the `McpService`
that runs them. The official ``mcp`` SDK is an optional dependency (``rnix-actors[mcp]``):
it is imported only when a server is enabled, and its absence is then a `ConfigError` that
names the extra to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnix_actors.errors import ConfigError
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.mcp.config import EnvRef, McpServerConfig, load_mcp_config

if TYPE_CHECKING:
    from rnix_actors.mcp.service import McpService

__all__ = ["EnvRef", "McpServerConfig", "attach_mcp", "configured_status", "load_mcp_config"]

EXTRA_FIX = "install the SDK with: pip install 'rnix-actors[mcp]'"


def attach_mcp(servers: dict[str, McpServerConfig], devices: DeviceRegistry) -> McpService | None:
    """Register a device per enabled server; None when no server is enabled.

    Raises `ConfigError` naming the first enabled entry when the SDK is not installed.
    """
    enabled = [c for c in servers.values() if c.enabled]
    if not enabled:
        return None
    try:
        from rnix_actors.mcp.service import McpService
    except ImportError as exc:
        first = enabled[0]
        problem = f"server '{first.name}' needs the MCP SDK, which is not installed ({exc.name})"
        raise ConfigError(first.source, f"servers.{first.name}", problem, EXTRA_FIX) from None
    return McpService(servers, devices)


def configured_status(servers: dict[str, McpServerConfig]) -> list[dict[str, Any]]:
    """``rnix mcp list`` entries for servers that no service runs (all disabled)."""
    return [
        {
            "name": c.name,
            "device": c.device,
            "transport": c.transport,
            "target": c.target(),
            "start": c.start,
            "enabled": c.enabled,
            "state": "disabled" if not c.enabled else "stopped",
            "restarts": 0,
            "tools": [],
            "resources": [],
            "prompts": [],
        }
        for c in servers.values()
    ]


def project_servers(
    project_dir: Path, shipped: Path, load_project: bool
) -> dict[str, McpServerConfig]:
    """The servers of ``shipped``/mcp.yaml and, with ``load_project``, of ``.rnix/mcp.yaml``."""
    project = project_dir / ".rnix" / "mcp.yaml" if load_project else None
    return load_mcp_config(shipped / "mcp.yaml", project, project_dir)
