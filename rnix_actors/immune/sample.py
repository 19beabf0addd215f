"""What one run of an agent looked like: the raw material of profiles and detection.

A run is a list of reasoning steps; each step has the model's tokens and duration and the
device syscalls it attempted, counted by *call key* ``"<Syscall> <device>"`` (``"Exec
/dev/shell"``). Only calls that reach the guards are counted: device syscalls after the
permission check. Model calls are measured as tokens and duration, not counted as calls.

`RunRecord` is the live, mutable form kept per process by the guard (written by that
process's thread only); `RunSample` is the frozen form the daemon learns from and persists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from rnix_actors.immune.novelty import call_item, seq_item

_PROC_PID = re.compile(r"^/proc/\d+(/.*)?$")

MAX_PATHS = 256
"""Raw ``(syscall, path)`` pairs a record remembers (a run reading thousands of distinct
``/proc/<pid>`` paths must not grow it without bound; the rest take the longer way)."""


def device_of(path: str) -> str:
    """The device a behaviour profile tracks for a syscall path.

    ``/proc/<pid>/...`` collapses to ``/proc`` (the pid is an argument, not a different
    device); every other path is kept as it is, so each host device is its own device.
    """
    if path.startswith("/proc/") and _PROC_PID.match(path):
        return "/proc"
    return path


def call_key(syscall: str, device: str) -> str:
    return f"{syscall} {device}"


def split_key(key: str) -> tuple[str, str]:
    """``"Exec /dev/shell"`` → ``("Exec", "/dev/shell")``."""
    syscall, _, device = key.partition(" ")
    return syscall, device


@attrs.frozen
class StepSample:
    """One reasoning step: model tokens, model duration, calls per call key."""

    tokens: int = 0
    duration_ms: float = 0.0
    calls: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "duration_ms": self.duration_ms, "calls": dict(self.calls)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepSample:
        calls = tuple(sorted((str(k), int(v)) for k, v in dict(data["calls"]).items()))
        return cls(int(data["tokens"]), float(data["duration_ms"]), calls)


@attrs.frozen
class RunSample:
    """A finished run of ``template``; ``items`` are its novelty items (the kinds of call,
    destinations, hosts and transitions it used: `rnix_actors.immune.novelty`)."""

    template: str
    steps: tuple[StepSample, ...] = ()
    items: frozenset[str] = frozenset()

    def run_counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for step in self.steps:
            for key, count in step.calls:
                totals[key] = totals.get(key, 0) + count
        return totals

    def to_json(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "steps": [s.to_json() for s in self.steps],
            "items": sorted(self.items),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSample:
        steps = tuple(StepSample.from_json(s) for s in data["steps"])
        items = frozenset(str(i) for i in data.get("items", ()))
        return cls(str(data["template"]), steps, items)


UNARMED = -1
"""A cap no count is within: the next call takes the full check."""

UNARMED_STEP: tuple[float, float, float, float] = (-1.0, -1.0, -1.0, -1.0)
"""Step caps no model answer is within."""


class DeviceCount:
    """Calls to one device in a run. ``cap``: the count up to which this device's share of
    the run's calls cannot exceed its limit (set by the last full check that passed)."""

    __slots__ = ("calls", "cap")

    def __init__(self) -> None:
        self.calls = 0
        self.cap = UNARMED


class KeyCount:
    """One call key's counts in a run (``in_step`` counts the calls of step ``step``).

    ``step_cap`` and ``run_cap`` are the counts up to which no per-step or per-run limit of
    the key can be reached: while the counts stay within them (and the device's within
    its cap), a call needs no full check. The full check sets them when it passes; the
    guard's fast path reads them (`rnix_actors.immune.guard.ImmuneGuard`).
    """

    __slots__ = (
        "dev", "device", "earlier", "in_run", "in_step", "key", "run_cap", "side", "step",
        "step_cap",
    )  # fmt: skip

    def __init__(self, key: str, device: str, dev: DeviceCount, side: bool = True) -> None:
        self.key = key
        self.device = device
        self.dev = dev
        self.side = side  # the device declared a side effect (write or external)
        self.step = 0
        self.in_step = 0
        self.earlier: list[tuple[int, int]] = []  # (step, calls) of the steps before ``step``
        self.in_run = 0
        self.step_cap = UNARMED
        self.run_cap = UNARMED

    def count(self, step: int) -> None:
        if step != self.step:
            if self.in_step:
                self.earlier.append((self.step, self.in_step))
            self.step = step
            self.in_step = 0
        self.in_step += 1
        self.in_run += 1
        self.dev.calls += 1


class RunRecord:
    """The live record of one process's run, updated before each call is allowed to run.

    Only the process's own thread writes it (guards run in that thread), with no lock: the
    daemon reads a record only once the run completed, and every call of a completed run
    happened before its ``Exit`` event (the agent's thread makes them, then reports its exit),
    so those reads never race a write. Records of killed runs are discarded unread.

    Counts live in one `KeyCount` per call key (reached by the raw ``(syscall, path)`` too,
    so that the common call needs no key building) and one `DeviceCount` per device.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        # Finished steps as (step, tokens, duration): their calls per key are kept by each
        # `KeyCount`, and frozen samples are only built when the run ends.
        self.done: list[tuple[int, int, float]] = []
        self.step = 0
        self.steps = 0  # steps begun, the current one included
        self.tokens = 0
        self.duration_ms = 0.0
        self.keys: dict[str, KeyCount] = {}
        self.paths: dict[tuple[str, str], KeyCount] = {}
        self.devices: dict[str, DeviceCount] = {}
        self.calls = 0
        self.run_tokens = 0
        self.armed: object = None  # what the caps were computed against (see `arm`)
        # Model answers up to these (tokens, duration, run tokens, steps) reach no limit.
        self.step_caps = UNARMED_STEP
        self.reported: set[str] = set()  # metrics already alerted in this run
        self.minted: set[str] = set()  # threat names this run made known (not a re-match)
        self.items: set[str] = set()  # destinations and hosts used (novelty items)
        self.last: KeyCount | None = None  # the kind of the previous call
        self.pairs: set[tuple[KeyCount | None, KeyCount]] = set()  # transitions made

    def begin_step(self, step: int, tokens: int, duration_ms: float) -> None:
        """A model answer for ``step`` arrived (before any of its calls run)."""
        if self.step:
            self.done.append((self.step, self.tokens, self.duration_ms))
        self.step = step
        self.steps += 1
        self.tokens = tokens
        self.duration_ms = duration_ms
        self.run_tokens += tokens

    def add_call(self, step: int, syscall: str, path: str, side: bool = True) -> KeyCount:
        """Count one attempted call of ``syscall`` on ``path`` (``side``: its device declared
        a side effect); returns its key's counts."""
        if step != self.step:  # no model answer seen for this step (guard added mid-run)
            self.begin_step(step, 0, 0.0)
        counted = self.paths.get((syscall, path))
        if counted is None:
            device = device_of(path)
            key = call_key(syscall, device)
            counted = self.keys.get(key)
            if counted is None:
                dev = self.devices.get(device)
                if dev is None:
                    dev = self.devices[device] = DeviceCount()
                counted = self.keys[key] = KeyCount(key, device, dev, side)
            if len(self.paths) < MAX_PATHS:
                self.paths[(syscall, path)] = counted
        counted.count(step)
        self.calls += 1
        if self.last is not counted:  # transitions between different kinds of call
            self.pairs.add((self.last, counted))
            self.last = counted
        return counted

    def arm(self, against: object) -> None:
        """Caps computed against anything but ``against`` (a snapshot) no longer hold."""
        if self.armed is not against:
            self.armed = against
            self.step_caps = UNARMED_STEP
            for counted in self.keys.values():
                counted.step_cap = counted.run_cap = counted.dev.cap = UNARMED

    def run_counts(self) -> dict[str, int]:
        return {k.key: k.in_run for k in self.keys.values()}

    def sample(self) -> RunSample:
        """The run so far as a frozen sample (the current step included)."""
        calls: dict[int, dict[str, int]] = {}
        for counted in self.keys.values():
            for step, count in counted.earlier:
                calls.setdefault(step, {})[counted.key] = count
            if counted.in_step:
                calls.setdefault(counted.step, {})[counted.key] = counted.in_step
        steps = list(self.done)
        if self.step:
            steps.append((self.step, self.tokens, self.duration_ms))
        none: dict[str, int] = {}
        return RunSample(
            self.template,
            tuple(
                StepSample(tokens, ms, tuple(sorted(calls.get(step, none).items())))
                for step, tokens, ms in steps
            ),
            frozenset(self.novelty_items()),
        )

    def novelty_items(self) -> set[str]:
        """Every novelty item of the run so far: kinds of call, destinations, transitions."""
        items = set(self.items)
        items.update(call_item(k.key, k.side) for k in self.keys.values())
        items.update(seq_item(a.key if a else "", b.key) for a, b in self.pairs)
        return items
