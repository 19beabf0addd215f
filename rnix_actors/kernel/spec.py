"""What the kernel hands a new agent process: its identity, limits and collaborators."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from rnix_actors.drivers.base import Driver
from rnix_actors.kernel.base import ThreadTracker
from rnix_actors.kernel.cancel import CancelToken
from rnix_actors.kernel.checkpointing import Checkpointer, Resumption
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.threads import AgentThreads
from rnix_actors.kernel.treebounds import TreeBudget
from rnix_actors.messages.guards import Guard
from rnix_actors.templates import AgentTemplate


@attrs.define(slots=True)
class LiveFigures:
    """What a running process has spent so far, readable by anyone at any moment.

    The process's own thread is the only writer, and each figure is one attribute store, so
    readers (``ps``, ``top``, the subtree rollups) see a recent value without a lock and
    without a round trip to the process; a reader may see ``steps`` of one step and
    ``tokens`` of the next, never a torn number. The kernel copies the final figures into the
    process record when the process settles.
    """

    steps: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    step_started_at: float | None = None  # wall-clock start of the step in flight
    activity: str = ""  # what the step in flight is doing: "llm", "tool read_file", "child 7"
    # Immutable snapshots taken at step boundaries and model answers (for ``inspect``): the
    # last `CONTEXT_TAIL` context messages and the breaker's (total, run, last fingerprint).
    context: tuple[Any, ...] = ()
    breaker: tuple[int, int, str] = (0, 0, "")
    version: int = 0  # bumped by the writer after each change: readers cache on it


CONTEXT_TAIL = 20


@attrs.define
class ProcessControl:
    """Shared between the kernel and one process: lets signals act in the middle of a step.

    ``cancel`` aborts the call in flight (SIGKILL, SIGINT); ``pause`` asks the process to
    suspend before its next step or tool call, without waiting for its inbox to drain;
    ``stop_signal`` (SIGTERM, SIGINT) asks it to end at its next step boundary, even when a
    step message is queued before the signal's message.
    """

    cancel: CancelToken = attrs.field(factory=CancelToken)
    pause: threading.Event = attrs.field(factory=threading.Event)
    pause_origin: str = ""
    stop_signal: str = ""
    stop_origin: str = ""
    figures: LiveFigures = attrs.field(factory=LiveFigures)

    def request_pause(self, origin: str) -> None:
        self.pause_origin = origin
        self.pause.set()

    def request_stop(self, signal: str, origin: str) -> None:
        if not self.stop_signal:
            self.stop_origin = origin
            self.stop_signal = signal


@attrs.frozen
class ProcessSpec:
    pid: int
    uuid: str
    ppid: int
    depth: int
    template: AgentTemplate
    intent: str
    allowed: frozenset[str]
    denied: frozenset[str]
    workdir: Path
    max_steps: int
    model: str
    driver: Driver
    devices: DeviceRegistry
    guards: tuple[Guard, ...]
    # The kernel's and the bus's refs, or (on a Ray host) stand-ins with their tell and ask:
    # structural, not pykka.ActorRef.
    kernel: Any
    bus: Any
    control: ProcessControl
    tracker: ThreadTracker | None = None
    threads: AgentThreads | None = None  # pooled threads (None: a new thread per process)
    tree_budget: TreeBudget | None = None  # shared by the process's tree (None: unlimited)
    endpoint: Endpoint | None = None  # made by the kernel, so that it can end it on SIGKILL
    links: tuple[Endpoint, ...] = ()  # linked before the process runs its first message
    checkpointer: Checkpointer | None = None  # writes its checkpoints (None: checkpoints off)
    resume: Resumption | None = None  # the checkpoint a resumed process continues from
    # Run by the process's own thread before it asks the kernel to spawn the named agent
    # (a replay script is parsed there, never on the kernel's thread).
    prepare_spawn: Callable[[str], None] | None = None
