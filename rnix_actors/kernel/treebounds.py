"""Bounds on process trees: breadth, total spend, system size, spawn rate, failure rate.

The depth cap stops a chain; these stop a bush. A *tree* is a process started at depth 0 (by
the CLI, the API, a supervisor...) with every process its agents spawn below it. The kernel asks
`TreeBounds.admit` before each spawn and tells it of each start and exit; every refusal is a
`SpawnError` whose text says which bound and how to raise it, and which the spawning agent's
circuit breaker counts as ``INTERNAL|spawn``.

- ``limits.max_descendants`` (the root's template): processes ever spawned in the tree;
- ``kernel.max_processes``: live processes in the whole system;
- ``kernel.spawn_rate``: agent spawns per tree within ``kernel.spawn_window`` seconds;
- ``kernel.spawn_failures``: failed agent spawns (refusals and failed children) per tree within
  the window; once reached, the tree may spawn no more (a breaker that interleaved successes
  do not reset, unlike the consecutive count of the per-process breaker);
- ``limits.max_tree_tokens`` / ``max_tree_cost``: the tree's rolled-up spend (`TreeBudget`,
  shared by the tree's processes, which add to it after each model answer; the process that
  crosses the limit asks the kernel to suspend the root and its subtree, ``budget_exhausted``).

Kernel state only (one thread), except `TreeBudget`, which is locked.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

import attrs

from rnix_actors.config import KernelConfig
from rnix_actors.errors import SpawnError
from rnix_actors.templates import Limits

BUDGET_ORIGIN = "tree budget"


@attrs.frozen
class TreeLimits:
    """The system-wide bounds (``kernel:`` in config.yaml); 0 turns one off."""

    max_processes: int = 2000
    spawn_rate: int = 100
    spawn_failures: int = 12
    spawn_window: float = 10.0


def tree_limits(kernel: KernelConfig) -> TreeLimits:
    """The bounds the config's ``kernel:`` section sets."""
    return TreeLimits(
        kernel.max_processes, kernel.spawn_rate, kernel.spawn_failures, kernel.spawn_window
    )


class TreeBudget:
    """The spend of one tree against its root's ``max_tree_tokens`` / ``max_tree_cost``."""

    def __init__(self, root: int, max_tokens: int, max_cost: float) -> None:
        self.root = root
        self.max_tokens = max_tokens
        self.max_cost = max_cost
        self.tokens = 0
        self.cost = 0.0
        # Every process of the tree adds its spend from its own thread after each model answer,
        # and exactly one of them must see the limit crossed.
        self._lock = threading.Lock()
        self.reason = ""  # set once a limit is reached

    def add(self, tokens: int, cost: float) -> str | None:
        """Add one answer's spend; return the reason once, when a limit is first reached."""
        with self._lock:
            self.tokens += tokens
            self.cost += cost
            if self.reason:
                return None
            if self.max_tokens and self.tokens >= self.max_tokens:
                what = f"{self.tokens} tokens of max_tree_tokens {self.max_tokens}"
            elif self.max_cost and self.cost >= self.max_cost:
                what = f"${self.cost:.4f} of max_tree_cost ${self.max_cost:g}"
            else:
                return None
            self.reason = f"budget_exhausted: the process tree of PID {self.root} spent {what}"
            return self.reason


@attrs.define
class _Tree:
    limits: Limits
    budget: TreeBudget | None
    members: int = 0
    descendants: int = 0
    spawns: collections.deque[float] = attrs.field(factory=collections.deque)
    failures: collections.deque[float] = attrs.field(factory=collections.deque)


class TreeBounds:
    """Decides whether a spawn fits its tree and the system (see the module docstring)."""

    def __init__(self, limits: TreeLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.live = 0
        self._root_of: dict[int, int] = {}
        self._trees: dict[int, _Tree] = {}

    def admit(self, parent: int, agent_spawn: bool) -> None:
        """Raise `SpawnError` if a new process (spawned by ``parent`` if ``agent_spawn``)
        would break a bound; a refused agent spawn counts as a failure of its tree."""
        cap = self.limits.max_processes
        if cap and self.live >= cap:
            self._refuse(
                parent if agent_spawn else 0,
                f"spawn rejected: the system already runs {self.live} processes "
                f"(kernel.max_processes {cap}). Finish or stop processes first.",
            )
        if not agent_spawn or parent not in self._root_of:
            return
        root = self._root_of[parent]
        tree = self._trees[root]
        now = self.clock()
        window = self.limits.spawn_window
        _expire(tree.spawns, now - window)
        _expire(tree.failures, now - window)
        if self.limits.spawn_failures and len(tree.failures) >= self.limits.spawn_failures:
            self._refuse(
                parent,
                f"spawn rejected: circuit breaker of the process tree of PID {root}: "
                f"{len(tree.failures)} spawn failures within {window:g}s "
                f"(kernel.spawn_failures {self.limits.spawn_failures}). Stop spawning; use "
                "complete to report your results.",
            )
        most = tree.limits.max_descendants
        if most and tree.descendants >= most:
            self._refuse(
                parent,
                f"spawn rejected: the process tree of PID {root} already has {tree.descendants} "
                f"descendants (limits.max_descendants {most} in the root's template). "
                "Do the work yourself or use complete to report your results.",
            )
        rate = self.limits.spawn_rate
        if rate and len(tree.spawns) >= rate:
            self._refuse(
                parent,
                f"spawn rejected: the process tree of PID {root} spawned {len(tree.spawns)} "
                f"processes within {window:g}s (kernel.spawn_rate {rate}). Slow down: wait for "
                "results before spawning more.",
            )

    def started(
        self, pid: int, parent: int, agent_spawn: bool, limits: Limits
    ) -> TreeBudget | None:
        """Record a started process; return its tree's budget (None when unlimited)."""
        self.live += 1
        if agent_spawn and parent in self._root_of:
            root = self._root_of[parent]
            tree = self._trees[root]
            tree.descendants += 1
            tree.spawns.append(self.clock())
        else:
            root = pid
            budget = None
            if limits.max_tree_tokens or limits.max_tree_cost:
                budget = TreeBudget(pid, limits.max_tree_tokens, limits.max_tree_cost)
            tree = self._trees[pid] = _Tree(limits, budget)
        tree.members += 1
        self._root_of[pid] = root
        return tree.budget

    def exited(self, pid: int, failed_agent_spawn: bool) -> None:
        """Forget a process; a failed agent-spawned child counts as a failure of its tree."""
        root = self._root_of.pop(pid, None)
        if root is None:
            return
        self.live -= 1
        tree = self._trees[root]
        if failed_agent_spawn:
            tree.failures.append(self.clock())
        tree.members -= 1
        if tree.members == 0:
            del self._trees[root]

    def _refuse(self, parent: int, message: str) -> None:
        root = self._root_of.get(parent)
        if root is not None:
            self._trees[root].failures.append(self.clock())
        raise SpawnError(message)


def _expire(times: collections.deque[float], before: float) -> None:
    while times and times[0] < before:
        times.popleft()
