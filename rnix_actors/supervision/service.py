"""Supervision as a service of the `System`: starting roots, handles, the tree, the planner."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from rnix_actors.drivers.base import Driver
from rnix_actors.drivers.python import PythonDriver
from rnix_actors.errors import RnixError
from rnix_actors.kernel.base import ThreadTracker
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.supervision.actor import Supervisor, SupervisorDeps
from rnix_actors.supervision.messages import QueryTree, StartDynamicChild, StopSupervisor
from rnix_actors.supervision.spec import ChildSpec, SupervisorSpec, validate
from rnix_actors.supervision.views import SupervisorView
from rnix_actors.templates import AgentTemplate

log = logging.getLogger(__name__)

ASK_TIMEOUT = 30.0


@attrs.define
class _Root:
    spec: SupervisorSpec
    ref: pykka.ActorRef[Supervisor] | None
    status: str = "running"
    reason: str = ""
    final: SupervisorView | None = None
    done: threading.Event = attrs.field(factory=threading.Event)
    on_done: list[Callable[[SupervisorView], None]] = attrs.field(factory=list)


class SupervisorHandle:
    """A started root supervisor, addressed by its path (``/<name>``)."""

    def __init__(self, service: Supervision, path: str) -> None:
        self._service = service
        self.path = path

    @property
    def status(self) -> str:
        """running, completed, escalated or stopped."""
        return self._service.root_status(self.path)[0]

    @property
    def reason(self) -> str:
        return self._service.root_status(self.path)[1]

    def view(self) -> SupervisorView:
        """A snapshot of the tree; ``print(handle.view())`` draws it."""
        return self._service.view(self.path)

    def wait(self, timeout: float | None = None) -> SupervisorView:
        """Block until the supervisor has finished (completed, escalated or stopped) and
        return its final view. Raises `TimeoutError` after ``timeout`` seconds."""
        return self._service.wait(self.path, timeout)

    def add_done_callback(self, callback: Callable[[SupervisorView], None]) -> None:
        """Call ``callback(final_view)`` once the tree finished: at once (in this thread) if
        it has, else in the supervisor's thread as it finishes (keep it quick)."""
        self._service.when_done(self.path, callback)

    def start_child(self, intent: str) -> str:
        """simple_one_for_one: start a child of the template spec; returns its name."""
        name: str = self._service.ask(self.path, StartDynamicChild(intent))
        return name

    def stop(self, kill: bool = False, origin: str = "user") -> None:
        """Stop the subtree in reverse start order (``kill``: SIGKILL at once), no restarts.
        Stopping a supervisor that already finished does nothing."""
        if self.status == "running":
            with contextlib.suppress(RnixError):  # it may finish meanwhile
                self._service.ask(self.path, StopSupervisor(kill, origin))


class Supervision:
    def __init__(
        self,
        kernel: Any,
        bus: Any,
        table: ProcessTable,
        templates: Callable[[str], AgentTemplate | None],
        register_driver: Callable[[Driver], None],
        tracker: ThreadTracker | None,
    ) -> None:
        self._lock = threading.Lock()
        self._roots: dict[str, _Root] = {}
        self._templates = templates
        self._register_driver = register_driver
        self.planner: Any = None
        self.deps = SupervisorDeps(
            kernel=kernel,
            bus=bus,
            table=table,
            resolve_agent=self._resolve_agent,
            planner=lambda: self.planner,
            on_root_exit=self._root_exited,
            tracker=tracker,
        )

    def supervise(self, spec: SupervisorSpec) -> SupervisorHandle:
        """Validate ``spec`` (nothing starts on error) and start it as a root."""
        validate(spec, lambda name: self._templates(name) is not None)
        path = f"/{spec.name}"
        with self._lock:
            existing = self._roots.get(path)
            if existing is not None and existing.status == "running":
                raise RnixError(f"a supervisor named {spec.name!r} is already running")
            root = _Root(spec, None)
            self._roots[path] = root
        root.ref = Supervisor.start(spec, self.deps, path, None)
        return SupervisorHandle(self, path)

    def root_status(self, path: str) -> tuple[str, str]:
        with self._lock:
            root = self._roots[path]
            return root.status, root.reason

    def when_done(self, path: str, callback: Callable[[SupervisorView], None]) -> None:
        with self._lock:
            root = self._roots[path]
            final = root.final if root.done.is_set() else None
            if final is None:
                root.on_done.append(callback)
        if final is not None:
            callback(final)

    def _root_exited(self, view: SupervisorView) -> None:
        callbacks: list[Callable[[SupervisorView], None]] = []
        with self._lock:
            root = self._roots.get(view.path)
            if root is not None:
                root.status, root.reason, root.final = view.status, view.reason, view
                callbacks, root.on_done = root.on_done, []
                root.done.set()
        for callback in callbacks:
            try:
                callback(view)
            except Exception:  # one bad callback must not keep the others from the news
                log.exception("supervisor %s: done callback failed", view.path)
        if view.status == "escalated":
            log.warning("supervisor %s gave up: %s", view.path, view.reason)

    def ask(self, path: str, message: Any) -> Any:
        with self._lock:
            root = self._roots.get(path)
        if root is None or root.ref is None or not root.ref.is_alive():
            raise RnixError(f"supervisor {path} is not running")
        return root.ref.ask(message, block=True, timeout=ASK_TIMEOUT)

    def wait(self, path: str, timeout: float | None) -> SupervisorView:
        with self._lock:
            root = self._roots[path]
        if not root.done.wait(timeout):
            raise TimeoutError(f"supervisor {path} still running after {timeout}s")
        assert root.final is not None
        return root.final

    def view(self, path: str) -> SupervisorView:
        with self._lock:
            root = self._roots[path]
        if root.ref is not None and root.ref.is_alive():
            try:
                view: SupervisorView = root.ref.ask(QueryTree(), block=True, timeout=5.0)
                return view
            except (pykka.ActorDeadError, pykka.Timeout):
                pass
        if root.final is not None:
            return root.final
        spec = root.spec
        return SupervisorView(
            spec.name,
            path,
            str(spec.strategy),
            root.status,
            0,
            spec.max_restarts,
            spec.max_window,
            (),
            root.reason,
        )

    def views(self) -> list[SupervisorView]:
        with self._lock:
            paths = list(self._roots)
        return [self.view(path) for path in paths]

    def stop_all(self, timeout: float) -> None:
        """Stop every running root with SIGKILL (system shutdown: no restarts)."""
        with self._lock:
            refs = [r.ref for r in self._roots.values() if r.ref is not None]
        for ref in refs:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                ref.ask(StopSupervisor(True, "system"), block=True, timeout=timeout)

    def _resolve_agent(self, child: ChildSpec, path: str) -> AgentTemplate | str:
        agent = child.agent
        if isinstance(agent, str | AgentTemplate):
            return agent
        if callable(agent):
            # A python brain: one driver per child identity, registered on first use.
            name = re.sub(r"[^A-Za-z0-9._-]", ".", f"sup{path}.{child.name}").strip(".")
            self._register_driver(PythonDriver(name, agent))
            return AgentTemplate(name=child.name, devices=child.devices or (), driver=name)
        raise RnixError(f"child {child.name!r} of {path} has no agent")
