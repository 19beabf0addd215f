"""Pure translations between MCP values and what agents and models see.

- `result_text`: a ``CallToolResult`` (text, structured content, images, resources) as the
  text of a tool message; `resource_text` and `prompt_text` likewise.
- `function_name` and `tool_spec`: an MCP tool as a function tool a model can call
  (``mcp__<server>__<tool>``, at most 64 characters of ``[A-Za-z0-9_-]``, the tool's JSON
  Schema as parameters).
- `tool_effect`: what a call does (`Effect`) from the tool's annotations.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import mcp_types as types

from rnix_actors.drivers.base import ToolSpec
from rnix_actors.kernel.devices import Effect

MAX_RESULT_CHARS = 100_000  # a tool message longer than this is cut (and says so)
MAX_DESCRIPTION = 1024
_NOT_FUNCTION_CHAR = re.compile(r"[^A-Za-z0-9_-]")


def tool_effect(tool: types.Tool | None) -> Effect:
    """``readOnlyHint`` → READ; a closed world (``openWorldHint: false``) → WRITE; anything
    else, and a tool without annotations, → EXTERNAL (MCP's own defaults: not read-only,
    destructive, open world). Annotations are the server's hints about its own tools."""
    hints = None if tool is None else tool.annotations
    if hints is None:
        return Effect.EXTERNAL
    if hints.read_only_hint:
        return Effect.READ
    if hints.open_world_hint is False:
        return Effect.WRITE
    return Effect.EXTERNAL


def function_name(server: str, tool: str) -> str:
    """``mcp__<server>__<tool>``, made a valid function name; long names end in a hash so
    that two tools never share one."""
    name = _NOT_FUNCTION_CHAR.sub("_", f"mcp__{server}__{tool}")
    if len(name) <= 64 and name == f"mcp__{server}__{tool}":
        return name
    digest = hashlib.sha256(tool.encode()).hexdigest()[:8]
    return f"{name[:55]}_{digest}"


def tool_spec(server: str, tool: types.Tool) -> ToolSpec:
    description = tool.description or tool.title or f"The {tool.name} tool."
    description = f"{description.strip()} (MCP server {server})"
    if len(description) > MAX_DESCRIPTION:
        description = description[: MAX_DESCRIPTION - 1] + "…"
    return ToolSpec(function_name(server, tool.name), description, input_schema(tool))


def input_schema(tool: types.Tool) -> dict[str, Any]:
    """The tool's input schema as an object schema (what function calling expects)."""
    schema = dict(tool.input_schema or {})
    schema.pop("$schema", None)
    if schema.get("type") != "object":
        schema = {"properties": {}, **schema}
        schema["type"] = "object"
    schema.setdefault("properties", {})
    return schema


def result_text(result: types.CallToolResult) -> str:
    """The tool message for a result: its text blocks, or its structured content as JSON
    when it has no text, other blocks as one-line notes."""
    parts = [_block_text(block) for block in result.content]
    texts = [p for p in parts if p]
    if result.structured_content is not None and not any(
        isinstance(b, types.TextContent) for b in result.content
    ):
        texts.insert(0, json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return _cut("\n".join(texts))


def _block_text(block: Any) -> str:
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        kind = "image" if isinstance(block, types.ImageContent) else "audio"
        return f"[{kind} {block.mime_type}, {_decoded_size(block.data)} bytes]"
    if isinstance(block, types.ResourceLink):
        return f"[resource {block.uri}{' ' + block.name if block.name else ''}]"
    if isinstance(block, types.EmbeddedResource):
        return _contents_text(block.resource)
    return f"[{getattr(block, 'type', type(block).__name__)} content]"


def _contents_text(contents: Any) -> str:
    if isinstance(contents, types.TextResourceContents):
        return contents.text
    mime = getattr(contents, "mime_type", None) or "binary"
    size = _decoded_size(getattr(contents, "blob", ""))
    return f"[{mime} resource {contents.uri}, {size} bytes]"


def _decoded_size(data: str) -> int:
    """Bytes of base64 ``data`` without decoding it."""
    return len(data) * 3 // 4 - data[-2:].count("=")


def resource_text(result: types.ReadResourceResult) -> str:
    return _cut("\n".join(_contents_text(c) for c in result.contents))


def prompt_text(result: types.GetPromptResult) -> str:
    lines = [f"{m.role}: {_block_text(m.content)}" for m in result.messages]
    return _cut("\n".join(lines))


def catalogue(
    tools: Iterable[types.Tool],
    resources: Iterable[types.Resource],
    prompts: Iterable[types.Prompt],
) -> dict[str, Any]:
    """What a server offers, as plain data (``rnix mcp list --json``, the device's listing)."""
    return {
        "tools": [
            {
                "name": t.name,
                "description": first_line(t.description or t.title or ""),
                "effect": tool_effect(t).value,
                "input_schema": input_schema(t),
            }
            for t in tools
        ],
        "resources": [
            {
                "uri": str(r.uri),
                "name": r.name,
                "description": first_line(r.description or ""),
                "mime_type": r.mime_type,
            }
            for r in resources
        ],
        "prompts": [
            {
                "name": p.name,
                "description": first_line(p.description or ""),
                "arguments": [a.name for a in p.arguments or ()],
            }
            for p in prompts
        ],
    }


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 120 else line[:119] + "…"


def plain_arguments(args: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in args.items()}


def _cut(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n…[cut: {len(text)} characters in all]"
