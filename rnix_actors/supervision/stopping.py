"""How a supervisor stops its children: in the order given (callers pass reverse start order),
agents and nested supervisors alike, each with its own ``shutdown`` time.

A run of consecutive agent children is sent SIGTERM in order, then each gets its ``shutdown``
from that moment before SIGKILL: their grace periods overlap instead of adding up (OTP waits
for each child in turn; agents finishing a step would make that slow). A nested supervisor
between two runs is stopped, and waited for, before the run that started before it is
touched, so that the order holds across kinds. A nested supervisor is waited for through its
link (its endpoint ends only after its own children are dead), for up to its ``shutdown``
(`INFINITY` by default, as in OTP): no child of it can still run when its parent restarts it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from typing import Any

import attrs
import pykka

from rnix_actors.errors import RnixError
from rnix_actors.kernel import links
from rnix_actors.kernel.kernel import Kernel
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.process import ProcessInfo, ProcessState, Signal
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.messages.kernel import SendSignal, SendSignals
from rnix_actors.messages.links import ExitKind, ExitReason
from rnix_actors.messages.supervision import StopSupervisor

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0
KILL_WAIT = 5.0
BACKSTOP = 1.0


@attrs.frozen
class AgentChild:
    name: str
    pid: int
    shutdown: float


@attrs.frozen
class SupervisorChild:
    name: str
    ref: pykka.ActorRef[Any]  # a Supervisor's (its class here would be an import cycle)
    endpoint: Endpoint
    shutdown: float


Target = AgentChild | SupervisorChild


class Stopper:
    def __init__(self, kernel: pykka.ActorRef[Kernel], table: ProcessTable, path: str) -> None:
        self.kernel = kernel
        self.table = table
        self.path = path
        self.origin = f"supervisor {path}"
        self.keep = False  # a graceful system stop: nested supervisors keep resume children

    def stop(self, targets: list[Target], kill: bool) -> dict[str, Any]:
        """Stop ``targets`` in order; returns the final views of the nested supervisors."""
        finals: dict[str, Any] = {}
        run: list[AgentChild] = []
        for target in targets:
            if isinstance(target, SupervisorChild):
                self._agents(run, kill)
                run = []
                finals[target.name] = self._supervisor(target, kill)
            else:
                run.append(target)
        self._agents(run, kill)
        return finals

    def _agents(self, run: list[AgentChild], kill: bool) -> None:
        if not run:
            return
        started = time.monotonic()
        brutal = [c.pid for c in run if kill or c.shutdown <= 0]  # OTP's brutal_kill
        if brutal:
            self._signal_many(tuple(brutal), Signal.SIGKILL, None)
        graceful = [c for c in run if not kill and c.shutdown > 0]
        # One SIGTERM batch per run of equal shutdown times, in order. This supervisor sends
        # the SIGKILL when a child's shutdown is over; the kernel's own SIGKILL is only a
        # backstop in case the supervisor is gone by then, so it comes BACKSTOP later (and
        # never after the kernel-wide sigterm_grace instead of the child's shutdown).
        for shutdown, group in itertools.groupby(graceful, key=lambda c: c.shutdown):
            pids = tuple(c.pid for c in group)
            self._signal_many(pids, Signal.SIGTERM, shutdown + BACKSTOP)
        for child in run:
            grace = 0.0 if kill or child.shutdown <= 0 else child.shutdown
            left = None if math.isinf(grace) else max(0.0, started + grace - time.monotonic())
            if self.table.wait_for(child.pid, _dead, left) is not None:
                continue
            self._signal(child.pid, Signal.SIGKILL)
            if self.table.wait_for(child.pid, _dead, KILL_WAIT) is None:
                log.warning("%s: PID %d did not die after SIGKILL; abandoned", self.path, child.pid)

    def _supervisor(self, child: SupervisorChild, kill: bool) -> Any:
        with contextlib.suppress(pykka.ActorDeadError):  # already ending: its link tells
            child.ref.tell(StopSupervisor(kill, self.origin, keep=self.keep))
        timeout = ASK_TIMEOUT if kill else (None if math.isinf(child.shutdown) else child.shutdown)
        if not child.endpoint.wait(timeout):
            # It did not stop in time: end it through its links, which take its agents down
            # (they do not trap exits) and tell its own child supervisors to stop.
            log.warning(
                "%s: child supervisor %s did not stop within %ss; killed",
                self.path,
                child.name,
                timeout,
            )
            detail = f"did not stop within its shutdown time ({timeout}s)"
            links.exit(child.endpoint, ExitReason(ExitKind.KILLED, self.origin, detail))
        return child.endpoint.result

    def _signal_many(self, pids: tuple[int, ...], sig: Signal, grace: float | None) -> None:
        request = SendSignals(pids, sig, self.origin, grace)
        try:
            self.kernel.ask(request, block=True, timeout=ASK_TIMEOUT)
        except (RnixError, pykka.ActorDeadError, pykka.Timeout) as exc:
            log.warning("%s: %s to PIDs %s failed: %s", self.path, sig, pids, exc)

    def _signal(self, pid: int, sig: Signal) -> None:
        try:
            self.kernel.ask(SendSignal(pid, sig, self.origin), block=True, timeout=ASK_TIMEOUT)
        except (RnixError, pykka.ActorDeadError, pykka.Timeout) as exc:
            log.warning("%s: %s to PID %d failed: %s", self.path, sig, pid, exc)


def _dead(info: ProcessInfo) -> bool:
    return info.state is ProcessState.DEAD
