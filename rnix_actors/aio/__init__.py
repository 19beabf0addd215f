"""The asyncio API: `AsyncSystem` wraps a `rnix_actors.System` for event-loop hosts.

    from rnix_actors.aio import AsyncSystem

    async with AsyncSystem(".", state="memory") as system:
        info = await system.run("code-analyst", "review this repo", timeout=60)
        async with system.events(["Exit"]) as events:
            ...

See ``docs/embedding.md`` for which thread calls what, cancellation and shutdown.
"""

from rnix_actors.aio.bridge import AsyncPythonDriver, LoopClosed
from rnix_actors.aio.events import EventsDropped, EventStream
from rnix_actors.aio.supervision import AsyncSupervisorHandle
from rnix_actors.aio.system import AsyncSystem

__all__ = [
    "AsyncPythonDriver",
    "AsyncSupervisorHandle",
    "AsyncSystem",
    "EventStream",
    "EventsDropped",
    "LoopClosed",
]
