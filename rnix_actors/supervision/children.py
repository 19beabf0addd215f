"""A supervisor's live children: what each child name runs as now (an agent PID or a nested
supervisor), the delayed restarts waiting for their timer, and the stopping of children.

`SupervisorCore` decides what happens to a child; `LiveChildren` records what actually runs,
so that an `Exit` can be matched to the incarnation it ends. It is the supervisor actor's own
state, used from the supervisor's thread only: a restart timer's thread just tells the
supervisor a `RestartDue`.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from typing import Any

import attrs
import pykka

from rnix_actors.kernel.kernel import Kernel
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.links import unlink as unlink_endpoints
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.messages.links import Exit
from rnix_actors.messages.supervision import QueryTree, RestartDue
from rnix_actors.supervision.core import SupervisorCore
from rnix_actors.supervision.stopping import AgentChild, Stopper, SupervisorChild, Target
from rnix_actors.supervision.views import SupervisorView


@attrs.frozen
class NestedSupervisor:
    """A running child supervisor: its actor, the endpoint linked to its parent, which start."""

    ref: pykka.ActorRef[Any]  # a Supervisor's (its class here would be an import cycle)
    endpoint: Endpoint
    incarnation: int


class LiveChildren:
    """The running incarnations of one supervisor's children, by PID and by name."""

    def __init__(self, kernel: pykka.ActorRef[Kernel], table: ProcessTable, path: str) -> None:
        self.agents: dict[int, tuple[str, int]] = {}  # pid -> (child name, incarnation)
        self.subs: dict[str, NestedSupervisor] = {}
        self.final_views: dict[str, SupervisorView | None] = {}
        self.timers: dict[str, threading.Timer] = {}
        self.stopper = Stopper(kernel, table, path)
        self._tickets = itertools.count(1)
        self._pending: dict[str, int] = {}  # child name -> the ticket of its awaited restart

    def exited(self, exit: Exit) -> tuple[str, int]:
        """Forget the child ``exit`` ends; its (name, incarnation), or ``("", 0)`` for an exit
        of an incarnation already replaced or stopped (a stale one)."""
        if exit.pid is not None:
            return self.agents.pop(exit.pid, ("", 0))
        for name, sub in self.subs.items():
            if sub.endpoint is exit.source:
                del self.subs[name]
                self.final_views[name] = exit.result
                return name, sub.incarnation
        return "", 0

    def start_later(self, name: str, delay: float, supervisor: pykka.ActorRef[Any]) -> None:
        """Tell ``supervisor`` a `RestartDue` for ``name`` in ``delay`` seconds."""
        ticket = next(self._tickets)
        self._pending[name] = ticket

        def due() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                supervisor.tell(RestartDue(name, ticket))

        timer = threading.Timer(delay, due)
        timer.daemon = True
        self.timers[name] = timer
        timer.start()

    def due(self, name: str, ticket: int) -> bool:
        """Whether a `RestartDue` is the one still awaited (not one of a cancelled timer)."""
        if self._pending.get(name) != ticket:
            return False
        del self._pending[name]
        self.timers.pop(name, None)
        return True

    def cancel_timers(self) -> None:
        for timer in self.timers.values():
            timer.cancel()

    def release(self, core: SupervisorCore, names: list[str], mark: bool) -> list[Target]:
        """Forget the running incarnations of ``names`` (and cancel their delayed restarts);
        returns what `stop` must stop, in the same order. ``mark``: tell ``core`` they are
        stopping (False when the core already decided, and may restart them)."""
        targets: list[Target] = []
        for name in names:
            child = core.children.get(name)
            if child is None:
                continue
            if mark:
                core.stopping(name)
            if name in self.timers:
                self.timers.pop(name).cancel()
                self._pending.pop(name, None)
            sub = self.subs.pop(name, None)
            if sub is not None:
                shutdown = child.spec.shutdown_time
                targets.append(SupervisorChild(name, sub.ref, sub.endpoint, shutdown))
            elif child.pid is not None and self.agents.pop(child.pid, None) is not None:
                targets.append(AgentChild(name, child.pid, child.spec.shutdown_time))
        return targets

    def stop(self, targets: list[Target], kill: bool) -> None:
        """Stop ``targets`` in order (see `Stopper`), keeping the nested ones' final views."""
        self.final_views.update(self.stopper.stop(targets, kill))

    def leave_resumable(self, core: SupervisorCore, endpoint: Endpoint) -> list[tuple[str, int]]:
        """Unlink the live ``resume: true`` agent children from ``endpoint`` and forget them;
        returns their (name, pid). The system's graceful stop keeps them to resume later."""
        kept = []
        for pid, (name, _) in list(self.agents.items()):
            child = core.children.get(name)
            if child is None or not child.spec.resume:
                continue
            for other in endpoint.links:
                if other.pid == pid:
                    unlink_endpoints(endpoint, other)
            del self.agents[pid]
            kept.append((name, pid))
        return kept

    def sub_views(self) -> dict[str, SupervisorView | None]:
        """The view of every nested supervisor, live or final (None: too busy to answer)."""
        views: dict[str, SupervisorView | None] = dict(self.final_views)
        for name, sub in self.subs.items():
            try:
                views[name] = sub.ref.ask(QueryTree(), block=True, timeout=2.0)
            except (pykka.ActorDeadError, pykka.Timeout):
                views[name] = None  # busy stopping its own children: shown without
        return views
