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
from rnix_actors.errors import RnixError, StillRunning
from rnix_actors.kernel.base import ThreadTracker
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.messages.kernel import QueryTable
from rnix_actors.messages.supervision import QueryTree, StopSupervisor
from rnix_actors.supervision.actor import Supervisor, SupervisorDeps
from rnix_actors.supervision.handle import SupervisorHandle
from rnix_actors.supervision.spec import PYTHON_WORKER_LIMITS, ChildSpec, SupervisorSpec, validate
from rnix_actors.supervision.views import SupervisorView
from rnix_actors.templates import AgentTemplate

log = logging.getLogger(__name__)

ASK_TIMEOUT = 30.0


@attrs.define
class _Record:
    """One supervisor path: its current incarnation and, once it ended, its final view."""

    ref: pykka.ActorRef[Supervisor] | None
    spec: SupervisorSpec | None = None  # roots only
    status: str = "running"
    reason: str = ""
    final: SupervisorView | None = None
    done: threading.Event = attrs.field(factory=threading.Event)
    on_done: list[Callable[[SupervisorView], None]] = attrs.field(factory=list)


class Supervision:
    def __init__(
        self,
        kernel: Any,
        bus: Any,
        table: ProcessTable,
        templates: Callable[[str], AgentTemplate | None],
        register_driver: Callable[[Driver], None],
        tracker: ThreadTracker | None,
        prepare_spawn: Callable[[AgentTemplate | str], None] | None = None,
        prepare_restore: Callable[[int], None] | None = None,
    ) -> None:
        # The records, roots and resumable PIDs: the callers' threads read them, and each
        # supervisor's own thread updates them (on_start, on_exit, resumable), on_exit before
        # its exit reaches its links, which a tell to a registry actor would not keep.
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._roots: list[str] = []
        self._templates = templates
        self._register_driver = register_driver
        self._resumable: dict[str, int] = {}  # child path -> PID left by a previous system
        self.planner: Any = None
        self.deps = SupervisorDeps(
            kernel=kernel,
            bus=bus,
            table=table,
            resolve_agent=self._resolve_agent,
            known_agent=lambda name: self._templates(name) is not None,
            planner=lambda: self.planner,
            on_start=self._started,
            on_exit=self._exited,
            tracker=tracker,
            prepare_spawn=prepare_spawn,
            prepare_restore=prepare_restore,
            resumable=self._take_resumable,
        )

    def offer_resumable(self, children: dict[str, int]) -> None:
        """Children (path -> PID) that the first start of their ``resume: true`` spec resumes
        from their checkpoints; each PID is handed out once."""
        with self._lock:
            self._resumable.update(children)

    def _take_resumable(self, path: str) -> int | None:
        with self._lock:
            return self._resumable.pop(path, None)

    def supervise(self, spec: SupervisorSpec) -> SupervisorHandle:
        """Validate ``spec`` (nothing starts on error) and start it as a root."""
        validate(spec, self.deps.known_agent)
        path = f"/{spec.name}"
        with self._lock:
            existing = self._records.get(path)
            if existing is not None and existing.status == "running":
                raise RnixError(f"a supervisor named {spec.name!r} is already running")
            self._records[path] = _Record(None, spec)
            if path not in self._roots:
                self._roots.append(path)
        ref = Supervisor.start(spec, self.deps, path, None)
        with self._lock:
            record = self._records[path]
            if record.ref is None:
                record.ref = ref
        return SupervisorHandle(self, path)

    def handle(self, path: str) -> SupervisorHandle:
        """The handle of the supervisor at ``path`` (``/root/child``; the leading slash may
        be left out). Raises `RnixError` naming the known paths."""
        path = "/" + path.strip("/")
        with self._lock:
            if path not in self._records:
                known = ", ".join(sorted(self._records)) or "none"
                raise RnixError(f"no supervisor at {path} (known: {known})")
        return SupervisorHandle(self, path)

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._records)

    def _started(self, path: str, ref: Any) -> None:
        with self._lock:
            old = self._records.get(path)
            if old is not None and old.ref in (None, ref) and old.status == "running":
                old.ref = ref
            else:  # a nested supervisor restarted by its parent: a new incarnation
                self._records[path] = _Record(ref, None if old is None else old.spec)

    def _exited(self, path: str, ref: Any, view: SupervisorView) -> None:
        with self._lock:
            record = self._records.get(path)
            if record is None or record.ref not in (None, ref):
                return  # an older incarnation
            record.ref = ref
            record.status, record.reason, record.final = view.status, view.reason, view
            callbacks, record.on_done = record.on_done, []
            record.done.set()
        for callback in callbacks:
            try:
                callback(view)
            except Exception:  # one bad callback must not keep the others from the news
                log.exception("supervisor %s: done callback failed", view.path)
        if view.status == "escalated":
            log.warning("supervisor %s gave up: %s", view.path, view.reason)

    def _record(self, path: str) -> _Record:
        with self._lock:
            record = self._records.get(path)
        if record is None:
            raise RnixError(f"no supervisor at {path}")
        return record

    def status(self, path: str) -> tuple[str, str]:
        record = self._record(path)
        return record.status, record.reason

    def wait(self, path: str, timeout: float | None) -> SupervisorView:
        record = self._record(path)
        if not record.done.wait(timeout):
            raise StillRunning(f"supervisor {path} still running after {timeout}s")
        assert record.final is not None
        self._settle_kernel()
        return record.final

    def _settle_kernel(self) -> None:
        """Return once the kernel handled what it was told before now. A child tells the
        kernel how it ended before its link tells the supervisor, so after this the process
        table (``ps``, ``info``) shows every exit the supervisor's final view counted."""
        with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
            self.deps.kernel.ask(QueryTable(), block=True, timeout=ASK_TIMEOUT)

    def when_done(self, path: str, callback: Callable[[SupervisorView], None]) -> None:
        record = self._record(path)
        with self._lock:
            final = record.final if record.done.is_set() else None
            if final is None:
                record.on_done.append(callback)
        if final is not None:
            callback(final)

    def ask(self, path: str, message: Any) -> Any:
        record = self._record(path)
        ref = record.ref
        if ref is None or record.status != "running" or not ref.is_alive():
            raise RnixError(f"supervisor {path} is not running ({record.status})")
        try:
            return ref.ask(message, block=True, timeout=ASK_TIMEOUT)
        except pykka.ActorDeadError:
            raise RnixError(f"supervisor {path} ended before answering") from None
        except pykka.Timeout:
            raise RnixError(f"supervisor {path} did not answer within {ASK_TIMEOUT}s") from None

    def view(self, path: str) -> SupervisorView:
        record = self._record(path)
        if record.ref is not None and record.status == "running" and record.ref.is_alive():
            try:
                view: SupervisorView = record.ref.ask(QueryTree(), block=True, timeout=5.0)
                return view
            except (pykka.ActorDeadError, pykka.Timeout):
                pass
        if record.final is not None:
            return record.final
        spec = record.spec
        name = path.rsplit("/", 1)[-1]
        return SupervisorView(
            name,
            path,
            "" if spec is None else str(spec.strategy),
            record.status,
            0,
            0 if spec is None else spec.max_restarts,
            0.0 if spec is None else spec.max_window,
            (),
            record.reason,
        )

    def views(self) -> list[SupervisorView]:
        """The root trees, in the order they were started."""
        with self._lock:
            paths = list(self._roots)
        return [self.view(path) for path in paths]

    def stop_all(self, timeout: float, keep: bool = False) -> None:
        """Stop every running root with SIGKILL (system shutdown: no restarts); ``keep``
        leaves their ``resume: true`` agent children for the next start to resume."""
        with self._lock:
            refs = [self._records[p].ref for p in self._roots]
        for ref in refs:
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                    ref.ask(StopSupervisor(True, "system", keep), block=True, timeout=timeout)

    def _resolve_agent(self, child: ChildSpec, path: str) -> AgentTemplate | str:
        agent = child.agent
        if isinstance(agent, str) and child.context_slots is not None:
            found = self._templates(agent)
            agent = agent if found is None else found
        if isinstance(agent, AgentTemplate):
            if child.context_slots is None:
                return agent
            limits = attrs.evolve(agent.limits, context_slots=child.context_slots)
            return attrs.evolve(agent, limits=limits)
        if isinstance(agent, str):
            return agent
        if callable(agent):
            # A python brain: one driver per child identity, registered on first use. Its
            # limits are stated (PYTHON_WORKER_LIMITS), not a chat agent's defaults.
            name = re.sub(r"[^A-Za-z0-9._-]", ".", f"sup{path}.{child.name}").strip(".")
            self._register_driver(PythonDriver(name, agent))
            limits = PYTHON_WORKER_LIMITS
            if child.context_slots is not None:
                limits = attrs.evolve(limits, context_slots=child.context_slots)
            return AgentTemplate(
                name=child.name, devices=child.devices or (), driver=name, limits=limits
            )
        raise RnixError(f"child {child.name!r} of {path} has no agent")
