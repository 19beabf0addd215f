"""`SupervisorHandle`: a running supervisor, root or nested, addressed by its path, with
the management calls of OTP's ``supervisor`` module."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from rnix_actors.errors import RnixError
from rnix_actors.messages.supervision import (
    AddChild,
    CountChildren,
    DeleteChild,
    GetChildSpec,
    RestartChild,
    StartDynamicChild,
    StopSupervisor,
    TerminateChild,
    WhichChildren,
)
from rnix_actors.supervision.spec import ChildSpec
from rnix_actors.supervision.views import ChildView, SupervisorView


class Supervisors(Protocol):
    """What a handle asks of the supervision service (`Supervision` in
    ``supervision/service.py``, which makes the handles), by supervisor path."""

    def status(self, path: str) -> tuple[str, str]: ...

    def view(self, path: str) -> SupervisorView: ...

    def wait(self, path: str, timeout: float | None) -> SupervisorView: ...

    def when_done(self, path: str, callback: Callable[[SupervisorView], None]) -> None: ...

    def handle(self, path: str) -> SupervisorHandle: ...

    def ask(self, path: str, message: Any) -> Any: ...


class SupervisorHandle:
    """A supervisor addressed by its path (``/<root>`` or ``/<root>/<child>/...``).

    A nested supervisor that its parent restarts keeps its path: the handle follows the
    current incarnation. Calls to a supervisor that is not running raise `RnixError`.
    """

    def __init__(self, service: Supervisors, path: str) -> None:
        self._service = service
        self.path = path

    def __repr__(self) -> str:
        return f"<SupervisorHandle {self.path} {self.status}>"

    @property
    def status(self) -> str:
        """running, completed, escalated or stopped."""
        return self._service.status(self.path)[0]

    @property
    def reason(self) -> str:
        return self._service.status(self.path)[1]

    def view(self) -> SupervisorView:
        """A snapshot of the tree; ``print(handle.view())`` draws it."""
        return self._service.view(self.path)

    def wait(self, timeout: float | None = None) -> SupervisorView:
        """Block until the supervisor has finished (completed, escalated or stopped) and
        return its final view; by then the process table (`System.ps`, `System.info`) shows
        the exits of the children it counted. Raises `StillRunning` (a `TimeoutError`) after
        ``timeout``
        seconds."""
        return self._service.wait(self.path, timeout)

    def add_done_callback(self, callback: Callable[[SupervisorView], None]) -> None:
        """Call ``callback(final_view)`` once the tree finished: at once (in this thread) if
        it has, else in the supervisor's thread as it finishes (keep it quick)."""
        self._service.when_done(self.path, callback)

    def supervisor(self, name: str) -> SupervisorHandle:
        """The handle of the child supervisor ``name``."""
        return self._service.handle(f"{self.path}/{name}")

    # -- OTP's management API -----------------------------------------------------------------
    def which_children(self) -> list[ChildView]:
        """Every child in start order, with its status and PID (OTP: ``which_children``)."""
        return list(self._ask(WhichChildren()))

    def count_children(self) -> dict[str, int]:
        """``{specs, active, supervisors, workers}`` (OTP: ``count_children``)."""
        counts: dict[str, int] = self._ask(CountChildren())
        return counts

    def start_child(self, child: ChildSpec | str) -> str:
        """Start one more child; returns its name. A static supervisor takes a `ChildSpec`
        (validated; a duplicate name is refused); a simple_one_for_one supervisor takes the
        intent of a new child of its template spec."""
        message = StartDynamicChild(child) if isinstance(child, str) else AddChild(child)
        name: str = self._ask(message)
        return name

    def terminate_child(self, name: str) -> bool:
        """Stop the child (SIGTERM, its ``shutdown``, SIGKILL) and keep its spec; it is not
        restarted. Returns whether it was running. Under simple_one_for_one the child is
        also forgotten."""
        running: bool = self._ask(TerminateChild(name))
        return running

    def restart_child(self, name: str) -> int | None:
        """Start a terminated child again; returns its new PID (None for a supervisor).
        A running child is refused."""
        pid: int | None = self._ask(RestartChild(name))
        return pid

    def delete_child(self, name: str) -> None:
        """Forget a terminated child's spec; a running child is refused."""
        self._ask(DeleteChild(name))

    def get_childspec(self, name: str) -> ChildSpec:
        spec: ChildSpec = self._ask(GetChildSpec(name))
        return spec

    def stop(self, kill: bool = False, origin: str = "user") -> None:
        """Stop the subtree in reverse start order (``kill``: SIGKILL at once), no restarts.
        Stopping a supervisor that already finished does nothing. A nested supervisor
        stopped this way counts as a ``shutdown`` exit for its parent (a transient one is
        not restarted)."""
        if self.status == "running":
            with contextlib.suppress(RnixError):  # it may finish meanwhile
                self._ask(StopSupervisor(kill, origin))

    def _ask(self, message: Any) -> Any:
        return self._service.ask(self.path, message)
