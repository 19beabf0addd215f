"""`System`: the embeddable actor system and the public Python API.

    from rnix_actors import System

    with System(project_dir=".") as system:
        pid = system.spawn("code-analyst", "review this repo")
        info = system.wait(pid, timeout=60)
        print(info.exit_code, info.result)

A system owns a kernel actor, an event bus actor and one actor per agent process. It reads the
shipped defaults (``conf/``) and the project's ``.rnix/`` (config, agents, skills) and keeps its
state (SQLite, per-process ``events.jsonl``) in the state dir (``.rnix/`` by default,
``RNIX_STATE_DIR`` or ``state_dir=`` to move it; ``state="temp"`` or ``state="memory"``: see
`rnix_actors.state`). `rnix_actors.aio.AsyncSystem` wraps it for asyncio hosts.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import pykka

from rnix_actors.app.backends import Backends, backend_name
from rnix_actors.app.boot import Boot, Running, boot
from rnix_actors.app.queries import Queries
from rnix_actors.app.registry import Registry
from rnix_actors.app.service import ServiceRef
from rnix_actors.app.services import Services
from rnix_actors.app.signals import Signals
from rnix_actors.catalog import Catalog
from rnix_actors.compose import ComposeEngine
from rnix_actors.config import Config, load_config
from rnix_actors.drivers.base import Driver
from rnix_actors.durable import STOP_ORIGIN, Recovery, suspend_all
from rnix_actors.errors import (
    NoSuchProcess,
    StillRunning,
    SystemFailed,
    SystemStopped,
    Unresponsive,
)
from rnix_actors.immune import Immune, ImmuneConfig, attach_immune, immune_config_from
from rnix_actors.introspect import ProcessDetail, inspect_process
from rnix_actors.kernel.asking import ask
from rnix_actors.kernel.base import ThreadTracker
from rnix_actors.kernel.devices import (
    DeviceRegistry,
)
from rnix_actors.kernel.process import ProcessInfo, ProcessState, Signal
from rnix_actors.kernel.table import ProcessTable, TableView
from rnix_actors.messages.links import ExitReason
from rnix_actors.messages.processlog import Sync
from rnix_actors.migration import Migration, attach_planner, settings_from
from rnix_actors.migration.similarity import Blend
from rnix_actors.paths import shipped_conf_dir
from rnix_actors.state import KeepLogs, StateKind, StatePlace, resolve_state_dir
from rnix_actors.store.db import Store
from rnix_actors.subscription import Subscription
from rnix_actors.templates import AgentTemplate
from rnix_actors.topology import Topology, attach_topology

if TYPE_CHECKING:
    from rnix_actors.dashboard import Dashboard

log = logging.getLogger(__name__)

ASK_TIMEOUT = 30.0
_S = TypeVar("_S")
SETTLED = (ProcessState.DEAD, ProcessState.SUSPENDED)


__all__ = ["Subscription", "System", "resolve_state_dir"]


class System(Signals, Queries, Services, Backends, Registry):
    """One actor system: a facade over its application supervisor (`rnix_actors.app`).

    Nothing starts until `start` (or ``with System(...)``). All methods are thread-safe.
    ``state`` is ``"dir"`` (the state dir), ``"temp"`` (a temporary dir removed by `stop`) or
    ``"memory"`` (no file written); ``keep`` bounds the event logs (default: the config's
    ``kernel.event_log_keep``).

    Every error is an `rnix_actors.errors.RnixError`; no Pykka exception leaves a call.
    `SystemStopped`: the call needs the running system (before `start`, after `stop`);
    `SystemFailed`, a `SystemStopped`, once a vital service ended (`failure` says which and
    why). `Unresponsive`: a system actor did not answer in time; `StillRunning`: `wait` timed
    out (both are `TimeoutError`s too); `WouldDeadlock`: a subscribe callback called what
    waits for the event bus. `NoSuchProcess`, `SpawnError` (`UnknownAgent`,
    `BadWorkdir`), `ConfigError`, `CheckpointError`: as each call says. `stop` never raises.
    """

    def __init__(
        self,
        project_dir: Path | str | None = None,
        *,
        state_dir: Path | str | None = None,
        state: StateKind = "dir",
        keep: KeepLogs | None = None,
        config: Config | None = None,
        immune: ImmuneConfig | None = None,
        load_project: bool = True,
        backend: str | None = None,
    ) -> None:
        self.project_dir = Path(project_dir or Path.cwd()).resolve()
        self._place = StatePlace.resolve(state, self.project_dir, state_dir)
        project_rnix = self.project_dir / ".rnix"
        self.config = config or load_config(project_rnix / "config.yaml" if load_project else None)
        self.keep = self.config.kernel.event_log_keep if keep is None else keep
        self.backend = backend_name(backend, self.config)
        self._ray: Any = None  # the Ray backend while it runs (rnix_actors.ray)
        self.immune_config: ImmuneConfig = immune or immune_config_from(self.config)
        self._immune: Immune | None = None
        conf_dirs = [shipped_conf_dir()] + ([project_rnix] if load_project else [])
        self._catalog = Catalog(conf_dirs, on_providers=self._reload_providers)
        self._drivers: dict[str, Driver] = {}
        self.devices = DeviceRegistry()
        self._table = ProcessTable()  # written by the kernel alone; read through `table`
        self._table_view = TableView(self._table)
        self._tracker = ThreadTracker()
        # The facade is called from any thread (the host's, the daemon's connections, the
        # dashboard's): start, stop and set_immune swap the running parts under it, so one
        # of them never sees another's half-done swap, and the dashboards list. No process
        # call takes it.
        self._lock = threading.Lock()
        self._keys = itertools.count(1)
        self._run: Running | None = None  # the running parts; None: stopped
        self._failure: ExitReason | None = None
        self._failed_event = threading.Event()  # set with _failure (tests wait on it)
        self.recovery = Recovery()  # what the last start found of a previous system
        self._planner: Any = None
        self._topology: Topology | None = None
        self._migration: Migration | None = None
        self._compose: ComposeEngine | None = None
        self._dashboards: list[Dashboard] = []
        self._setup_registry(load_project)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> System:
        """Start the system's services under the application supervisor (`rnix_actors.app`):
        store, event bus, process log, kernel, immune daemon, topology, planner. Returns the
        system; a running system is returned as it is. Raises `ConfigError` or `OSError` when
        the state dir or the store cannot be opened (nothing is left started)."""
        with self._lock:
            if self._run is not None:
                return self
            self._failure = None
            self._failed_event.clear()
            self._ray = self._ray_backend() if self.backend == "ray" else None
            run = boot(self._boot())
            self._run = run
            self.recovery = run.recovery
            run.supervision.planner = self._planner
            run.after_kernel.append(self._stop_backends)
        if self._ray is not None:
            self._start_ray(run.kernel, run.bus)
        # Before any spawn: the immune guard applies to processes spawned after it.
        self._immune = attach_immune(self, self.immune_config, run.store, run.launch)
        topo = self.config.topology
        self._topology = attach_topology(
            self, run.store, topo.reinforcement_threshold, launch=run.launch
        )
        blend = Blend(topo.skill_weight, 1.0 - topo.skill_weight)
        settings = settings_from(self.config, blend)
        self._migration = attach_planner(self, run.store, self._topology, settings, run.launch)
        self._compose = ComposeEngine(self, run.store, self._topology)
        if self.mcp is not None:
            self.mcp.start()
        return self

    def _boot(self) -> Boot:
        return Boot(
            place=self._place,
            config=self.config,
            keep=self.keep,
            tracker=self._tracker,
            table=self._table,
            devices=self.devices,
            drivers=lambda name: self._drivers.get(name),
            templates=lambda name: self._catalog.templates.get(name),
            skills=lambda: self._catalog.skills,
            workdir=self.project_dir,
            register_driver=self.register_driver,
            prepare_spawn=lambda agent: self._prepare_model(agent, None, None),
            prepare_restore=self._prepare_restore,
            check_workdir=self.check_workdir,
            launcher=self._ray,
            on_failure=self._failed,
        )

    def _failed(self, service: str, reason: ExitReason) -> None:
        """The application gave up (on its thread): every later call says why."""
        self._failure = reason
        self._failed_event.set()

    @property
    def failure(self) -> ExitReason | None:
        """Why the system failed (a vital service ended, or one crashed past its restart
        limit), or None. Calls then raise `SystemFailed` with this reason; `stop` cleans up."""
        return self._failure

    def stop(self, timeout: float = 10.0, checkpoint: bool = False) -> None:
        """Kill every live process, stop all actors and join their threads. Never raises.

        ``checkpoint=True`` is a graceful stop: running processes are paused at their next
        step boundary (waiting up to ``timeout``) and checkpointed, and the next start on
        this state dir lists them as suspended, to resume (docs/durability.md). Threads that
        are still blocked in a call that ignores cancellation (a host device or driver) after
        ``timeout`` seconds are logged and abandoned.

        Called from one of the system's own threads (a `subscribe` callback, a host device,
        a python brain), it cannot wait for the thread it runs on: it hands the stop to a
        thread of its own (``rnix-stop``) and returns at once.
        """
        if self._tracker.owns(threading.current_thread()):
            threading.Thread(target=self.stop, args=(timeout, checkpoint), name="rnix-stop").start()
            return
        run = self._run
        keep = checkpoint and run is not None and run.checkpoints is not None
        if keep and self._failure is None:
            left = suspend_all(
                self._table, lambda pid: self.kill(pid, Signal.SIGPAUSE, STOP_ORIGIN), timeout
            )
            if left:
                log.warning("graceful stop: PIDs %s still running; they will be lost", left)
        with self._lock:
            dashboards, self._dashboards = self._dashboards, []
            run, self._run = self._run, None
            services = (self._migration, self._topology, self._immune)
            compose, self._compose = self._compose, None
            self._immune = self._migration = self._topology = None
        if compose is not None:
            compose.close()
        for dashboard in dashboards:
            dashboard.stop(timeout)
        if run is None:
            return
        try:
            run.supervision.stop_all(timeout, keep)  # first, so that nothing restarts what we kill
        except Exception:
            log.exception("the supervision trees did not stop cleanly")
        # Before the kernel, the bus and the store go away (they unsubscribe and persist).
        for service in services:
            if service is not None:
                try:
                    service.stop()
                except pykka.Timeout:  # busy with a backlog: the rest must stop all the same
                    log.warning("%s did not stop in time", type(service).__name__)
                except Exception:  # stop() never raises: the rest must stop all the same
                    log.exception("%s did not stop cleanly", type(service).__name__)
        try:
            run.stop(timeout, keep)
        finally:
            for http_driver in (*self._http_drivers, *self._retired_drivers):
                http_driver.close()
            self._place.close()

    def __enter__(self) -> System:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_immune(self, config: ImmuneConfig) -> Immune:
        """Replace the immune system with one configured by ``config`` (e.g. switch to enforce
        mode). The old one stops and uninstalls its guard; processes spawned before keep it,
        inert, so call this before spawning what the new configuration should watch."""
        with self._lock:
            run = self._running()
            old, self._immune = self._immune, None
            self.immune_config = config
        if old is not None:
            old.stop()
        immune = attach_immune(self, config, run.store, run.launch)
        with self._lock:
            self._immune = immune
        return immune

    def _running(self) -> Running:
        """The running parts; `SystemStopped` when not started, `SystemFailed` when failed."""
        run = self._run
        if run is None:
            raise SystemStopped("the system is not running; call System.start() first")
        failure = self._failure
        if failure is not None:
            raise SystemFailed(f"{failure.detail}; call System.stop()", failure)
        return run

    @property
    def store(self) -> Store:
        """The open SQLite store (subsystems keep their tables in it)."""
        return self._running().store

    @property
    def table(self) -> TableView:
        """The live process table, read-only: ``get(pid)``, ``list()``, ``wait_for``,
        ``when``, ``rollup``, ``figures``, ``subtree``. Each read is a snapshot; only the
        kernel writes it."""
        return self._table_view

    @property
    def running(self) -> bool:
        """Started, not stopped, and not failed."""
        return self._run is not None and self._failure is None

    def _require(self) -> ServiceRef:
        return self._running().kernel

    # -- processes ---------------------------------------------------------------------------
    def spawn(
        self,
        agent: str | AgentTemplate,
        intent: str,
        *,
        devices: Iterable[str] | None = None,
        workdir: Path | str | None = None,
        max_steps: int | None = None,
        model: str | None = None,
        driver: str | None = None,
        owner: Any = None,
        origin: str = "api",
    ) -> int:
        """Start an agent process at depth 0 and return its PID.

        ``devices`` narrows the template's whitelist (never widens it); ``driver`` and
        ``model`` override the template's LLM provider and model. Raises `SpawnError`
        for an unknown agent, an unknown driver or an empty device set, `SystemStopped` when
        the system is not running and `Unresponsive` when the kernel does not answer.
        """
        request = self.spawn_request(
            agent, intent, devices=devices, workdir=workdir, max_steps=max_steps, model=model,
            driver=driver, owner=owner, origin=origin,
        )  # fmt: skip
        pid: int = ask(self._require(), request, ASK_TIMEOUT, "kernel")
        self._committed(pid)
        return pid

    def _committed(self, pid: int) -> None:
        """Wait until ``pid``'s row and first checkpoint are in the store: a PID handed out
        survives a kill -9 of this process right after (the process log wrote them in the
        same batch as any other spawn's, so a burst of spawns still costs one commit)."""
        run = self._run
        if run is None:
            return
        try:
            ask(run.process_log, Sync(), ASK_TIMEOUT, "process log")
        except (Unresponsive, SystemStopped):  # the process runs (a restarting log rewrites it)
            log.warning("PID %d started, but the process log did not confirm its row", pid)

    def wait(self, pid: int, timeout: float | None = None) -> ProcessInfo:
        """Block until the process has exited or is suspended; return its final info.

        Raises `NoSuchProcess` for an unknown PID and `StillRunning` (a `TimeoutError`)
        after ``timeout``; the process goes on.
        """
        if self._table.get(pid) is None:
            raise NoSuchProcess(pid)
        info = self._table.wait_for(pid, lambda p: p.state in SETTLED, timeout)
        if info is None:
            raise StillRunning(f"PID {pid} still running after {timeout}s")
        return info

    def run(
        self, agent: str | AgentTemplate, intent: str, timeout: float | None = None, **options: Any
    ) -> ProcessInfo:
        """Spawn and wait in one call."""
        return self.wait(self.spawn(agent, intent, **options), timeout)

    def inspect(self, pid: int, tail: int = 10) -> ProcessDetail:
        """Everything known about ``pid``: its record, children, subtree rollup, limits,
        breaker counts, owning supervisor, the last ``tail`` context messages and the immune
        daemon's alerts on it. Raises `NoSuchProcess` for a PID this state dir never ran."""
        detail = inspect_process(self, pid, tail)
        if detail is None:
            raise NoSuchProcess(pid)
        return detail

    def serve_dashboard(self, port: int = 0) -> Dashboard:
        """Serve the live web dashboard on 127.0.0.1:``port`` (0: a free port) until its
        ``stop()`` or this system's; ``url`` carries the session token. Raises
        `rnix_actors.dashboard.DashboardError` (port taken) and `SystemStopped`."""
        from rnix_actors.dashboard import serve_dashboard

        self._require()
        dashboard = serve_dashboard(self, port)
        with self._lock:
            self._dashboards.append(dashboard)
        return dashboard
