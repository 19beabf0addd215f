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

import inspect
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import pykka

from rnix_actors.app.boot import Boot, Running, boot
from rnix_actors.app.service import ServiceRef
from rnix_actors.catalog import Catalog, Changes
from rnix_actors.compose import ComposeEngine
from rnix_actors.config import Config, load_config
from rnix_actors.drivers.base import Driver, LLMRequest, LLMResponse
from rnix_actors.drivers.http import OpenAIChatDriver, build_drivers
from rnix_actors.drivers.providers import load_providers
from rnix_actors.drivers.python import PythonDriver
from rnix_actors.drivers.replay import ReplayDriver
from rnix_actors.durable import STOP_ORIGIN, Recovery, suspend_all
from rnix_actors.errors import (
    BadWorkdir,
    ConfigError,
    NoSuchProcess,
    SpawnError,
    SystemFailed,
    SystemStopped,
    UnknownAgent,
)
from rnix_actors.immune import Immune, ImmuneConfig, attach_immune, immune_config_from
from rnix_actors.introspect import ProcessDetail, inspect_process
from rnix_actors.kernel.asking import ask
from rnix_actors.kernel.base import ThreadTracker
from rnix_actors.kernel.devices import (
    DeviceCall,
    DeviceRegistry,
    Effect,
    HostDevice,
    normalize_device_path,
    path_within,
)
from rnix_actors.kernel.eventbus import events_path
from rnix_actors.kernel.fs import FileSystemDevice
from rnix_actors.kernel.llmdev import LLMDevice
from rnix_actors.kernel.process import ProcessInfo, ProcessState, Signal
from rnix_actors.kernel.procfs import ProcDevice
from rnix_actors.kernel.resumption import Restore, Restored, prepare_restore
from rnix_actors.kernel.shell import ShellDevice
from rnix_actors.kernel.spawning import prepare_in_caller
from rnix_actors.kernel.table import ProcessTable, Rollup
from rnix_actors.mcp import attach_mcp, project_servers
from rnix_actors.messages.bus import Flush, Subscribe, Subscriber
from rnix_actors.messages.events import Event
from rnix_actors.messages.guards import Guard
from rnix_actors.messages.kernel import AddGuard, RemoveGuard, SendSignal, SpawnRequest
from rnix_actors.messages.links import ExitReason
from rnix_actors.messages.processlog import Sync
from rnix_actors.migration import Migration, attach_planner, settings_from
from rnix_actors.migration.similarity import Blend
from rnix_actors.paths import shipped_conf_dir
from rnix_actors.redact import register_environment
from rnix_actors.state import KeepLogs, StateKind, StatePlace, read_history, resolve_state_dir
from rnix_actors.store.checkpoints import CheckpointRow, CheckpointStore
from rnix_actors.store.db import Store
from rnix_actors.subscription import Subscription
from rnix_actors.supervision.handle import SupervisorHandle
from rnix_actors.supervision.spec import SupervisorSpec
from rnix_actors.supervision.views import SupervisorView
from rnix_actors.supervision.yamlspec import load_supervisors, parse_supervisors
from rnix_actors.templates import AgentTemplate, Skill
from rnix_actors.topology import Topology, attach_topology

if TYPE_CHECKING:
    from rnix_actors.dashboard import Dashboard

log = logging.getLogger(__name__)

ASK_TIMEOUT = 30.0
_S = TypeVar("_S")
SETTLED = (ProcessState.DEAD, ProcessState.SUSPENDED)


__all__ = ["Subscription", "System", "resolve_state_dir"]


class System:
    """One actor system: kernel, event bus, agent processes, devices, drivers and templates.

    Nothing starts until `start` (or ``with System(...)``). All methods are thread-safe; a call
    that needs the running system raises `SystemStopped` before `start` and after `stop`.
    ``state`` is ``"dir"`` (the state dir), ``"temp"`` (a temporary dir removed by `stop`) or
    ``"memory"`` (no file written); ``keep`` bounds the event logs (default: the config's
    ``kernel.event_log_keep``).
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
        self.table = ProcessTable()
        self.tracker = ThreadTracker()
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
        self.replay = ReplayDriver()
        self.register_driver(self.replay)
        self._providers_file = project_rnix / "providers.yaml" if load_project else None
        self._http_drivers: list[OpenAIChatDriver] = []
        self._retired_drivers: list[OpenAIChatDriver] = []  # closed at stop, not in mid-call
        self._reload_providers()
        self.devices.register(
            "/dev/fs", FileSystemDevice(self.protected_dirs(), self.config.fs.hardlinks)
        )
        shell = ShellDevice(
            self.config.kernel.shell_timeout,
            settings=self.config.shell,
            hidden=self.protected_dirs(),
        )
        if not shell.settings.sandbox:
            log.warning("shell.sandbox is off in %s", self.config.origin("shell.sandbox"))
        self.devices.register("/dev/shell", shell)
        self.devices.register("/proc", ProcDevice(self._proc_status))
        self.devices.register("/dev/llm", LLMDevice(lambda: self._drivers))
        # MCP servers of mcp.yaml: /dev/mcp/<server>; nothing runs until one is used.
        self.mcp_servers = project_servers(self.project_dir, shipped_conf_dir(), load_project)
        self.mcp = attach_mcp(self.mcp_servers, self.devices)

    def _reload_providers(self) -> None:
        """(Re)read providers.yaml and replace the HTTP drivers (the next model call of a
        process uses the new ones). Raises `ConfigError`, changing nothing, for a bad file.
        HTTP providers cost nothing until an agent uses one (clients are created lazily)."""
        providers = load_providers(shipped_conf_dir() / "providers.yaml", self._providers_file)
        drivers = build_drivers(providers)
        # Known secrets are redacted, fragments too, wherever text leaves the system.
        register_environment(os.environ, (p.api_key_env for p in providers.values()))
        old, self.providers, self._http_drivers = self._http_drivers, providers, drivers
        kept = {n: d for n, d in self._drivers.items() if not any(d is o for o in old)}
        self._drivers = {**kept, **{d.name: d for d in drivers}}
        self._retired_drivers += old

    def check_workdir(self, workdir: Path | str) -> Path:
        """``workdir`` resolved, if agents may work there; else `SpawnError` saying why.

        A work dir is the agent's sandbox: it must lie inside the project dir or one of the
        config's ``kernel.allowed_workdirs``, must not be ``/`` and must not be inside the
        state or config dir.
        """
        path = Path(workdir).resolve()
        roots = (
            self.project_dir,
            *(Path(p).resolve() for p in self.config.kernel.allowed_workdirs),
        )
        fix = (
            f"use a dir inside the project {self.project_dir}, or list it under "
            "kernel.allowed_workdirs in .rnix/config.yaml"
        )
        if path == Path(path.anchor):
            raise BadWorkdir(f"spawn rejected: the work dir may not be {path} ({fix})")
        if not any(path.is_relative_to(root) for root in roots):
            raise BadWorkdir(f"spawn rejected: the work dir {path} is outside the project ({fix})")
        if any(path.is_relative_to(p.resolve()) for p in self.protected_dirs()):
            raise BadWorkdir(
                f"spawn rejected: the work dir {path} is inside the rnix state or config dir, "
                "which agents may not reach; use a project dir"
            )
        return path

    def protected_dirs(self) -> tuple[Path, ...]:
        """The dirs no agent may see or change: the state dir and the project's config dir."""
        dirs = (self.state_dir, self.project_dir / ".rnix")
        return tuple(dict.fromkeys(d for d in dirs if d is not None))

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

    def _ray_backend(self) -> Any:
        """The Ray backend (imported only now: the local backend needs no Ray)."""
        try:
            from rnix_actors.ray import RayBackend, host_setup
        except ImportError as exc:
            raise ConfigError(
                self.config.origin("kernel.backend"), "kernel.backend",
                f"is ray, but Ray cannot be imported ({exc})",
                "pip install 'rnix-actors[ray]' (or -e '.[ray]'), or set kernel.backend: local",
            ) from None  # fmt: skip
        setup = host_setup(self.config, self.protected_dirs(), self.providers)
        return RayBackend(self.config.ray, setup, self.devices, self._proc_status)

    def _start_ray(self, kernel: ServiceRef, bus: ServiceRef) -> None:
        try:
            self._ray.start(kernel, bus)
        except BaseException:
            self.stop()  # nothing of this start stays up
            raise

    def _stop_backends(self, timeout: float) -> None:
        """After the kernel: its last exits reached the Ray hosts; MCP sessions close and
        stdio servers' processes end."""
        ray_backend, self._ray = self._ray, None
        if ray_backend is not None:
            ray_backend.stop(timeout)
        if self.mcp is not None:
            self.mcp.stop(timeout / 2)

    def nodes(self) -> list[Any]:
        """Where agent processes run (``rnix nodes``): one `NodeView` per Ray host, or one
        row for this process on the local backend."""
        ray_backend = self._ray
        if ray_backend is not None:
            return list(ray_backend.nodes())
        from rnix_actors.nodes import local_node

        return [local_node(len(self.ps()) if self.running else 0)]

    def _boot(self) -> Boot:
        return Boot(
            place=self._place,
            config=self.config,
            keep=self.keep,
            tracker=self.tracker,
            table=self.table,
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
        """
        run = self._run
        keep = checkpoint and run is not None and run.checkpoints is not None
        if keep and self._failure is None:
            left = suspend_all(
                self.table, lambda pid: self.kill(pid, Signal.SIGPAUSE, STOP_ORIGIN), timeout
            )
            if left:
                log.warning("graceful stop: PIDs %s still running; they will be lost", left)
        with self._lock:
            dashboards, self._dashboards = self._dashboards, []
            run, self._run = self._run, None
            services = (self._migration, self._topology, self._immune)
            self._immune = self._migration = self._topology = self._compose = None
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

    @property
    def immune(self) -> Immune:
        """The immune system's handle: ``status()``, ``resume(pid)``, ``forget(name)``..."""
        return self._service(self._immune)

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
    def running(self) -> bool:
        """Started, not stopped, and not failed."""
        return self._run is not None and self._failure is None

    @property
    def state(self) -> StateKind:
        """``"dir"``, ``"temp"`` or ``"memory"`` (see `rnix_actors.state`)."""
        return self._place.kind

    @property
    def state_dir(self) -> Path | None:
        """Where state is kept; None for ``state="memory"``."""
        return self._place.dir

    def _require(self) -> ServiceRef:
        return self._running().kernel

    # -- templates, drivers, devices ---------------------------------------------------------
    @property
    def templates(self) -> dict[str, AgentTemplate]:
        return dict(self._catalog.templates)

    @property
    def skills(self) -> dict[str, Skill]:
        return dict(self._catalog.skills)

    def add_template(self, template: AgentTemplate) -> None:
        """Define (or replace) an agent template in Python."""
        self._catalog.add_template(template)

    def add_skill(self, skill: Skill) -> None:
        self._catalog.add_skill(skill)

    def reload_templates(self) -> Changes:
        """Pick up agent templates and skills added, changed or removed on disk since the
        last look (`spawn` does this too); returns what changed. Raises `ConfigError` for a
        broken file, keeping the templates as they were."""
        return self._catalog.refresh()

    def register_driver(self, driver: Driver) -> None:
        """Make an LLM driver available to templates whose ``driver`` is ``driver.name``."""
        self._drivers = {**self._drivers, driver.name: driver}

    def register_llm(self, name: str, fn: Callable[[LLMRequest], LLMResponse | str]) -> None:
        """Shortcut: a host callable decides each step (the python driver)."""
        _not_async(fn, f"brain {name!r}", "register_llm")
        self.register_driver(PythonDriver(name, fn))

    def register_device(
        self,
        path: str,
        handler: Callable[[DeviceCall], object],
        description: str = "",
        blocking: bool = True,
        effect: Effect = Effect.EXTERNAL,
    ) -> None:
        """Register a host device: agents whose whitelist covers ``path`` may call it.

        ``blocking=False`` promises that calls return quickly (no I/O wait), which lets the
        kernel batch the events around them. ``effect`` says what a call does (`Effect`:
        ``READ`` looks, ``WRITE`` changes local state, ``EXTERNAL`` reaches out); the immune
        daemon weighs a never-seen side-effecting call as riskier than a never-seen look-up.
        A device that does not say is ``EXTERNAL``. A path below a built-in device
        (``/dev/fs/x``, ``/dev/shell/x``, ``/proc/x``) is refused with ValueError: every holder of
        the built-in device would be allowed to call it.
        """
        _not_async(handler, f"device {path}", "register_device")
        norm = normalize_device_path(path)
        for builtin in BUILTIN_DEVICES:
            if path_within(norm, builtin):
                raise ValueError(
                    f"{norm} lies below the built-in device {builtin}: every process allowed "
                    f"{builtin} could call it; register it elsewhere, e.g. "
                    f"/dev/{norm.rsplit('/', 1)[-1]}"
                )
        self.devices.register(norm, HostDevice(handler, description, blocking, effect))

    def add_guard(self, guard: Guard) -> None:
        """Install a syscall guard; it applies to processes spawned from now on."""
        ask(self._require(), AddGuard(guard), ASK_TIMEOUT, "kernel")

    def remove_guard(self, guard: Guard) -> None:
        """Uninstall ``guard`` (the same object): processes spawned from now on do not call
        it; running ones keep the guards they started with. Unknown guards are ignored."""
        ask(self._require(), RemoveGuard(guard), ASK_TIMEOUT, "kernel")

    # -- supervision -------------------------------------------------------------------------
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

    def load_supervisors(self, path: Path | str | None = None) -> list[SupervisorSpec]:
        """Specs from ``path`` (default: ``<project>/.rnix/supervisors.yaml``), validated."""
        file = Path(path) if path is not None else self.project_dir / ".rnix" / "supervisors.yaml"
        return load_supervisors(file, lambda name: name in self._catalog.templates)

    def parse_supervisors(self, text: str, source: str = "<text>") -> list[SupervisorSpec]:
        """Specs from YAML text in the format of ``supervisors.yaml``, validated."""
        return parse_supervisors(text, source, lambda name: name in self._catalog.templates)

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
        return pid

    def spawn_request(
        self, agent: str | AgentTemplate, intent: str, **options: Any
    ) -> SpawnRequest:
        """The `SpawnRequest` that `spawn` sends the kernel (same options and checks).
        `rnix_actors.aio` sends it without blocking a thread."""
        if isinstance(agent, str):
            # An unknown name always looks at the disk; a known one at most once a second (a
            # look is a dozen stat calls, a parse only of files that changed).
            self._catalog.refresh(max_age=0.0 if agent not in self._catalog.templates else 1.0)
            templates = self._catalog.templates
            if agent not in templates:
                known = ", ".join(sorted(templates)) or "none"
                raise UnknownAgent(
                    f"unknown agent '{agent}'; known agents: {known} (templates are read from "
                    f"{self.project_dir / '.rnix' / 'agents'}/<name>.yaml)"
                )
        devices, workdir = options.pop("devices", None), options.pop("workdir", None)
        if devices is not None:
            devices = _normalized_devices(devices)
        self._prepare_model(agent, options.get("driver"), options.get("model"))
        return SpawnRequest(
            template=agent,
            intent=intent,
            devices=None if devices is None else tuple(devices),
            workdir=None if workdir is None else self.check_workdir(workdir),
            **options,
        )

    def _prepare_model(
        self, agent: str | AgentTemplate, driver: str | None, model: str | None
    ) -> None:
        """Parse the agent's replay script in the caller's thread, so that the kernel's own
        check finds it (or its error) and no file is parsed on the kernel's thread. An error
        is left for the kernel to raise, in its order of checks."""
        prepare_in_caller(
            agent, driver, model, self._catalog.templates.get, lambda n: self._drivers.get(n)
        )

    def wait(self, pid: int, timeout: float | None = None) -> ProcessInfo:
        """Block until the process has exited or is suspended; return its final info.

        Raises `NoSuchProcess` for an unknown PID and `TimeoutError` after ``timeout``.
        """
        if self.table.get(pid) is None:
            raise NoSuchProcess(pid)
        info = self.table.wait_for(pid, lambda p: p.state in SETTLED, timeout)
        if info is None:
            raise TimeoutError(f"PID {pid} still running after {timeout}s")
        return info

    def run(
        self, agent: str | AgentTemplate, intent: str, timeout: float | None = None, **options: Any
    ) -> ProcessInfo:
        """Spawn and wait in one call."""
        return self.wait(self.spawn(agent, intent, **options), timeout)

    def kill(self, pid: int, signal: Signal | str = Signal.SIGTERM, origin: str = "user") -> str:
        """Send a signal; returns what the kernel did. Raises `NoSuchProcess`, `SystemStopped`
        and `Unresponsive` (as `spawn`)."""
        sig = signal if isinstance(signal, Signal) else Signal.parse(signal)
        return str(ask(self._require(), SendSignal(pid, sig, origin), ASK_TIMEOUT, "kernel"))

    def pause(self, pid: int, origin: str = "user") -> str:
        return self.kill(pid, Signal.SIGPAUSE, origin)

    def resume(self, pid: int, origin: str = "user", retry: bool = False) -> str:
        """SIGRESUME ``pid`` and its subtree. ``retry``: the call a guard refused when it
        suspended ``pid`` runs again (else the agent goes on with the refusal as its
        result). A lost process (its system died) resumes from its last checkpoint
        (`resume_from`)."""
        message = SendSignal(pid, Signal.SIGRESUME, origin, retry)
        try:
            return str(ask(self._require(), message, ASK_TIMEOUT, "kernel"))
        except NoSuchProcess:
            note = self.restore(pid, origin, retry).note
            return "resumed from its last checkpoint" + (f"; {note}" if note else "")

    def resume_from(self, pid: int, origin: str = "user", retry: bool = False) -> int:
        """Continue a lost or suspended process of a previous system from its last checkpoint,
        at depth 0, with its PID, UUID and devices (narrowed to its template's current ones).
        ``retry``: the call a guard refused when it suspended ``pid`` runs again (else the
        agent goes on with the refusal). Raises `CheckpointError` (no or bad checkpoint,
        naming the PID and what to do), `NoSuchProcess`, `SpawnError`; nothing starts unless
        every check passed."""
        return self.restore(pid, origin, retry).pid

    def restore(self, pid: int, origin: str = "user", retry: bool = False) -> Restored:
        """`resume_from`, answering what became of a refused call too (`Restored.note`)."""
        self._prepare_restore(pid)
        restored: Restored = ask(
            self._require(), Restore(pid, origin, retry), ASK_TIMEOUT, "kernel"
        )
        return restored

    def _prepare_restore(self, pid: int) -> None:
        """Parse the replay script of ``pid``'s agent in the caller's thread (as a spawn)."""
        run = self._run
        checkpoints = None if run is None else run.checkpoints
        prepare_restore(
            pid, checkpoints, self._catalog.templates.get, lambda n: self._drivers.get(n)
        )

    def checkpoints(self, pid: int) -> list[CheckpointRow]:
        """The checkpoints kept for ``pid``, oldest first (empty when checkpoints are off)."""
        run = self._run
        if run is not None and run.checkpoints is not None:
            # checkpoint 0 travels with the first row
            ask(run.process_log, Sync(), ASK_TIMEOUT, "process log")
            return run.checkpoints.rows(pid)
        db = self._place.db_path
        if self._place.kind != "dir" or db is None or not db.exists():
            return []
        reader = Store(db)
        try:
            return CheckpointStore(reader).rows(pid)
        finally:
            reader.close()

    def info(self, pid: int) -> ProcessInfo:
        info = self.table.get(pid)
        if info is None:
            raise NoSuchProcess(pid)
        return info

    def ps(self, all: bool = False) -> list[ProcessInfo]:
        """Live processes; with ``all``, every process this state dir ever ran.

        Live processes exist only in a running system: without one this raises
        `SystemStopped`, as `spawn` does. ``all`` reads the history in the state dir, which
        needs no running system (an empty list when there is none yet), except with
        ``state="memory"`` or ``"temp"``, whose history ends with the system.
        """
        if not all:
            self._require()
            return [p for p in self.table.list() if not p.finished]
        run = self._run
        if run is not None:
            ask(run.process_log, Sync(), ASK_TIMEOUT, "process log")  # read what we wrote
        rows = read_history(self._place, None if run is None else run.store)
        # A running process's row is older than its live figures: take the table's.
        live = {p.pid: p for p in self.table.list() if not p.finished}
        return [live.get(p.pid, p) for p in rows]

    def inspect(self, pid: int, tail: int = 10) -> ProcessDetail:
        """Everything known about ``pid``: its record, children, subtree rollup, limits,
        breaker counts, owning supervisor, the last ``tail`` context messages and the immune
        daemon's alerts on it. Raises `NoSuchProcess` for a PID this state dir never ran."""
        detail = inspect_process(self, pid, tail)
        if detail is None:
            raise NoSuchProcess(pid)
        return detail

    def rollup(self, pid: int) -> Rollup:
        """``pid`` and all its descendants added up (processes, running, suspended, tokens,
        cost, steps), live; raises `NoSuchProcess` for an unknown PID."""
        found = self.table.rollup(pid)
        if found is None:
            raise NoSuchProcess(pid)
        return found

    def subscribe(
        self, callback: Subscriber, syscalls: Iterable[str] | None = None, wait: bool = True
    ) -> Subscription:
        """Call ``callback(event)`` for every event (or only those named in ``syscalls``), in
        the event bus's thread: keep it quick. ``wait=False`` returns without waiting for the
        bus; either way every event published after the call reaches ``callback``."""
        bus = self._running().bus
        key = next(self._keys)
        names = None if syscalls is None else frozenset(syscalls)
        if wait:
            ask(bus, Subscribe(key, callback, names), ASK_TIMEOUT, "event bus")
        else:  # the bus's inbox is FIFO: this lands before any later event
            bus.tell(Subscribe(key, callback, names))
        return Subscription(bus, key)

    def publish(self, event: Event) -> None:
        """Publish ``event`` on the event bus, as the kernel does (the immune daemon's
        ``AnomalyAlert`` events travel this way). Dropped once the system stopped."""
        run = self._run
        if run is not None:
            run.bus.tell(event)  # a bus that is down drops it

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

    def sync_events(self, timeout: float = ASK_TIMEOUT) -> None:
        """Return once every event published before this call reached the subscribers and
        the logs (the bus handles messages in order)."""
        run = self._run
        if run is not None:
            ask(run.bus, Flush(), timeout, "event bus")

    def events_file(self, pid: int) -> Path:
        """``<state>/proc/<pid>/events.jsonl``; `SystemStopped` when there is no state dir."""
        if self._place.dir is None:
            raise SystemStopped(f"state={self._place.kind!r} has no event logs now")
        return events_path(self._place.dir, pid)

    def _proc_status(self, pid: int) -> dict[str, Any] | None:
        info = self.table.get(pid)
        if info is None:
            return None
        data = info.to_dict()
        data.pop("result", None)
        return data


def backend_name(backend: str | None, config: Config) -> str:
    """``backend`` (from ``System(backend=...)``) or the config's ``kernel.backend``."""
    if backend is None:
        return config.kernel.backend
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray' (got {backend!r})")
    return backend


def _not_async(fn: object, what: str, method: str) -> None:
    if inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"{what} is an async def: register it with rnix_actors.aio.AsyncSystem.{method}, "
            "which runs it on your event loop"
        )


BUILTIN_DEVICES = ("/dev/fs", "/dev/shell", "/proc")


def _normalized_devices(devices: Iterable[str]) -> tuple[str, ...]:
    """A spawn's whitelist in canonical form (``/dev/fs/`` → ``/dev/fs``); `SpawnError` for an
    entry that is not a device path (``/dev/fs/../shell``)."""
    found = []
    for entry in devices:
        try:
            found.append(normalize_device_path(entry))
        except ValueError as exc:
            raise SpawnError(f"spawn rejected: bad device in the whitelist: {exc}") from None
    return tuple(found)
