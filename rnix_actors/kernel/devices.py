"""Virtual devices: the registry, the device protocol and the permission check.

A device is any object with a ``handle(call) -> str`` method. It is registered at a path such as
``/dev/fs``; a lookup takes the exact path first, then the longest registered prefix, and hands
the remainder to the device as ``subpath`` (``/dev/fs/src/a.py`` → ``/dev/fs`` + ``/src/a.py``).
Devices are called from agent-process threads, so they must be thread-safe.
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.cancel import CancelToken
from rnix_actors.messages.guards import Effect as Effect  # a device declares its Effect here
from rnix_actors.shellconf import ShellSettings


@attrs.frozen
class DeviceCall:
    """One syscall on a device, as the device sees it."""

    pid: int
    device: str  # the registered device path, e.g. "/dev/fs"
    subpath: str  # what followed the device path, "" when the call named the device itself
    op: str  # device-specific operation: "read", "write", "list", "glob", "exec", "call"...
    args: Mapping[str, Any]
    workdir: Path
    cancel: CancelToken = attrs.field(factory=CancelToken)
    shell: ShellSettings | None = None  # the calling agent's template's shell settings


@runtime_checkable
class Device(Protocol):
    """What the kernel needs of a device.

    ``handle`` returns the call's textual result or raises `DeviceError` (a tool error for the
    agent, counted by the circuit breaker under ``CODE|device``). Any other exception is turned
    into an ``INTERNAL`` device error by the caller.

    A device may set ``blocking = False`` when its calls are quick and local (files, /proc):
    the events around such calls are then sent to the bus in batches. Devices are blocking
    unless they say otherwise.
    """

    def handle(self, call: DeviceCall) -> str: ...


def device_effect(device: object, op: str, subpath: str = "") -> Effect:
    """The effect of calling ``op`` on ``device`` at ``subpath``.

    A device declares it with an ``effect_of(op, subpath) -> Effect`` method (when it depends
    on the operation or the tool, as for ``/dev/fs`` or an MCP server) or an ``effect``
    attribute (one effect for every call). A device that declares neither, or declares
    something that is not an `Effect`, is ``EXTERNAL``.
    """
    effect_of = getattr(device, "effect_of", None)
    found = effect_of(op, subpath) if callable(effect_of) else getattr(device, "effect", None)
    return found if isinstance(found, Effect) else Effect.EXTERNAL


class HostDevice:
    """A device backed by a host application's handler function.

    The handler receives the `DeviceCall` and returns a string (or any JSON-able value, which is
    rendered with ``str``). It may raise `DeviceError` to report a tool error. ``effect`` says
    what its calls do (`Effect`); a host device that does not say is ``EXTERNAL``.
    """

    def __init__(
        self,
        handler: Callable[[DeviceCall], object],
        description: str = "",
        blocking: bool = True,
        effect: Effect = Effect.EXTERNAL,
    ) -> None:
        if not isinstance(effect, Effect):
            raise TypeError(f"effect must be an Effect (read, write, external), got {effect!r}")
        self._handler = handler
        self.description = description
        self.blocking = blocking
        self.effect = effect

    def handle(self, call: DeviceCall) -> str:
        result = self._handler(call)
        return result if isinstance(result, str) else str(result)


def normalize_device_path(path: str) -> str:
    """Return the canonical form of a device path or raise ValueError.

    Device paths are absolute, have no ``.``/``..`` segments and no trailing slash.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"device path must be absolute, like /dev/name (got {path!r})")
    if any(seg in (".", "..") for seg in path.split("/")):
        raise ValueError(f"device path must not contain '.' or '..' (got {path!r})")
    norm = posixpath.normpath(path)
    if norm == "/":
        raise ValueError("device path must not be '/'")
    return norm


def path_within(path: str, entry: str) -> bool:
    """True if ``path`` is ``entry`` itself or below it (``/dev/fs/x`` is within ``/dev/fs``)."""
    return path == entry or path.startswith(entry.rstrip("/") + "/")


class DeviceRegistry:
    """Thread-safe map of device paths to devices with exact-then-longest-prefix lookup."""

    def __init__(self) -> None:
        # The System registers devices from its callers' threads while every agent process
        # looks paths up in its own thread, in the middle of its call: no actor to ask there.
        self._lock = threading.Lock()
        self._devices: dict[str, Device] = {}
        # path -> lookup result; agents call the same few paths over and over.
        self._cache: dict[str, tuple[str, Device, str]] = {}

    def register(self, path: str, device: Device) -> None:
        """Register ``device`` at ``path``; raises ValueError if the path is taken or invalid."""
        norm = normalize_device_path(path)
        if not isinstance(device, Device):
            raise TypeError(f"device for {norm} has no handle(call) method")
        with self._lock:
            if norm in self._devices:
                raise ValueError(f"a device is already registered at {norm}")
            self._devices[norm] = device
            self._cache = {}

    def unregister(self, path: str) -> None:
        with self._lock:
            self._devices.pop(normalize_device_path(path), None)
            self._cache = {}

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._devices)

    def items(self) -> list[tuple[str, Device]]:
        """``(path, device)`` pairs, by path."""
        with self._lock:
            return sorted(self._devices.items(), key=lambda item: item[0])

    def lookup(self, path: str) -> tuple[str, Device, str]:
        """Return ``(device_path, device, subpath)`` for ``path``.

        Raises `DeviceError` NOT_FOUND when no registered device covers the path.
        """
        hit = self._cache.get(path)
        if hit is not None:
            return hit
        found = self._lookup(path)
        with self._lock:
            if len(self._cache) < 4096:
                self._cache[path] = found
        return found

    def _lookup(self, path: str) -> tuple[str, Device, str]:
        try:
            norm = normalize_device_path(path)
        except ValueError as exc:
            raise DeviceError(ErrorCode.INVALID, str(path), str(exc)) from None
        with self._lock:
            device = self._devices.get(norm)
            if device is not None:
                return norm, device, ""
            best = ""
            for candidate in self._devices:
                if path_within(norm, candidate) and len(candidate) > len(best):
                    best = candidate
            if not best:
                raise DeviceError(ErrorCode.NOT_FOUND, norm, "no such device")
            return best, self._devices[best], norm[len(best) :]


DENIAL_HINT = (
    "Child processes inherit your device restrictions and cannot gain new permissions by "
    "spawning; do not spawn to reach this device. Use complete to report your results with "
    "the devices you have."
)


def permission_error(path: str, allowed: Iterable[str], denied: Iterable[str]) -> str | None:
    """Return a denial message for ``path`` or None when the process may use it.

    ``denied`` is checked first; then ``path`` must lie within an ``allowed`` entry. An empty
    whitelist allows nothing: there is no fail-open case.
    """
    for entry in denied:
        if path_within(path, entry):
            return f"permission denied: device {path} is denied to this process. {DENIAL_HINT}"
    allowed_list = sorted(allowed)
    if any(path_within(path, entry) for entry in allowed_list):
        return None
    return f"permission denied: device {path} not in allowed list {allowed_list}. {DENIAL_HINT}"
