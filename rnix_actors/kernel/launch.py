"""Where a process runs: the seam between the kernel and its backends.

The kernel owns every process's PID, record, signals and spawn safety wherever the process
runs; a `Launcher` only starts the process's actor somewhere and returns its
`ProcessHandle`, which the kernel tells messages to (`Pause`, `Terminate`, `Reaped`,
`DeliverMail`, a child's `ProcessExited`). The local backend is `AgentProcess.start`: a
Pykka ref is a handle. The Ray backend (`rnix_actors.ray`) starts the actor in a host on
another node and returns a handle that forwards the messages there.
"""

from __future__ import annotations

from typing import Protocol

from rnix_actors.kernel.spec import ProcessSpec


class ProcessHandle(Protocol):
    """The kernel's way to reach one process. ``tell`` never blocks; it may raise
    ``pykka.ActorDeadError`` for a process that ended (its exit is on its way)."""

    def tell(self, message: object) -> None: ...


class Launcher(Protocol):
    def launch(self, spec: ProcessSpec) -> ProcessHandle:
        """Start the process of ``spec``; raise (`SpawnError` or any error) and start nothing
        when it cannot run."""
        ...

    def node_of(self, handle: ProcessHandle) -> str:
        """Where ``handle``'s process runs (shown by ps, top and inspect; "" for here)."""
        ...
