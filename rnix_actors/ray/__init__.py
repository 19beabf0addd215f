"""The Ray backend (``kernel.backend: ray``): agent processes on hosts across a Ray cluster,
under the head's kernel, supervisors and immune daemon (docs/ray.md).

Importing this package imports Ray; the local backend never does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rnix_actors.config import Config
from rnix_actors.ray.backend import NodeView, RayBackend
from rnix_actors.ray.wire import HostSetup


def host_setup(
    config: Config, protected: Iterable[Path], providers: Mapping[str, Any]
) -> HostSetup:
    """What every host builds its device layer and drivers from."""
    return HostSetup(config, tuple(str(p) for p in protected), dict(providers), "")


__all__ = ["HostSetup", "NodeView", "RayBackend", "host_setup"]
