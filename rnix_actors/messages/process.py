"""Messages from the kernel to one agent process, and the process's own step messages."""

from __future__ import annotations

import attrs

from rnix_actors.messages.lifecycle import Signal


@attrs.frozen
class RunStep:
    """Self-sent: run reasoning step ``number`` (ignored if stale, paused or finished)."""

    number: int


@attrs.frozen
class ContinueCalls:
    """Self-sent: execute the tool calls still pending from the current step."""


@attrs.frozen
class Pause:
    origin: str


@attrs.frozen
class Resume:
    """SIGRESUME. ``retry``: run the tool call a guard refused (when it suspended the
    process) again, instead of leaving the refusal as that call's result."""

    origin: str
    retry: bool = False


@attrs.frozen
class Terminate:
    """SIGTERM/SIGINT: end at the next step boundary with exit 1."""

    signal: Signal
    origin: str


@attrs.frozen
class Reaped:
    """The kernel has already ended this process (SIGKILL, kill while suspended): just stop."""
