"""Messages of the kernel protocol: spawning, signals, exits, inter-process mail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pykka

from rnix_actors.messages.guards import Guard
from rnix_actors.messages.lifecycle import ExitStatus, ProcessState, Signal
from rnix_actors.templates import AgentTemplate


@attrs.frozen
class SpawnRequest:
    """Ask the kernel to start a process (answered with the new PID or a `SpawnError`).

    ``parent_pid`` with ``agent_spawn=True`` is the spawn tool: depth grows by one and the
    devices narrow to the parent's. Every other path (API, CLI, supervisor, compose) starts at
    depth 0 with at most the template's devices. ``owner`` (an actor ref) is told
    `ProcessExited` when the process ends, in addition to the parent. ``link`` (an `Endpoint`)
    is linked to the new process before it runs (a supervisor's: it gets the `Exit` straight
    from the process's thread).
    """

    template: AgentTemplate | str
    intent: str
    parent_pid: int = 0
    agent_spawn: bool = False
    devices: tuple[str, ...] | None = None
    workdir: Path | None = None
    max_steps: int | None = None
    model: str | None = None
    driver: str | None = None
    owner: pykka.ActorRef[Any] | None = None
    origin: str = "api"
    link: Any = None  # rnix_actors.kernel.links.Endpoint
    supervisor_child: str = ""  # the child's path in its supervision tree (/review/analyst)


@attrs.frozen
class SendSignal:
    """Deliver a signal; answered with the action taken (e.g. ``killed``, ``suspended: 3``).

    ``grace``: seconds a SIGTERM gives before the kernel's SIGKILL (None: the kernel's
    ``sigterm_grace``; a supervisor passes its child's ``shutdown``)."""

    pid: int
    signal: Signal
    origin: str = "user"
    retry: bool = False  # SIGRESUME: the process retries the call a guard refused
    grace: float | None = None


@attrs.frozen
class SendSignals:
    """One signal to several processes in the given order (one round trip, e.g. for a
    supervisor stopping its children); unknown or already exited PIDs are skipped, and one
    process's failure never stops the rest of the batch. Answered with the actions."""

    pids: tuple[int, ...]
    signal: Signal
    origin: str = "user"
    grace: float | None = None


@attrs.frozen
class ProcessLost:
    """From a backend: the host or node ``pid`` ran on is gone. The kernel ends the process
    with exit kind ``node_lost`` (its links hear of it; supervisors restart it elsewhere)."""

    pid: int
    reason: str
    origin: str = "ray"


@attrs.frozen
class ProcessStateChanged:
    """From an agent process: it changed state itself (running ⇄ suspended)."""

    pid: int
    state: ProcessState
    exit: ExitStatus | None
    tokens_used: int
    steps: int


@attrs.frozen
class ProcessExited:
    """From an agent process to the kernel, and from the kernel to owners and parents."""

    pid: int
    exit: ExitStatus
    tokens_used: int
    steps: int
    template: str = ""


@attrs.frozen
class DeliverMail:
    """A message from one process to another (the ``send`` tool)."""

    sender: int
    recipient: int
    text: str


@attrs.frozen
class GraceExpired:
    """SIGTERM grace period ran out: the kernel escalates to SIGKILL if the process lives on."""

    pid: int
    origin: str


@attrs.frozen
class QueryTable:
    """Ask the kernel for a consistent snapshot of the process table."""


@attrs.frozen
class Shutdown:
    """Kill every live process and stop (answered when done). ``keep``: record nothing for
    the processes still live, so that the store keeps them suspended (a graceful stop) or
    running (found lost, with their checkpoints, by the next start)."""

    origin: str = "system"
    keep: bool = False


@attrs.frozen
class AddGuard:
    guard: Guard


@attrs.frozen
class RemoveGuard:
    """Processes spawned from now on are not shown to ``guard`` (running ones keep it)."""

    guard: Guard
