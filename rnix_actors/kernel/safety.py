"""Spawn safety: monotonic device inheritance, the depth cap, the circuit breaker.

Pure functions and a small counter class; the kernel and the agent process call them on every
spawn path and every tool error.
"""

from __future__ import annotations

from collections.abc import Iterable

from rnix_actors.errors import SpawnError
from rnix_actors.kernel.devices import path_within

MAX_SPAWN_DEPTH = 8
BREAKER_CONSECUTIVE = 3
BREAKER_TOTAL = 6
SPAWN_FINGERPRINT = "INTERNAL|spawn"


def depth_rejection(current_depth: int, cap: int = MAX_SPAWN_DEPTH) -> str:
    """The exact rejection text of the seed document for a spawn at the cap."""
    return (
        f"spawn rejected: maximum spawn depth {cap} reached (current depth {current_depth}).\n"
        "Child processes inherit your device restrictions and cannot gain new\n"
        "permissions by spawning deeper. Use complete to report your results\n"
        "with the devices you have."
    )


def narrow_devices(parent: Iterable[str], requested: Iterable[str]) -> frozenset[str]:
    """Devices a child may hold: each requested entry that lies within one of the parent's.

    This is the intersection of the two whitelists with prefix semantics: a request for
    ``/dev/fs`` under a parent holding only ``/dev/fs/docs`` yields ``/dev/fs/docs`` (the
    narrower one), never ``/dev/fs``. The result is never wider than ``parent``.
    """
    parent_set = set(parent)
    result: set[str] = set()
    for req in requested:
        for held in parent_set:
            if path_within(req, held):
                result.add(req)
            elif path_within(held, req):
                result.add(held)
    return frozenset(result)


def child_devices(
    parent: Iterable[str] | None, template: Iterable[str], requested: Iterable[str] | None
) -> frozenset[str]:
    """Compute a new process's whitelist; raise `SpawnError` if it is empty.

    ``parent`` is None only for top-level spawns (CLI, API, supervisor, compose), which hold
    at most their template's devices. ``requested`` (optional) narrows further.
    """
    devices = frozenset(template)
    if requested is not None:
        devices = narrow_devices(devices, requested)
    if parent is not None:
        devices = narrow_devices(parent, devices)
    if not devices and (frozenset(template) or requested):
        raise SpawnError(_empty_devices(parent, template, requested))
    return devices


def _empty_devices(
    parent: Iterable[str] | None, template: Iterable[str], requested: Iterable[str] | None
) -> str:
    agent = sorted(template)
    if parent is not None:
        return (
            "spawn rejected: the child would hold no devices (the intersection of the "
            f"parent's devices {sorted(parent)}, the agent's {agent} and the requested "
            f"{sorted(requested or [])} is empty). Spawning cannot grant devices."
        )
    # Depth 0 (API, CLI, supervisor, compose): no parent, so only the request can narrow.
    wanted = sorted(requested or [])
    return (
        f"spawn rejected: devices={wanted} names none of the agent's devices {agent}, so the "
        "process would hold no devices; pass devices within the agent's (a request can only "
        "narrow them) or omit devices to get all of them"
    )


class CircuitBreaker:
    """Counts tool errors by fingerprint ``CODE|path``.

    Trips after `BREAKER_CONSECUTIVE` identical fingerprints in a row or `BREAKER_TOTAL` errors
    in all. A success resets the run of identical fingerprints, not the total.
    """

    def __init__(self, consecutive: int = BREAKER_CONSECUTIVE, total: int = BREAKER_TOTAL) -> None:
        self.consecutive_limit = consecutive
        self.total_limit = total
        self.total = 0
        self.run = 0
        self.last: str | None = None
        self.tripped_reason: str | None = None

    def record_error(self, fingerprint: str) -> str | None:
        """Count one error; return the trip reason (``circuit_breaker: …``) when it trips."""
        self.total += 1
        self.run = self.run + 1 if fingerprint == self.last else 1
        self.last = fingerprint
        if self.tripped_reason is None:
            if self.run >= self.consecutive_limit:
                self.tripped_reason = (
                    f"circuit_breaker: {self.run} consecutive errors with fingerprint {fingerprint}"
                )
            elif self.total >= self.total_limit:
                self.tripped_reason = (
                    f"circuit_breaker: {self.total} cumulative tool errors across fingerprints"
                )
        return self.tripped_reason

    def record_success(self) -> None:
        self.run = 0
        self.last = None

    @property
    def tripped(self) -> bool:
        return self.tripped_reason is not None
