"""Guards: checks that see a syscall before it runs.

The kernel knows nothing of the immune daemon; the daemon installs a guard. Each agent process
calls the guards in its own thread, against whatever immutable snapshot they hold, so a check
costs no actor round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import attrs

from rnix_actors.kernel.devices import Effect


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
