"""Messages of the supervision protocol (the migration seam is `rnix_actors.messages.migration`)."""

from __future__ import annotations

from typing import Any

import attrs

SUPERVISOR_EVENTS = frozenset(
    {
        "SupervisorStart",
        "SupervisorChildStart",
        "SupervisorChildExit",
        "SupervisorStaleExit",
        "SupervisorRestart",
        "SupervisorBackoff",
        "SupervisorShutdown",
        "SupervisorMigration",
        "SupervisorEscalate",
        "SupervisorExit",
        "SupervisorStop",
        "SupervisorChildKept",
    }
)
"""The names of the events supervisors publish (``template == "supervisor"``)."""


@attrs.frozen
class ChildStartFailed:
    """Self-sent when a child could not be started (OTP's ``try_again_restart``): the
    failure is handled as that child's exit once the current message is done, never by
    recursing into the restart that is still running."""

    name: str
    incarnation: int
    reason: str


@attrs.frozen
class StartDeferred:
    """Self-sent: start the restarts that waited while more exits were queued."""


@attrs.frozen
class RestartDue:
    """Self-sent by a backoff timer: start ``name`` now if it is still waiting."""

    name: str
    ticket: int


@attrs.frozen
class StopSupervisor:
    """Stop the subtree (children in reverse start order) and then the supervisor.

    ``kill`` sends SIGKILL at once instead of SIGTERM + shutdown grace. Answered when done.
    """

    kill: bool = False
    origin: str = "user"
    # A graceful system stop: ``resume: true`` agent children are left as they are (paused
    # by the stop, checkpointed) and unlinked, for the next start's tree to resume them.
    keep: bool = False


@attrs.frozen
class StartDynamicChild:
    """simple_one_for_one: start one more child of the template spec; answered with its name."""

    intent: str


@attrs.frozen
class QueryTree:
    """Answered with a `SupervisorView` of the live subtree."""


# -- OTP's supervisor management API (each answered; errors are `RnixError`) ---------------
@attrs.frozen
class AddChild:
    """``start_child(ChildSpec)`` on a static supervisor: add the spec and start it;
    answered with the child's name."""

    spec: Any  # ChildSpec


@attrs.frozen
class TerminateChild:
    """Stop a child and keep its spec (it is not restarted); answered with whether it ran."""

    name: str


@attrs.frozen
class RestartChild:
    """Start a terminated child again; answered with its new PID (None for a supervisor)."""

    name: str


@attrs.frozen
class DeleteChild:
    """Forget a terminated child's spec."""

    name: str


@attrs.frozen
class GetChildSpec:
    """Answered with the child's `ChildSpec`."""

    name: str


@attrs.frozen
class WhichChildren:
    """Answered with the `ChildView` of each child, in start order."""


@attrs.frozen
class CountChildren:
    """Answered with ``{specs, active, supervisors, workers}``."""
