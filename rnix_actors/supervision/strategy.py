"""Restart strategies, restart intensity and backoff as pure functions."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence

import attrs

from rnix_actors.supervision.spec import Backoff, Restart, Strategy


def should_restart(restart: Restart, abnormal: bool) -> bool:
    return restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and abnormal)


@attrs.frozen
class Plan:
    """What to do after ``exited`` failed and must be restarted.

    ``stop``: live siblings to stop, in reverse start order. ``start``: children to start, in
    start order (the exited one included). ``remove``: temporary siblings that are stopped and
    forgotten, never restarted.
    """

    stop: tuple[str, ...]
    start: tuple[str, ...]
    remove: tuple[str, ...]


def plan_restart(
    strategy: Strategy,
    order: Sequence[str],
    live: frozenset[str] | set[str],
    exited: str,
    restart: Mapping[str, Restart],
) -> Plan:
    """The OTP strategy as data: ``order`` is the child list in start order (children already
    removed are absent), ``live`` the children currently running."""
    if strategy in (Strategy.ONE_FOR_ONE, Strategy.SIMPLE_ONE_FOR_ONE):
        return Plan((), (exited,), ())
    if strategy is Strategy.ONE_FOR_ALL:
        affected = list(order)
    else:
        affected = list(order[order.index(exited) :])
    stop = tuple(c for c in reversed(affected) if c != exited and c in live)
    remove = tuple(c for c in affected if c != exited and restart[c] is Restart.TEMPORARY)
    start = tuple(c for c in affected if c == exited or restart[c] is not Restart.TEMPORARY)
    return Plan(stop, start, remove)


class RestartIntensity:
    """At most ``max_restarts`` restarts within any ``max_window`` seconds (sliding window).

    `allow` is asked when a restart is needed: it records the restart and returns True, or
    returns False when one more would exceed the intensity (the supervisor then gives up).
    """

    def __init__(self, max_restarts: int, max_window: float) -> None:
        self.max_restarts = max_restarts
        self.max_window = max_window
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        while self._times and self._times[0] <= now - self.max_window:
            self._times.popleft()
        if len(self._times) >= self.max_restarts:
            return False
        self._times.append(now)
        return True

    def count(self, now: float) -> int:
        return sum(1 for t in self._times if t > now - self.max_window)


def backoff_delay(policy: Backoff | None, consecutive: int, rng: random.Random) -> float:
    """Seconds to wait before the ``consecutive``-th restart in a row (1-based)."""
    if policy is None or consecutive <= 0:
        return 0.0
    base = min(policy.max, policy.min * (2 ** (consecutive - 1)))
    spread = base * policy.jitter
    delay: float = max(0.0, base + rng.uniform(-spread, spread))
    return delay
