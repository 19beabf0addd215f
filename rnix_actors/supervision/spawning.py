"""What a supervisor is given by its system (`SupervisorDeps`), and how it asks the kernel for
an agent child: a spawn request, or the resume of a child a previous system left behind.

The requests are pipelined: the supervisor sends all of a restart's requests, then collects
the answers in order (`start_answers`), so a one_for_all restart does not pay a round trip per
child. The new process is linked to the supervisor before it runs its first message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pykka

from rnix_actors.errors import RnixError
from rnix_actors.kernel.base import ThreadTracker
from rnix_actors.kernel.eventbus import EventBus
from rnix_actors.kernel.kernel import Kernel
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.resumption import Restore, Restored
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.messages.kernel import SpawnRequest
from rnix_actors.supervision.spec import ChildSpec
from rnix_actors.supervision.views import SupervisorView
from rnix_actors.templates import AgentTemplate

ASK_TIMEOUT = 10.0


@attrs.frozen
class SupervisorDeps:
    """The system's parts and callbacks every supervisor of a tree shares."""

    kernel: pykka.ActorRef[Kernel]
    bus: pykka.ActorRef[EventBus]
    table: ProcessTable
    resolve_agent: Callable[[ChildSpec, str], AgentTemplate | str]
    known_agent: Callable[[str], bool]
    planner: Callable[[], Any]  # -> ActorRef of the migration planner, or None
    on_start: Callable[[str, Any], None]  # (path, ref): a supervisor is running
    on_exit: Callable[[str, Any, SupervisorView], None]  # (path, ref, final view)
    tracker: ThreadTracker | None = None
    clock: Callable[[], float] = time.monotonic
    # Run in the supervisor's thread before a spawn: a replay script is parsed here, never
    # on the kernel's thread (`rnix_actors.kernel.spawning.prepare_in_caller`).
    prepare_spawn: Callable[[AgentTemplate | str], None] | None = None
    prepare_restore: Callable[[int], None] | None = None  # the same, before a resume
    # A child path (/review/analyst) -> the PID to resume from its checkpoint instead of
    # starting the child afresh (each PID is handed out once); None: start afresh.
    resumable: Callable[[str], int | None] = lambda path: None


def spawn_child(
    deps: SupervisorDeps, path: str, link: Endpoint, spec: ChildSpec, first: bool
) -> Any:
    """Send the spawn request of the supervisor at ``path`` for child ``spec`` (the new process
    is linked to ``link`` before it runs); returns the future of the new PID. The first start
    of a ``resume`` child with a checkpoint left by a previous system resumes it instead (a
    future of `Restored`)."""
    origin = f"supervisor {path}"
    child_path = f"{path}/{spec.name}"
    resumable = deps.resumable(child_path) if first and spec.resume else None
    if resumable is not None:
        if deps.prepare_restore is not None:
            deps.prepare_restore(resumable)  # its replay script parses here
        restore = Restore(resumable, origin, link=link, devices=spec.devices)
        return deps.kernel.ask(restore, block=False)
    agent = deps.resolve_agent(spec, path)
    if deps.prepare_spawn is not None:
        deps.prepare_spawn(agent)
    request = SpawnRequest(
        template=agent,
        intent=spec.intent,
        devices=spec.devices,
        max_steps=spec.max_steps,
        origin=origin,
        link=link,
        supervisor_child=child_path,
    )
    return deps.kernel.ask(request, block=False)


def start_answers(
    pending: list[tuple[str, Any]],
) -> Iterator[tuple[str, int | Restored | Exception]]:
    """Each pipelined start's answer, in the order sent: ``(name, future or the error that
    kept it from being sent)`` becomes ``(name, PID, `Restored` or why it failed)``."""
    for name, answer in pending:
        got: int | Restored | Exception
        if isinstance(answer, Exception):
            got = answer
        else:
            try:
                got = answer.get(timeout=ASK_TIMEOUT)
            except (RnixError, pykka.ActorDeadError, pykka.Timeout) as exc:
                got = exc
        yield name, got
