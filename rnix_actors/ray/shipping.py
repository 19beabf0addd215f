"""What a host needs to run one process: its spec without the head's objects, plus the
drivers, devices and guards the host does not have yet.

A host builds the built-in devices (``/dev/fs``, ``/dev/shell``, ``/proc``, ``/dev/llm``) and
the HTTP drivers itself, from the head's config. Anything else a process may use (a host
device, a Python driver, a guard) travels by value the first time, and must pickle: a spawn
that would need something that cannot travel is refused (`SpawnError`), never run without it.
The immune guard is rebuilt on the host around the daemon's current snapshot, shipped again
whenever the daemon replaces it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rnix_actors.drivers.replay import ReplayDriver
from rnix_actors.errors import SpawnError
from rnix_actors.immune.guard import ImmuneGuard
from rnix_actors.kernel.devices import DeviceRegistry, path_within
from rnix_actors.kernel.spec import ProcessSpec
from rnix_actors.messages.guards import Guard
from rnix_actors.ray.wire import CheckpointShip, GuardShip, SpawnShip

BUILT_IN = ("/dev/fs", "/dev/shell", "/proc", "/dev/llm")
FIX = "register it with a picklable handler, or run this agent on the local backend"


class Shipped:
    """What one host already holds, by key, as the identity of the head's object (a
    restarted host starts empty)."""

    def __init__(self) -> None:
        self.objects: dict[str, int] = {}
        self.snapshots: dict[str, Any] = {}  # immune key -> the snapshot the host has

    def clear(self) -> None:
        self.objects.clear()
        self.snapshots.clear()


def immune_key(guard: Guard) -> tuple[str, ImmuneGuard] | None:
    owner = getattr(guard, "__self__", None)
    if isinstance(owner, ImmuneGuard):
        return f"immune-{id(owner.shared)}", owner
    return None


def ship_spec(
    spec: ProcessSpec, shipped: Shipped, devices: DeviceRegistry, host_drivers: Iterable[str]
) -> tuple[SpawnShip, dict[str, int]]:
    """The `SpawnShip` of ``spec`` and the objects it ships (to mark as shipped once the
    host took it). Raises `SpawnError` naming what cannot travel."""
    new: dict[str, int] = {}
    driver, name = spec.driver, spec.driver.name
    driver_obj: Any = None
    scripts: tuple[tuple[str, Any], ...] = ()
    if isinstance(driver, ReplayDriver):
        script = driver.load(spec.model)
        if shipped.objects.get(f"script:{spec.model}") != id(script):
            scripts = ((spec.model, script),)
            new[f"script:{spec.model}"] = id(script)
    elif name not in host_drivers and shipped.objects.get(f"driver:{name}") != id(driver):
        driver_obj = pickled(driver, f"driver '{name}'")
        new[f"driver:{name}"] = id(driver)
    ship = SpawnShip(
        pid=spec.pid, uuid=spec.uuid, ppid=spec.ppid, depth=spec.depth,
        template=spec.template, intent=spec.intent, allowed=spec.allowed, denied=spec.denied,
        workdir=spec.workdir, max_steps=spec.max_steps, model=spec.model, driver_name=name,
        guards=tuple(_guards(spec.guards, shipped, new)), driver=driver_obj,
        devices=tuple(_devices(spec.allowed, devices, shipped, new)),
        replay_scripts=scripts, resume=spec.resume, checkpoint=_checkpoint(spec),
    )  # fmt: skip
    return ship, new


def _checkpoint(spec: ProcessSpec) -> CheckpointShip | None:
    ck = spec.checkpointer
    if ck is None:
        return None
    has_position = getattr(ck, "_position", None) is not None
    return CheckpointShip(dict(ck.identity), ck.seq, ck.written, has_position)


def _devices(
    allowed: frozenset[str], devices: DeviceRegistry, shipped: Shipped, new: dict[str, int]
) -> Iterable[tuple[str, Any]]:
    for path, device in devices.items():
        if any(path_within(path, b) for b in BUILT_IN):
            continue
        if not any(path_within(path, a) or path_within(a, path) for a in allowed):
            continue  # the process may not use it: it need not travel
        if shipped.objects.get(f"device:{path}") == id(device):
            continue
        new[f"device:{path}"] = id(device)
        yield path, pickled(device, f"device {path}")


def _guards(guards: Iterable[Guard], shipped: Shipped, new: dict[str, int]) -> Iterable[GuardShip]:
    for guard in guards:
        found = immune_key(guard)
        if found is not None:
            key, owner = found
            snap = owner.shared.snapshot
            fresh = shipped.snapshots.get(key) is not snap
            yield GuardShip(key, True, snapshot=snap if fresh else None)
            continue
        key = f"guard-{id(guard)}"
        if shipped.objects.get(key) == id(guard):
            yield GuardShip(key, False)
            continue
        new[key] = id(guard)
        yield GuardShip(key, False, guard=pickled(guard, f"guard {guard!r}"))


def pickled(obj: object, what: str) -> bytes:
    """``obj`` as bytes the host unpickles itself: one that cannot load there (a module the
    host cannot import) refuses that spawn with the reason, not the whole batch it came in."""
    from ray import cloudpickle

    try:
        data: bytes = cloudpickle.dumps(obj)
        return data
    except Exception as exc:
        raise SpawnError(
            f"spawn rejected: {what} cannot travel to a Ray host "
            f"({type(exc).__name__}: {exc}); {FIX}"
        ) from None
