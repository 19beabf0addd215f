"""The registry half of `System`: templates, skills, drivers, devices and work dirs.

What a system knows before and after it runs: none of it needs an actor, so it is read and
changed from any thread (templates through the `Catalog`, drivers as one immutable mapping
swapped whole, devices in the `DeviceRegistry`). `System` inherits it; these methods are its
public API.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnix_actors.catalog import Catalog, Changes
from rnix_actors.config import Config
from rnix_actors.drivers.base import Driver, LLMRequest, LLMResponse
from rnix_actors.drivers.http import OpenAIChatDriver, build_drivers
from rnix_actors.drivers.providers import load_providers
from rnix_actors.drivers.python import PythonDriver
from rnix_actors.drivers.replay import ReplayDriver
from rnix_actors.errors import (
    BadWorkdir,
    SpawnError,
    UnknownAgent,
)
from rnix_actors.kernel.devices import (
    DeviceCall,
    DeviceRegistry,
    Effect,
    HostDevice,
    normalize_device_path,
    path_within,
)
from rnix_actors.kernel.fs import FileSystemDevice
from rnix_actors.kernel.llmdev import LLMDevice
from rnix_actors.kernel.procfs import ProcDevice
from rnix_actors.kernel.shell import ShellDevice
from rnix_actors.kernel.spawning import prepare_in_caller
from rnix_actors.mcp import attach_mcp, project_servers
from rnix_actors.messages.kernel import SpawnRequest
from rnix_actors.paths import shipped_conf_dir
from rnix_actors.redact import register_environment
from rnix_actors.state import StateKind, StatePlace
from rnix_actors.supervision.spec import SupervisorSpec
from rnix_actors.supervision.yamlspec import load_supervisors, parse_supervisors
from rnix_actors.templates import AgentTemplate, Skill

log = logging.getLogger("rnix_actors.system")


class Registry:
    """Templates, skills, drivers and devices (see the module docstring)."""

    project_dir: Path
    config: Config
    _place: StatePlace
    _catalog: Catalog
    _drivers: dict[str, Driver]
    devices: DeviceRegistry

    if TYPE_CHECKING:  # provided by Queries

        def _proc_status(self, pid: int) -> dict[str, Any] | None: ...

    def _setup_registry(self, load_project: bool) -> None:
        """The drivers and devices every system has (called once, by `System.__init__`)."""
        project_rnix = self.project_dir / ".rnix"
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

    def load_supervisors(self, path: Path | str | None = None) -> list[SupervisorSpec]:
        """Specs from ``path`` (default: ``<project>/.rnix/supervisors.yaml``), validated."""
        file = Path(path) if path is not None else self.project_dir / ".rnix" / "supervisors.yaml"
        return load_supervisors(file, lambda name: name in self._catalog.templates)

    def parse_supervisors(self, text: str, source: str = "<text>") -> list[SupervisorSpec]:
        """Specs from YAML text in the format of ``supervisors.yaml``, validated."""
        return parse_supervisors(text, source, lambda name: name in self._catalog.templates)

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

    @property
    def state(self) -> StateKind:
        """``"dir"``, ``"temp"`` or ``"memory"`` (see `rnix_actors.state`)."""
        return self._place.kind

    @property
    def state_dir(self) -> Path | None:
        """Where state is kept; None for ``state="memory"``."""
        return self._place.dir


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
