"""The guard protocol: what a guard is shown (a `SyscallAttempt`, with the call's declared
`Effect`) and what it answers (a `Verdict`). Guards are checks that see a syscall before it
runs.

The kernel knows nothing of the immune daemon; the daemon installs a guard. Each agent process
calls the guards in its own thread, against whatever immutable snapshot they hold, so a check
costs no actor round trip.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import attrs


class Effect(enum.Enum):
    """What a device call does to the world, as the immune daemon weighs it.

    ``READ`` only looks (a file read, a listing, a search); ``WRITE`` changes local state (a
    file write, a delete); ``EXTERNAL`` reaches outside the system (a shell command, a
    payment, an email, a post). A device that does not say is treated as ``EXTERNAL``:
    unknown means side-effecting.
    """

    READ = "read"
    WRITE = "write"
    EXTERNAL = "external"

    @property
    def side_effecting(self) -> bool:
        return self is not Effect.READ


class SyscallAttempt(NamedTuple):
    """A syscall about to run, or (``syscall == "ReasonStep"``) a model answer about to be
    acted on: then ``tokens`` and ``duration_ms`` describe the LLM call and ``args`` holds the
    number of tool calls. A non-allow verdict on a step suspends the process before any of
    the step's tool calls runs.

    ``op`` is the device operation (``read``, ``write``, ``call``...) and ``effect`` what the
    device declares the call does (`Effect`; a device that does not say, or a path no device
    covers, is ``EXTERNAL``), so that a guard can weigh a side-effecting call before it runs.

    A named tuple, not an attrs class: one is built for every syscall while a guard is
    installed, and it is built about twice as fast.
    """

    pid: int
    template: str
    step: int
    syscall: str
    device: str
    args: Mapping[str, Any]
    tokens: int = 0
    duration_ms: float = 0.0
    op: str = ""
    effect: Effect = Effect.EXTERNAL


@attrs.frozen
class Verdict:
    """``block`` refuses this call (a tool error); ``suspend`` refuses it and suspends the
    process (SIGPAUSE semantics) before it runs anything else."""

    action: Literal["allow", "block", "suspend"]
    reason: str = ""
    origin: str = "guard"


ALLOW = Verdict("allow")

Guard = Callable[[SyscallAttempt], Verdict]
