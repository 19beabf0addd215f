"""The kernel actor's state and its record keeping, shared by the parts of `Kernel`.

`KernelBase` holds what the kernel owns (its deps, the live processes, the guards, the grace
timers, the tree bounds, the dormant PIDs) and writes the table, the process log and the bus.
The parts that spawn and resume (`rnix_actors.kernel.kernelstart`) and that record exits
(`rnix_actors.kernel.kernelexit`) build on it; `rnix_actors.kernel.kernel.Kernel` joins them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pykka

from rnix_actors.drivers.base import Driver
from rnix_actors.kernel.base import RnixActor, ThreadTracker
from rnix_actors.kernel.deadlines import Deadline, Deadlines
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.kernel.eventbus import EventBus
from rnix_actors.kernel.launch import Launcher, ProcessHandle
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.process import ProcessInfo, ProcessState, check_transition
from rnix_actors.kernel.processlog import ProcessLog
from rnix_actors.kernel.spec import ProcessControl
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.kernel.threads import AgentThreads
from rnix_actors.kernel.treebounds import TreeBounds, TreeLimits
from rnix_actors.messages.events import Event
from rnix_actors.messages.guards import Guard
from rnix_actors.store.checkpoints import CheckpointStore
from rnix_actors.store.db import Store
from rnix_actors.templates import AgentTemplate, Skill


@attrs.frozen
class KernelDeps:
    """Everything the kernel works with, built by `rnix_actors.System`."""

    store: Store  # PIDs are allocated here, synchronously
    table: ProcessTable
    bus: pykka.ActorRef[EventBus]
    process_log: pykka.ActorRef[ProcessLog]  # process rows reach the store through it
    devices: DeviceRegistry
    drivers: Callable[[str], Driver | None]
    templates: Callable[[str], AgentTemplate | None]
    skills: Callable[[], dict[str, Skill]]
    workdir: Path
    sigterm_grace: float = 10.0
    tracker: ThreadTracker | None = None
    threads: AgentThreads | None = None  # where agent processes run
    bounds: TreeLimits = attrs.field(
        factory=TreeLimits
    )  # breadth, size and rate bounds of process trees
    checkpoints: CheckpointStore | None = None  # None: processes write no checkpoints
    # The work dir a resumed process returns to, resolved if agents may still work there,
    # else `BadWorkdir` (the config may have changed since it was spawned).
    check_workdir: Callable[[Path], Path] | None = None
    launcher: Launcher | None = None  # None: processes run here (threads of this process)


@attrs.define
class Live:
    """What the kernel keeps of a running process."""

    ref: ProcessHandle
    control: ProcessControl
    driver: Driver
    owner: pykka.ActorRef[Any] | None
    agent_spawn: bool
    endpoint: Endpoint
    timer: Deadline | None = None  # the SIGTERM grace period


class KernelBase(RnixActor):
    """The kernel's state, and the writes of its records (table, process log, bus)."""

    def __init__(self, deps: KernelDeps) -> None:
        super().__init__(deps.tracker, Endpoint("kernel"))
        self.deps = deps
        self.live: dict[int, Live] = {}
        self.guards: tuple[Guard, ...] = ()
        self.deadlines = Deadlines("KernelDeadlines")
        self.bounds = TreeBounds(deps.bounds)
        self.dormant: set[int] = set()  # suspended by a previous system: resume on SIGRESUME

    def _state(self, pid: int) -> ProcessState | None:
        info = self.deps.table.get(pid)
        return None if info is None else info.state

    def _transition(self, pid: int, state: ProcessState) -> None:
        info = self.deps.table.get(pid)
        assert info is not None
        self._save(attrs.evolve(info, state=state), check=True)

    def _save(self, info: ProcessInfo, check: bool = False) -> None:
        if check:
            old = self.deps.table.get(info.pid)
            if old is not None and old.state != info.state:
                check_transition(old.state, info.state, info.pid)
        self.deps.table.put(info)
        self.deps.process_log.tell(info)

    def _publish(
        self,
        pid: int,
        syscall: str,
        args: dict[str, Any],
        result: Any = None,
        tokens: int = 0,
        template: str = "",
    ) -> None:
        if not template:
            info = self.deps.table.get(pid)
            template = "" if info is None else info.template
        self.deps.bus.tell(
            Event(
                ts=time.time(),
                pid=pid,
                template=template,
                step=0,
                syscall=syscall,
                args=args,
                result=result,
                tokens=tokens,
            )
        )


def tell(ref: ProcessHandle, message: object) -> None:
    """Tell a process, if it still runs (an ended one's exit is on its way to the kernel)."""
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
