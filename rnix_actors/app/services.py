"""The subsystems half of `System`: the immune system, topology, planner, compose engine,
supervision trees and the kernel's guards, each reached through the running system.

A handle taken here belongs to the running system: after `System.stop` (or a failure) its
calls raise `SystemStopped`. `System` inherits these methods; they are its public API.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rnix_actors.app.boot import Running
from rnix_actors.app.service import ServiceRef
from rnix_actors.compose import ComposeEngine
from rnix_actors.errors import (
    SystemStopped,
)
from rnix_actors.immune import Immune, ImmuneConfig
from rnix_actors.kernel.asking import ask
from rnix_actors.messages.guards import Guard
from rnix_actors.messages.kernel import AddGuard, RemoveGuard
from rnix_actors.migration import Migration
from rnix_actors.supervision.handle import SupervisorHandle
from rnix_actors.supervision.spec import SupervisorSpec
from rnix_actors.supervision.views import SupervisorView
from rnix_actors.topology import Topology

_S = TypeVar("_S")


ASK_TIMEOUT = 30.0


class Services:
    """The subsystems (see the module docstring)."""

    _lock: threading.Lock
    _run: Running | None
    _immune: Immune | None
    _topology: Topology | None
    _migration: Migration | None
    _compose: ComposeEngine | None
    _planner: Any
    immune_config: ImmuneConfig

    if TYPE_CHECKING:  # provided by System and Registry

        def _running(self) -> Running: ...

        def _require(self) -> ServiceRef: ...

        def load_supervisors(self, path: Path | str | None = None) -> list[SupervisorSpec]: ...

    @property
    def immune(self) -> Immune:
        """The immune system's handle: ``status()``, ``resume(pid)``, ``forget(name)``..."""
        return self._service(self._immune)

    @property
    def topology(self) -> Topology:
        """The collaboration graph: ``view().text()`` renders ``rnix topology``."""
        return self._service(self._topology)

    @property
    def migration(self) -> Migration:
        """The migration planner: ``decisions()``, ``matrix()``."""
        return self._service(self._migration)

    @property
    def compose(self) -> ComposeEngine:
        """Compose workflows and pipes: ``compose.run(compose.load(path))``, ``compose.pipe``."""
        return self._service(self._compose)

    def _service(self, service: _S | None) -> _S:
        self._running()
        if service is None:
            raise SystemStopped("the system is not running; call System.start() first")
        return service

    def supervise(self, spec: SupervisorSpec) -> SupervisorHandle:
        """Validate and start a supervision tree; raises `ConfigError` (nothing starts)."""
        return self._running().supervision.supervise(spec)

    def autostart(self, path: Path | str | None = None) -> list[str]:
        """Start the trees of ``supervisors.yaml`` (as `load_supervisors`) marked
        ``autostart: true``; the daemon calls it when it starts. The first start of a
        ``resume: true`` child continues the newest lost or suspended process that child left
        (its checkpoint names its path in the tree) instead of starting afresh. Raises
        `ConfigError` for a bad file: then nothing starts. Returns the started roots' paths."""
        specs = [spec for spec in self.load_supervisors(path) if spec.autostart]
        run = self._running()
        if specs and run.checkpoints is not None:
            run.supervision.offer_resumable(run.checkpoints.supervised())
        return [run.supervision.supervise(spec).path for spec in specs]

    def supervisor(self, path: str) -> SupervisorHandle:
        """The handle of a running or finished supervisor, root or nested, by its path
        (``/review`` or ``review/team``); `RnixError` names the known paths."""
        return self._running().supervision.handle(path)

    def tree(self) -> list[SupervisorView]:
        """The supervision trees (live ones queried, finished ones with their final status)."""
        run = self._run
        return [] if run is None else run.supervision.views()

    def set_migration_planner(self, planner: Any) -> None:
        """The actor that supervisors offer failed tasks to (a `MigrationOffer` ask)."""
        self._planner = planner
        run = self._run
        if run is not None:
            run.supervision.planner = planner

    def add_guard(self, guard: Guard) -> None:
        """Install a syscall guard; it applies to processes spawned from now on."""
        ask(self._require(), AddGuard(guard), ASK_TIMEOUT, "kernel")

    def remove_guard(self, guard: Guard) -> None:
        """Uninstall ``guard`` (the same object): processes spawned from now on do not call
        it; running ones keep the guards they started with. Unknown guards are ignored."""
        ask(self._require(), RemoveGuard(guard), ASK_TIMEOUT, "kernel")
