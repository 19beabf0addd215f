"""Exit reasons and the messages of links and monitors (Erlang's ``'EXIT'`` and ``'DOWN'``).

An `ExitReason` is a typed value: code decides on its ``kind``, never on its prose. A kind says
what happened (``completed``, ``signal``, ``breaker``, ``node_lost``...); each kind belongs to
one of OTP's classes (`ExitClass`): ``normal`` (the work is done), ``shutdown`` (someone asked
it to stop), ``killed`` (SIGKILL, or stopped without saying why), ``failed`` (a crash or any
other error) and ``noproc`` (the other side was already dead when the link or monitor was
made). Links, supervisors and restart types decide on the class; the ledger, compose, the
shell and the immune daemon may look at the finer kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import attrs


class ExitClass(StrEnum):
    """OTP's exit classes: what a link or a supervisor decides on."""

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    KILLED = "killed"
    FAILED = "failed"
    NOPROC = "noproc"


class ExitKind(StrEnum):
    """Why a process or actor ended (or, for the suspension kinds, why it is suspended).

    The values are the wire names (events' ``kind``, ``ps --json``'s ``exit_kind``)."""

    # normal
    COMPLETED = "completed"  # an agent finished its task (complete, or a final answer)
    NORMAL = "normal"  # ended with nothing left to do (a supervisor whose children completed)
    # shutdown
    SHUTDOWN = "shutdown"  # stopped by its supervisor, its handle, the system's stop
    SIGNAL = "signal"  # a SIGTERM or SIGINT honoured (at a step boundary or while suspended)
    # killed
    KILLED = "killed"  # SIGKILL (also a SIGTERM grace that ran out), or stopped unsaid
    # failed
    ERROR = "error"  # a crash, a model error, a start that failed
    BREAKER = "breaker"  # the circuit breaker tripped
    TIMEOUT = "timeout"  # a step ran over its time limit
    MAX_STEPS = "max_steps"  # the step limit was reached before the task was done
    LINK = "link"  # a linked actor ended abnormally and this one does not trap exits
    ESCALATED = "escalated"  # a supervisor gave up (restart intensity exceeded)
    NODE_LOST = "node_lost"  # the machine hosting it was lost (a distributed backend)
    LOST = "lost"  # its system died while it ran (found by the next start)
    # suspension kinds (exit codes 2 and 3: the process did not end)
    PAUSED = "paused"  # SIGPAUSE (a user, the immune daemon, a guard's verdict)
    BUDGET = "budget"  # its token or cost budget (or its tree's) is spent
    CONTEXT_FULL = "context_full"  # its context window is full
    # noproc
    NOPROC = "noproc"

    # ``failed`` was the generic failure kind before the kinds were split; it reads as ``error``.
    FAILED = "error"

    @classmethod
    def _missing_(cls, value: object) -> ExitKind | None:
        return cls.ERROR if value == "failed" else None

    @property
    def exit_class(self) -> ExitClass:
        return _CLASS_OF[self]

    @property
    def external(self) -> bool:
        """Caused from outside the agent (a signal, a stop, a lost node or system, a linked
        actor's end): it says nothing about the agent's ability to do its task."""
        return self in _EXTERNAL


_CLASS_OF: dict[ExitKind, ExitClass] = {
    ExitKind.COMPLETED: ExitClass.NORMAL,
    ExitKind.NORMAL: ExitClass.NORMAL,
    ExitKind.SHUTDOWN: ExitClass.SHUTDOWN,
    ExitKind.SIGNAL: ExitClass.SHUTDOWN,
    ExitKind.PAUSED: ExitClass.SHUTDOWN,
    ExitKind.KILLED: ExitClass.KILLED,
    ExitKind.NOPROC: ExitClass.NOPROC,
}
"""Every kind not listed is ``failed``: a new kind is abnormal unless it says otherwise."""
for _kind in ExitKind:
    _CLASS_OF.setdefault(_kind, ExitClass.FAILED)

_EXTERNAL = frozenset(
    {
        ExitKind.SHUTDOWN,
        ExitKind.SIGNAL,
        ExitKind.KILLED,
        ExitKind.LINK,
        ExitKind.NODE_LOST,
        ExitKind.LOST,
        ExitKind.PAUSED,
        ExitKind.NOPROC,
    }
)
_KIND_OF_CODE = {0: ExitKind.COMPLETED, 2: ExitKind.PAUSED, 3: ExitKind.CONTEXT_FULL}


@attrs.frozen
class ExitReason:
    """Why an actor ended: ``kind`` decides, ``origin`` says who caused it (``user``,
    ``supervisor /svc``...), ``detail`` is the human-readable text."""

    kind: ExitKind
    origin: str = ""
    detail: str = ""

    @property
    def exit_class(self) -> ExitClass:
        """The OTP class of the kind (what links and supervisors decide on)."""
        return _CLASS_OF[self.kind]

    @property
    def abnormal(self) -> bool:
        """OTP: anything but ``normal`` and ``shutdown``. A transient child is restarted only
        after an abnormal exit."""
        return _CLASS_OF[self.kind] not in (ExitClass.NORMAL, ExitClass.SHUTDOWN)

    def __str__(self) -> str:
        return self.detail or str(self.kind)

    def to_dict(self) -> dict[str, str]:
        """The wire form: ``{"kind", "origin", "detail"}`` (events, ``--json``, IPC)."""
        return {"kind": str(self.kind), "origin": self.origin, "detail": self.detail}

    @classmethod
    def from_event_args(cls, args: Mapping[str, Any]) -> ExitReason:
        """The reason an ``Exit`` or ``Suspend`` event carries (``kind``, ``origin``,
        ``reason``); a record without ``kind`` (written before kinds existed) reads its kind
        from ``code``: 0 ``completed``, 2 ``paused``, 3 ``context_full``, else ``error``."""
        detail = str(args.get("reason") or "")
        try:
            kind = ExitKind(str(args["kind"]))
        except (KeyError, ValueError):
            try:
                kind = _KIND_OF_CODE.get(int(args.get("code", 1)), ExitKind.ERROR)
            except (TypeError, ValueError):
                kind = ExitKind.ERROR
        return cls(kind, str(args.get("origin") or ""), detail)

    @classmethod
    def from_dict(cls, data: Any) -> ExitReason:
        """Read the wire form back; an unknown or missing kind reads as ``error``."""
        if not isinstance(data, dict):
            return cls(ExitKind.ERROR, "", str(data or ""))
        try:
            kind = ExitKind(str(data.get("kind") or ""))
        except ValueError:
            kind = ExitKind.ERROR
        return cls(kind, str(data.get("origin") or ""), str(data.get("detail") or ""))


NORMAL = ExitReason(ExitKind.NORMAL)


@attrs.frozen(eq=False)
class Exit:
    """A linked actor ended (delivered as a message only to an actor that traps exits).

    ``source`` is the dead actor's `Endpoint`; ``pid`` its kernel PID for agent processes;
    ``result`` whatever it left behind (a supervisor's final view)."""

    source: Any  # rnix_actors.kernel.links.Endpoint
    reason: ExitReason
    pid: int | None = None
    result: Any = None


@attrs.frozen(eq=False)
class Down:
    """A monitored actor ended (or was already dead: ``noproc``). ``ref`` is what
    `monitor` returned."""

    ref: int
    source: Any  # rnix_actors.kernel.links.Endpoint
    reason: ExitReason
    pid: int | None = None
    result: Any = None


@attrs.frozen(eq=False)
class ExitSignal:
    """Internal: an exit signal for an actor that does not trap exits; it ends the actor."""

    exit: Exit
