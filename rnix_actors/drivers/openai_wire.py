"""The OpenAI chat-completions wire format, pure: request bodies in, parsed replies out.

`request_body` turns an `LLMRequest` into a ``/chat/completions`` body, with native ``tools``
or, for ``tool_calling: text``, the tools described in the system prompt. `parse_completion`
reads a response body back; it raises `Malformed` (with a message fit for the user) when the body
is not a chat completion, a tool call's arguments are not a JSON object, or the answer is empty.
No I/O, no threads: `rnix_actors.drivers.http` does those.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from rnix_actors.drivers.base import LLMRequest, Message, ToolCall, ToolSpec

DETAIL_CHARS = 300  # how much of an error body goes into an error message


class Malformed(Exception):
    """The response body does not have the shape of a usable chat completion."""


@attrs.frozen
class Completion:
    """A parsed reply; token counts are None when the server sent no ``usage``."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    input_tokens: int | None
    output_tokens: int | None


def request_body(
    request: LLMRequest, model: str, tool_calling: Literal["native", "text"]
) -> dict[str, Any]:
    """The JSON body of one ``/chat/completions`` request (non-streaming)."""
    native = tool_calling == "native"
    system = request.system_prompt
    if not native and request.tools:
        system = (system + "\n\n" if system else "") + text_protocol_prompt(request.tools)
    messages = [{"role": "system", "content": system}] if system else []
    messages += wire_messages(request.messages, native)
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": False}
    if native and request.tools:
        body["tools"] = [wire_tool(tool) for tool in request.tools]
    return body


def parse_completion(data: Any, step: int, tool_calling: Literal["native", "text"]) -> Completion:
    """Read a decoded response body; ``step`` makes ids for calls that have none.

    Raises `Malformed` when there is no ``choices[0].message``, a tool call has no name or
    arguments that are not a JSON object, a text-protocol action is broken, or the reply has
    neither text nor tool calls.
    """
    message, finish, (input_tokens, output_tokens) = _choice(data)
    content = _content(message.get("content"))
    calls = tuple(
        _tool_call(raw, step, j, finish)
        for j, raw in enumerate(_list(message.get("tool_calls"), "message.tool_calls"))
    )
    if tool_calling == "text" and not calls:
        content, calls = parse_text_action(content, step)
    if not content and not calls:
        raise Malformed(f"neither text nor tool calls (finish_reason={finish or 'none'})")
    return Completion(content, calls, finish, input_tokens, output_tokens)


def error_detail(text: str, reason: str) -> str:
    """The server's own error message (OpenAI ``{"error": {"message": ...}}``) or its text."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("message"))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error:
            text = str(error)
    text = " ".join(text.split()) or reason or "no details"
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"


def wire_tool(tool: ToolSpec) -> dict[str, Any]:
    """A `ToolSpec` as an OpenAI function tool (its JSON Schema as ``parameters``)."""
    parameters = _plain(tool.parameters)
    function = {"name": tool.name, "description": tool.description, "parameters": parameters}
    return {"type": "function", "function": function}


def _plain(value: Any) -> Any:
    """Mappings and sequences as dicts and lists, so that `json.dumps` takes them."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _action(call: ToolCall) -> str:
    return json.dumps({"tool": call.name, "input": _plain(call.input)}, default=str)


def wire_messages(messages: Sequence[Message], native: bool) -> list[dict[str, Any]]:
    """Context messages as chat messages; without native tools, calls and results become text."""
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    wire: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            if native:
                calls = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {
                            "name": c.name,
                            "arguments": json.dumps(_plain(c.input), default=str),
                        },
                    }
                    for c in m.tool_calls
                ]
                wire.append(
                    {"role": "assistant", "content": m.content or None, "tool_calls": calls}
                )
            else:
                text = "\n".join([m.content, *map(_action, m.tool_calls)]).strip()
                wire.append({"role": "assistant", "content": text})
        elif m.role == "tool" and not native:
            name = names.get(m.tool_call_id, "tool")
            wire.append({"role": "user", "content": f"Result of {name}:\n{m.content}"})
        elif m.role == "tool":
            wire.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        else:
            wire.append({"role": m.role, "content": m.content})
    return wire


def text_protocol_prompt(tools: Sequence[ToolSpec]) -> str:
    """System-prompt instructions for models without native tool calling."""
    lines = [
        "# Tools",
        "To use a tool, reply with only one JSON object (a ```json block is fine), e.g.",
        '{"tool": "<name>", "input": {<arguments>}}',
        "The tool's result comes back in the next message. One tool per reply.",
        "When you are done, reply with plain text: that text is your final answer.",
        "",
        "Available tools (name: description; input JSON Schema):",
    ]
    for tool in tools:
        schema = json.dumps(tool.parameters, sort_keys=True)
        lines.append(f"- {tool.name}: {tool.description} Input: {schema}")
    return "\n".join(lines)


_FENCE = re.compile(r"```(?:json)?[ \t]*\n(.*?)```", re.DOTALL)


def parse_text_action(text: str, step: int) -> tuple[str, tuple[ToolCall, ...]]:
    """Split a text-protocol reply into (remaining text, tool calls).

    The action is the whole reply when it is a JSON object with a ``"tool"`` key, else the
    first fenced block holding one (the text around it is kept). Anything else, JSON answers
    included, is a final answer. Raises `Malformed` when the reply is meant as an action (it
    mentions ``"tool"``) but is not valid JSON, or has no tool name or a non-object input.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            if '"tool"' in stripped:
                raise Malformed(f"the model's JSON action is not valid JSON ({exc.msg})") from None
            return text, ()
        return ("", (_text_call(data, step),)) if _is_action(data) else (text, ())
    for match in _FENCE.finditer(text):
        try:
            data = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if _is_action(data):
            rest = (text[: match.start()] + text[match.end() :]).strip()
            return rest, (_text_call(data, step),)
    return text, ()


def _is_action(data: Any) -> bool:
    return isinstance(data, dict) and "tool" in data


def _text_call(data: Any, step: int) -> ToolCall:
    if not isinstance(data, dict) or not isinstance(data.get("tool"), str) or not data["tool"]:
        raise Malformed('a JSON action needs "tool": "<name>" (and "input": {...})')
    tool_input = data.get("input", {})
    if not isinstance(tool_input, dict):
        raise Malformed(f'the "input" of tool {data["tool"]!r} must be a JSON object')
    return ToolCall(id=f"text-s{step}-c0", name=data["tool"], input=tool_input)


def _choice(data: Any) -> tuple[dict[str, Any], str, tuple[int | None, int | None]]:
    """(choices[0].message, finish_reason, (prompt_tokens, completion_tokens)) of a body."""
    if not isinstance(data, dict):
        raise Malformed("the body is not a JSON object")
    choices = _list(data.get("choices"), "choices")
    if not choices or not isinstance(choices[0], dict):
        raise Malformed("no choices[0]")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise Malformed("choices[0].message is missing or not an object")
    finish = choices[0].get("finish_reason")
    usage = data.get("usage")
    counts: tuple[int | None, int | None] = (None, None)
    if isinstance(usage, dict):
        counts = (_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))
    return message, finish if isinstance(finish, str) else "", counts


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{field} is not a list")
    return value


def _content(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text", "") for p in value if isinstance(p, dict))
    raise Malformed("choices[0].message.content is not text")


def _tool_call(raw: Any, step: int, index: int, finish: str) -> ToolCall:
    function = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise Malformed(f"tool_calls[{index}] has no function name")
    name, arguments = function["name"], function.get("arguments") or {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            cut = " (finish_reason=length: the answer was cut off)" if finish == "length" else ""
            raise Malformed(
                f"tool call '{name}' has arguments that are not valid JSON ({exc.msg}){cut}"
            ) from None
    if not isinstance(arguments, dict):
        raise Malformed(f"tool call '{name}' has arguments that are not a JSON object")
    call_id = raw.get("id")
    return ToolCall(
        id=call_id if isinstance(call_id, str) and call_id else f"call-s{step}-c{index}",
        name=name,
        input=arguments,
    )
