"""``rnix mcp list`` and ``rnix mcp call``: the MCP servers of ``mcp.yaml``.

With a daemon running they ask its system (whose sessions agents share); without one they
start an embedded system for the command. ``list`` starts lazy servers to list their tools.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rnix_actors.cli.common import Context, emit_json, fail, out, style
from rnix_actors.errors import RnixError
from rnix_actors.ipc.control import find_daemon
from rnix_actors.ipc.local import Api
from rnix_actors.ipc.protocol import ApiError
from rnix_actors.mcp import project_servers
from rnix_actors.paths import shipped_conf_dir
from rnix_actors.system import resolve_state_dir


@click.group("mcp")
def mcp() -> None:
    """MCP servers mounted as devices (/dev/mcp/<server>, from mcp.yaml)."""


def _ask(obj: Context, as_json: bool, ask: Callable[[Api], dict[str, Any]]) -> dict[str, Any]:
    try:
        client = obj.daemon()
        if client is not None:
            with client:
                return ask(client)
        with obj.embedded() as api:
            return ask(api)
    except (RnixError, ApiError) as exc:
        fail(str(exc), as_json)


@mcp.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def list_servers(obj: Context, as_json: bool) -> None:
    """Servers, their state, and the tools, resources and prompts they offer."""
    result = _ask(obj, as_json, lambda api: api.call("mcp_list", connect=True))
    if as_json:
        emit_json({"ok": True, **result})
        return
    servers = result["servers"]
    if not servers:
        out("No MCP servers: add them to .rnix/mcp.yaml (see docs/mcp.md).")
    for entry in servers:
        out("\n".join(server_lines(entry)))


def server_lines(entry: dict[str, Any]) -> list[str]:
    """One server as text: a head line, then its tools, resources and prompts."""
    head = f"{entry['name']}  {entry['device']}  {entry['state']}"
    head += f"  {entry['transport']}: {entry['target']}"
    if entry.get("restarts"):
        head += f"  (restarts: {entry['restarts']})"
    lines = [head]
    if entry.get("error"):
        lines.append(f"  error: {entry['error']}")
    for tool in entry["tools"]:
        lines.append(f"  tool {tool['name']} [{tool['effect']}]  {tool['description']}".rstrip())
    for resource in entry["resources"]:
        lines.append(f"  resource {resource['uri']}  {resource['description']}".rstrip())
    for prompt in entry["prompts"]:
        args = ", ".join(prompt["arguments"])
        lines.append(f"  prompt {prompt['name']}({args})  {prompt['description']}".rstrip())
    return lines


def _root_paths(ctx: click.Context) -> tuple[Path, Path]:
    params = ctx.find_root().params
    project = Path(params.get("project_dir") or Path.cwd()).resolve()
    return project, resolve_state_dir(project, params.get("state_dir"))


def complete_server(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Server names of mcp.yaml (read only: nothing starts)."""
    try:
        servers = project_servers(_root_paths(ctx)[0], shipped_conf_dir(), True)
    except RnixError:
        return []
    return [name for name, c in servers.items() if c.enabled and name.startswith(incomplete)]


def complete_tool(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Tool names of the server, from the running daemon (none without one)."""
    client = find_daemon(_root_paths(ctx)[1])
    if client is None:
        return []
    try:
        with client:
            servers = client.call("mcp_list")["servers"]
    except (RnixError, ApiError, OSError):
        return []
    server = ctx.params.get("server")
    tools = [t["name"] for s in servers if s["name"] == server for t in s["tools"]]
    return [name for name in tools if name.startswith(incomplete)]


@mcp.command("call")
@click.argument("server", shell_complete=complete_server)
@click.argument("tool", shell_complete=complete_tool)
@click.argument("arguments", default="{}", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def call(obj: Context, server: str, tool: str, arguments: str, as_json: bool) -> None:
    """Call TOOL of SERVER with ARGUMENTS (a JSON object) and print its result."""
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        fail(f"ARGUMENTS is not JSON ({exc.msg} at column {exc.colno})", as_json, "BAD_PARAMS")
    if not isinstance(parsed, dict):
        fail('ARGUMENTS must be a JSON object, e.g. \'{"query": "milk"}\'', as_json, "BAD_PARAMS")
    params = {"server": server, "tool": tool, "arguments": parsed}
    result = _ask(obj, as_json, lambda api: api.call("mcp_call", **params))
    if as_json:
        emit_json(result)
    elif result["ok"]:
        out(result["text"])
    else:
        out(style("tool error: ", fg="red", bold=True) + result["error"], err=True)
    sys.exit(0 if result["ok"] else 1)
