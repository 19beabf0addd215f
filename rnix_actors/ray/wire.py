"""What travels between the head and its hosts: plain, picklable values.

The head sends each host one ordered stream of `Item`s (`AgentHost.deliver`), and each host
answers with its own stream (`AgentHost.drain`): events in batches, state changes and exits,
asks (an agent's spawn, send or /proc read, answered by a `Reply`), live figures and anomaly
reports. Nothing here holds a lock, a thread or an actor ref.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from rnix_actors.config import Config
from rnix_actors.kernel.checkpointing import Resumption
from rnix_actors.messages.links import ExitReason
from rnix_actors.templates import AgentTemplate


@attrs.frozen
class HostSetup:
    """How a host builds its device layer and drivers: the head's config and providers,
    the dirs no agent may reach, and the Ray namespace it lives in."""

    config: Config
    protected: tuple[str, ...]
    providers: dict[str, Any]
    label: str


@attrs.frozen
class GuardShip:
    """One guard of a process. ``key`` names it on the host; an immune guard (``immune``)
    is rebuilt there around ``snapshot`` (None: the host has the current one); any other
    guard travels as ``guard`` itself (it must pickle)."""

    key: str
    immune: bool
    snapshot: Any = None
    guard: Any = None


@attrs.frozen
class CheckpointShip:
    """How the host's `Checkpointer` of a process goes on from the head's: its identity
    (written by the head in checkpoint 0 or ``resume``), where its sequence is, and whether
    the driver has a position to record."""

    identity: dict[str, Any]
    seq: int
    written: int
    position: bool


@attrs.frozen
class SpawnShip:
    """A process to start on a host: what `ProcessSpec` holds, minus the head's objects.

    ``driver`` is the driver object when the host does not have it yet (None: use the
    host's own of that name); ``devices`` the host devices it needs and does not have yet."""

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
    driver_name: str
    guards: tuple[GuardShip, ...]
    driver: Any = None
    devices: tuple[tuple[str, Any], ...] = ()
    replay_scripts: tuple[tuple[str, Any], ...] = ()
    resume: Resumption | None = None
    checkpoint: CheckpointShip | None = None


# -- head -> host -------------------------------------------------------------------------------
@attrs.frozen
class Spawn:
    ship: SpawnShip


@attrs.frozen
class Tell:
    """A kernel message for one process (`Pause`, `Terminate`, `Reaped`, mail, a child's
    exit); ``cancel`` is the reason to cancel its call in flight first (SIGKILL, SIGINT)."""

    pid: int
    message: Any
    cancel: str = ""


@attrs.frozen
class LinkExit:
    """A process linked on the head to ``label`` gets its exit signal (e.g. its supervisor
    died): the host delivers it as the local link would have."""

    pid: int
    label: str
    reason: ExitReason


@attrs.frozen
class Reply:
    request: int
    ok: bool
    value: Any


@attrs.frozen
class NewSnapshot:
    key: str
    snapshot: Any


# -- host -> head -------------------------------------------------------------------------------
@attrs.frozen
class Events:
    events: tuple[Any, ...]


@attrs.frozen
class ToKernel:
    """``message`` for the head's kernel; ``records`` are the guards' run records of a
    process that exited (key -> record), so the immune daemon learns remote runs too."""

    message: Any
    records: tuple[tuple[str, Any], ...] = ()


@attrs.frozen
class Ask:
    request: int
    message: Any


@attrs.frozen
class ProcQuery:
    """An agent reads ``/proc/<pid>``: the head's table answers."""

    pid: int


@attrs.frozen
class CheckpointWrite:
    """A process on a host checkpoints: the head's store appends it (`CheckpointStore.append`:
    ``data`` is the encoded document, ``messages`` the context's length after it); the
    process waits until it is durable, as a local one does."""

    pid: int
    seq: int
    step: int
    kind: str
    first: int
    messages: int
    data: str


@attrs.frozen
class Down:
    """``pid``'s actor ended with ``reason`` (its links on the head hear of it)."""

    pid: int
    reason: ExitReason


@attrs.frozen
class Figures:
    """Live figures of processes that changed since the last batch:
    (pid, steps, tokens, cost, step_started_at, activity, context, breaker)."""

    rows: tuple[tuple[Any, ...], ...]


@attrs.frozen
class Anomaly:
    key: str
    report: Any


@attrs.frozen
class Drained:
    incarnation: str
    items: tuple[Any, ...]
    os_pid: int = 0


@attrs.frozen
class HostStatus:
    incarnation: str
    node_id: str
    os_pid: int
    live: int
    rss_kib: int
