"""`McpService`: the MCP servers of one system, their devices, their loop and their status.

Created with the system (it reads ``mcp.yaml`` and registers ``/dev/mcp/<server>`` for each
enabled server), started with it (the loop thread starts, and ``start: eager`` servers
connect), stopped with it (sessions close, stdio servers' processes end, the loop thread is
joined). A system whose ``mcp.yaml`` lists no enabled server starts no thread at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rnix_actors.cancel import CancelToken
from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall, DeviceRegistry, Effect
from rnix_actors.mcp.config import McpServerConfig
from rnix_actors.mcp.connection import ServerConnection
from rnix_actors.mcp.device import McpDevice
from rnix_actors.mcp.loop import EventLoopThread
from rnix_actors.mcp.render import catalogue

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0


class McpService:
    """Thread-safe. ``servers`` are the enabled servers of ``mcp.yaml``."""

    def __init__(self, servers: Mapping[str, McpServerConfig], devices: DeviceRegistry) -> None:
        self.configs = dict(servers)
        self.loop = EventLoopThread()
        self.connections: dict[str, ServerConnection] = {}
        self.devices: dict[str, McpDevice] = {}
        self._registry = devices
        for name, config in self.configs.items():
            if config.enabled:
                self._registry.register(config.device, _LazyDevice(self, name))

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the loop (only when a server is enabled) and connect ``start: eager`` ones."""
        enabled = [c for c in self.configs.values() if c.enabled]
        if not enabled:
            return
        self.loop.start()
        self.loop.run(self._make_connections())
        for config in enabled:
            if config.start == "eager":
                self.loop.run(self._ensure(config.name))

    async def _make_connections(self) -> None:
        # Made on the loop: their asyncio events belong to it.
        self.connections = {
            name: ServerConnection(config)
            for name, config in self.configs.items()
            if config.enabled
        }
        self.devices = {name: McpDevice(conn, self.loop) for name, conn in self.connections.items()}

    async def _ensure(self, name: str) -> None:
        self.connections[name].ensure_started()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Close every session at once (each within ``timeout / 2``), then end the loop."""
        connections = list(self.connections.values())
        self.devices, self.connections = {}, {}  # calls from now on: "not running"

        async def close_all() -> None:
            await asyncio.gather(*(c.stop(timeout / 2) for c in connections))

        self.loop.stop(close_all, timeout)

    # -- use ---------------------------------------------------------------------------------
    def device(self, name: str) -> McpDevice:
        device = self.devices.get(name)
        if device is None:
            known = ", ".join(sorted(self.configs)) or "none"
            config = self.configs.get(name)
            if config is not None and config.enabled:
                message = f"MCP server '{name}' is not running: the system is stopped"
                raise DeviceError(ErrorCode.INTERNAL, config.device, message)
            raise DeviceError(
                ErrorCode.NOT_FOUND, f"/dev/mcp/{name}", f"no MCP server '{name}'; servers: {known}"
            )
        return device

    def call(
        self, server: str, tool: str, arguments: Mapping[str, Any], cancel: CancelToken
    ) -> str:
        """Call ``tool`` as a user would (``rnix mcp call``): no whitelist, no agent."""
        device = self.device(server)
        path = f"/dev/mcp/{server}"
        call = DeviceCall(0, path, f"/{tool}", "call", dict(arguments), Path.cwd(), cancel)
        return device.handle(call)

    def status(self, connect: bool, cancel: CancelToken | None = None) -> list[dict[str, Any]]:
        """One entry per server of ``mcp.yaml`` (disabled ones too): name, transport, target,
        state, restarts, last error, and what it offers. ``connect`` starts lazy servers to
        list their tools (a failure to start is reported in the entry, not raised)."""
        entries = []
        for name, config in self.configs.items():
            entry: dict[str, Any] = {
                "name": name,
                "device": config.device,
                "transport": config.transport,
                "target": config.target(),
                "start": config.start,
                "enabled": config.enabled,
            }
            connection = self.connections.get(name)
            if connection is not None and connect:
                try:
                    self.devices[name].offer_tools(cancel or CancelToken())
                except DeviceError as exc:
                    entry["error"] = exc.message
            if connection is None:
                entry.update(state="disabled" if not config.enabled else "stopped", restarts=0)
                entry.update(catalogue((), (), ()))
            else:
                entry.update(state=connection.state, restarts=connection.restarts)
                if connection.last_error:
                    entry.setdefault("error", connection.last_error)
                entry.update(
                    catalogue(connection.tools.values(), connection.resources, connection.prompts)
                )
            entries.append(entry)
        return entries


class _LazyDevice:
    """Registered in the device table before the system starts; forwards to the server's
    `McpDevice` once the loop runs (the registry keeps one object per path)."""

    blocking = True

    def __init__(self, service: McpService, name: str) -> None:
        self._service = service
        self._name = name

    def handle(self, call: DeviceCall) -> str:
        return self._service.device(self._name).handle(call)

    def effect_of(self, op: str, subpath: str) -> Effect:
        device = self._service.devices.get(self._name)
        return Effect.EXTERNAL if device is None else device.effect_of(op, subpath)

    def offer_tools(self, cancel: CancelToken) -> Any:
        return self._service.device(self._name).offer_tools(cancel)
