"""Where agent processes run: the local thread pool or the Ray backend (`rnix_actors.ray`),
and the other backends a system stops after its kernel (MCP servers). `System` inherits it;
``nodes`` is its public API.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnix_actors.app.service import ServiceRef
from rnix_actors.config import Config
from rnix_actors.drivers.providers import ProviderConfig
from rnix_actors.errors import ConfigError
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.kernel.process import ProcessInfo

if TYPE_CHECKING:  # the MCP SDK is imported only when a server is used
    from rnix_actors.mcp.service import McpService


class Backends:
    """The backends (see the module docstring)."""

    config: Config
    devices: DeviceRegistry
    providers: dict[str, ProviderConfig]
    mcp: McpService | None
    _ray: Any

    if TYPE_CHECKING:  # provided by System, Registry and Queries

        def stop(self, timeout: float = 10.0, checkpoint: bool = False) -> None: ...

        def protected_dirs(self) -> tuple[Path, ...]: ...

        def _proc_status(self, pid: int) -> dict[str, Any] | None: ...

        def ps(self, all: bool = False) -> list[ProcessInfo]: ...

        @property
        def running(self) -> bool: ...

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
        return RayBackend(
            self.config.ray, setup, self.devices, self._proc_status, self._head_checkpoints
        )

    def _head_checkpoints(self) -> Any:
        """The checkpoint store that writes the checkpoints of processes on Ray hosts."""
        run = getattr(self, "_run", None)
        return None if run is None else run.checkpoints

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


def backend_name(backend: str | None, config: Config) -> str:
    """``backend`` (from ``System(backend=...)``) or the config's ``kernel.backend``."""
    if backend is None:
        return config.kernel.backend
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray' (got {backend!r})")
    return backend
