"""Exit reasons and the messages of links and monitors (Erlang's ``'EXIT'`` and ``'DOWN'``).

An `ExitReason` is a typed value: code decides on its ``kind``, never on its prose. The kinds
are OTP's: ``normal`` (the work is done), ``shutdown`` (someone asked it to stop: a SIGTERM, a
supervisor stopping its children), ``killed`` (SIGKILL, or stopped without saying why),
``failed`` (a crash or any other error) and ``noproc`` (the other side was already dead when
the link or monitor was made).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import attrs


class ExitKind(StrEnum):
    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    KILLED = "killed"
    FAILED = "failed"
    NOPROC = "noproc"


@attrs.frozen
class ExitReason:
    """Why an actor ended: ``kind`` decides, ``origin`` says who caused it (``user``,
    ``supervisor /svc``...), ``detail`` is the human-readable text."""

    kind: ExitKind
    origin: str = ""
    detail: str = ""

    @property
    def abnormal(self) -> bool:
        """OTP: anything but ``normal`` and ``shutdown``. A transient child is restarted only
        after an abnormal exit."""
        return self.kind not in (ExitKind.NORMAL, ExitKind.SHUTDOWN)

    def __str__(self) -> str:
        return self.detail or str(self.kind)


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
