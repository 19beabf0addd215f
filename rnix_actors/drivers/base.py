"""The driver interface between the reasoning loop and an LLM.

A driver turns an `LLMRequest` (the context and the tool definitions of one reasoning step) into
an `LLMResponse` (text and/or tool calls plus token usage). Drivers are called from the agent
process's thread with a `CancelToken`; a long call must give up promptly when it fires.
The HTTP driver of a later issue implements the same `Driver` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import attrs

from rnix_actors.cancel import CancelToken

Role = Literal["system", "user", "assistant", "tool"]


@attrs.frozen
class ToolCall:
    """One tool call requested by the model."""

    id: str
    name: str
    input: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Message:
    """One entry of a process's context."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""


@attrs.frozen
class ToolSpec:
    """A tool offered to the model: its name, what it does, and a JSON Schema of its input."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@attrs.frozen
class LLMRequest:
    """One reasoning step, as the driver sees it. ``intent`` is the task the process was
    spawned with (also the first user message); ``step`` counts from 1."""

    pid: int
    uuid: str
    template: str
    step: int
    model: str
    system_prompt: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    intent: str = ""


@attrs.frozen
class LLMResponse:
    """What the model answered. No tool calls means ``content`` is the final answer.

    ``duration_ms``: how long the model took, when the driver knows better than the wall
    clock around the call (a host function replaying or simulating a model); None: the
    kernel measures it."""

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = ""
    duration_ms: float | None = None
    cost_usd: float = 0.0  # what the answer cost, where the provider prices it (0: not priced)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@runtime_checkable
class Driver(Protocol):
    """An LLM backend. ``name`` is the provider name: the process talks to ``/dev/llm/<name>``.

    ``complete`` raises `rnix_actors.errors.DriverError` when no response can be produced, and
    `rnix_actors.kernel.cancel.Cancelled` when ``cancel`` fired during the call.
    """

    name: str

    def complete(self, request: LLMRequest, cancel: CancelToken) -> LLMResponse: ...

    def prepare(self, model: str) -> None:
        """Check ``model`` before a process starts; raise a `RnixError` naming the fix.

        Lets a spawn fail cleanly (nothing half-started) on a missing replay script, an
        unknown model name or a missing API key.
        """
        ...

    def release(self, pid: int) -> None:
        """Forget per-process state (cursors, sessions) once the process has exited."""
        ...
