"""Pure translations of MCP values: tool messages, function names, schemas and effects."""

from __future__ import annotations

import base64

import mcp_types as types
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.kernel.devices import Effect
from rnix_actors.mcp.render import (
    MAX_RESULT_CHARS,
    function_name,
    input_schema,
    result_text,
    tool_effect,
)


def tool(annotations: types.ToolAnnotations | None = None, **schema: object) -> types.Tool:
    return types.Tool(name="t", input_schema=schema or {"type": "object"}, annotations=annotations)


def test_text_blocks_are_the_message() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="a"),
            types.TextContent(type="text", text="b"),
        ],
        structured_content={"result": "ignored: the text says it"},
    )
    assert result_text(result) == "a\nb"


def test_structured_content_without_text_is_json() -> None:
    result = types.CallToolResult(content=[], structured_content={"hits": ["x", "y"]})
    assert result_text(result) == '{"hits": ["x", "y"]}'


def test_other_blocks_are_one_line_notes() -> None:
    png = base64.b64encode(b"\x89PNG" + b"\0" * 96).decode()
    result = types.CallToolResult(
        content=[
            types.ImageContent(type="image", data=png, mime_type="image/png"),
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(uri="file:///a.txt", text="inside"),
            ),
            types.ResourceLink(type="resource_link", uri="file:///b.txt", name="b"),
        ]
    )
    assert result_text(result).splitlines() == [
        "[image image/png, 100 bytes]",
        "inside",
        "[resource file:///b.txt b]",
    ]


def test_long_results_are_cut_and_say_so() -> None:
    result = types.CallToolResult(
        content=[types.TextContent(type="text", text="x" * (MAX_RESULT_CHARS + 5))]
    )
    text = result_text(result)
    assert text.startswith("x" * 100) and text.endswith(
        f"[cut: {MAX_RESULT_CHARS + 5} characters in all]"
    )


def test_effects_follow_the_annotations() -> None:
    assert tool_effect(None) is Effect.EXTERNAL
    assert tool_effect(tool()) is Effect.EXTERNAL
    assert tool_effect(tool(types.ToolAnnotations(read_only_hint=True))) is Effect.READ
    local = types.ToolAnnotations(read_only_hint=False, open_world_hint=False)
    assert tool_effect(tool(local)) is Effect.WRITE
    destructive = types.ToolAnnotations(destructive_hint=True, open_world_hint=False)
    assert tool_effect(tool(destructive)) is Effect.WRITE
    assert tool_effect(tool(types.ToolAnnotations(destructive_hint=False))) is Effect.EXTERNAL


def test_schemas_become_object_schemas() -> None:
    assert input_schema(tool(type="object", properties={"q": {"type": "string"}})) == {
        "type": "object",
        "properties": {"q": {"type": "string"}},
    }
    odd = input_schema(tool(**{"$schema": "x", "anyOf": [{"type": "object"}]}))
    assert odd["type"] == "object" and "$schema" not in odd and odd["properties"] == {}


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=200))
def test_function_names_are_valid_and_distinct(server: str, name: str) -> None:
    made = function_name(server, name)
    assert len(made) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in made)
    assert made != function_name(server, name + "x")
