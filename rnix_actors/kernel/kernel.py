"""The kernel actor: owns the process table, spawns, routes signals and collects exits.

It is the single writer of the table and the store's process rows (which it sends to the
`ProcessLog`, so that no exit or spawn waits for the disk on its thread). It never ``ask``s an agent
process (agents may ask it), so no call cycle can deadlock. SIGKILL is authoritative: the kernel
records the exit at once and cancels the process's token, even if its thread is still busy.

Its parts: `rnix_actors.kernel.kernelbase` (its state and records), `.kernelstart` (spawns,
resumes, launches) and `.kernelexit` (exits); signals and the messages are routed here.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from typing import Any

import attrs
import pykka

from rnix_actors.errors import NoSuchProcess, RnixError
from rnix_actors.kernel.kernelbase import KernelDeps, tell
from rnix_actors.kernel.kernelexit import Exits
from rnix_actors.kernel.kernelstart import Starting
from rnix_actors.kernel.process import ExitCode, ProcessState, Signal
from rnix_actors.kernel.resumption import Recovered, Restore
from rnix_actors.messages.kernel import (
    AddGuard,
    DeliverMail,
    GraceExpired,
    ProcessExited,
    ProcessLost,
    ProcessStateChanged,
    QueryTable,
    RemoveGuard,
    SendSignal,
    SendSignals,
    Shutdown,
    SpawnRequest,
)
from rnix_actors.messages.links import ExitKind, ExitReason
from rnix_actors.messages.process import Pause, Resume, Terminate

__all__ = ["Kernel", "KernelDeps"]

log = logging.getLogger(__name__)


class Kernel(Starting, Exits):
    """The kernel actor (see the module doc); built from `KernelDeps`."""

    def handle(self, message: Any) -> Any:
        match message:
            case SpawnRequest():
                return self._spawn(message)
            case SendSignal(pid=pid, signal=sig, origin=origin, grace=grace, retry=retry):
                return self._signal(pid, sig, origin, grace, retry)
            case SendSignals(pids=pids, signal=sig, origin=origin, grace=grace):
                return [self._signal_one_of(p, sig, origin, grace) for p in pids]
            case ProcessStateChanged():
                self._state_changed(message)
            case ProcessExited(pid=pid, exit=exit_status):
                self._exited(pid, exit_status, message.tokens_used, message.steps)
            case DeliverMail(recipient=pid):
                return self._deliver(pid, message)
            case ProcessLost(pid=pid, reason=reason, origin=origin):
                if pid in self.live:
                    self._force_exit(pid, reason, origin, ExitKind.NODE_LOST)
            case GraceExpired(pid=pid, origin=origin):
                self._grace_ended(pid, origin)
            case AddGuard(guard=guard):
                self.guards = (*self.guards, guard)
            case RemoveGuard(guard=guard):
                self.guards = tuple(g for g in self.guards if g is not guard)
            case QueryTable():
                return self.deps.table.list()
            case Restore(pid=pid, origin=origin, retry=retry, link=link, devices=devices):
                return self._restore(pid, origin, retry, link, devices)
            case Recovered(infos=infos):
                for info in infos:
                    self.deps.table.put(info)
                    self.dormant.add(info.pid)
            case Shutdown(origin=origin, keep=keep):
                self._shutdown(origin, keep)
            case _:
                self.unhandled(message)
        return None

    def _deliver(self, pid: int, message: DeliverMail) -> str:
        live = self.live.get(pid)
        if live is None:
            raise NoSuchProcess(pid)
        try:
            live.ref.tell(message)
        except pykka.ActorDeadError:  # its exit is queued behind this message
            raise NoSuchProcess(pid) from None
        return "delivered"

    def _shutdown(self, origin: str, keep: bool) -> None:
        for pid in sorted(self.live, reverse=True):
            if keep:
                self._abandon(pid, f"system stop from {origin}", origin)
            else:
                reason = f"killed by SIGKILL from {origin} (system stop)"
                self._force_exit(pid, reason, origin, ExitKind.SHUTDOWN)

    # -- signals -------------------------------------------------------------------------------
    def _signal_one_of(self, pid: int, sig: Signal, origin: str, grace: float | None) -> str:
        """One signal of a batch: a failure is this process's answer, never the batch's."""
        try:
            return self._signal(pid, sig, origin, grace)
        except RnixError as exc:
            return f"failed: {exc}"
        except Exception as exc:
            log.exception("%s to PID %d failed", sig, pid)
            return f"failed: {type(exc).__name__}: {exc}"

    def _signal(
        self, pid: int, sig: Signal, origin: str, grace: float | None = None, retry: bool = False
    ) -> str:
        info = self.deps.table.get(pid)
        if info is None:
            raise NoSuchProcess(pid)
        args: dict[str, Any] = {"signal": str(sig), "origin": origin}
        if grace is not None:
            args["grace"] = grace
        self._publish(pid, "Signal", args)
        if pid in self.dormant:
            return self._dormant_signal(pid, sig, origin, retry)
        if pid not in self.live:
            return f"noop: PID {pid} already exited"
        if sig is Signal.SIGPAUSE:
            affected = [
                p for p in self.deps.table.subtree(pid) if self._state(p) is ProcessState.RUNNING
            ]
            for p in affected:
                self.live[p].control.request_pause(origin)
                tell(self.live[p].ref, Pause(origin))
            return f"pausing {len(affected)} process(es)"
        if sig is Signal.SIGRESUME:
            affected = [p for p in self.deps.table.subtree(pid) if p in self.live]
            for p in affected:
                self.live[p].control.pause.clear()
                tell(self.live[p].ref, Resume(origin, retry and p == pid))
                if self._state(p) is ProcessState.SUSPENDED:
                    # A suspended process is idle, so it resumes as soon as it reads the
                    # message; record it now so that a wait() right after sees it running.
                    self._transition(p, ProcessState.RUNNING)
            return f"resuming {len(affected)} process(es)"
        # Terminating signals reach the whole subtree: a child only exists to serve its parent.
        for p in reversed(list(self.deps.table.subtree(pid))):
            self._terminate(p, sig, origin, grace)
        return f"{sig} delivered"

    def _terminate(self, pid: int, sig: Signal, origin: str, grace: float | None = None) -> None:
        live = self.live.get(pid)
        if live is None:
            return
        if sig is Signal.SIGKILL:
            self._force_exit(pid, f"killed by SIGKILL from {origin}", origin)
        elif self._state(pid) is ProcessState.SUSPENDED:
            self._force_exit(pid, f"{sig} while suspended (from {origin})", origin, ExitKind.SIGNAL)
        else:
            if sig is Signal.SIGINT:
                live.control.cancel.cancel(f"SIGINT from {origin}")
            live.control.request_stop(str(sig), origin)  # seen even behind a queued step
            # An actor that already ended refuses the message; its exit is queued for us.
            tell(live.ref, Terminate(sig, origin))
            seconds = self.deps.sigterm_grace if grace is None else grace
            if live.timer is None and not math.isinf(seconds):
                live.timer = self.deadlines.schedule(
                    seconds, functools.partial(self._grace_expired, pid, origin)
                )

    def _grace_expired(self, pid: int, origin: str) -> None:
        # Runs on the deadlines thread: hand the decision back to the kernel's thread.
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(GraceExpired(pid, origin))

    def _grace_ended(self, pid: int, origin: str) -> None:
        """A SIGTERM's grace period ran out: SIGKILL the process if it still lives."""
        if pid in self.live:
            self._publish(
                pid,
                "Signal",
                {"signal": "SIGKILL", "origin": origin, "escalation": "grace_timeout"},
            )
            self._force_exit(
                pid,
                f"killed by SIGKILL from {origin} (SIGTERM grace period expired)",
                origin,
            )

    def _dormant_signal(self, pid: int, sig: Signal, origin: str, retry: bool = False) -> str:
        """A signal to a suspended process of a previous system (no actor yet)."""
        if sig is Signal.SIGRESUME:
            note = self._restore(pid, origin, retry).note
            return "resuming 1 process(es)" + (f"; {note}" if note else "")
        if sig is Signal.SIGPAUSE:
            return f"noop: PID {pid} is suspended"
        info = self.deps.table.get(pid)
        assert info is not None
        self.dormant.discard(pid)
        reason = f"{sig} while suspended (from {origin})"
        kind = ExitKind.KILLED if sig is Signal.SIGKILL else ExitKind.SIGNAL
        self._save(
            attrs.evolve(
                info, state=ProcessState.DEAD, exit_code=int(ExitCode.ERROR),
                exit_reason=reason, result=reason, ended_at=time.time(),
                exit_kind=str(kind), exit_origin=origin,
            ),
            check=True,
        )  # fmt: skip
        return f"{sig} delivered"

    # -- the kernel's own end ------------------------------------------------------------------
    def crashed(self, where: str, exc: BaseException) -> None:
        log.error("the kernel crashed in %s: %r", where, exc)
        self._end_all(
            ExitReason(
                ExitKind.FAILED, "kernel", f"kernel crashed in {where}: {type(exc).__name__}: {exc}"
            )
        )

    def stopped(self) -> None:
        signalled = self.endpoint.signalled
        reason = self.exit_reason or (
            signalled.reason
            if signalled is not None
            else ExitReason(ExitKind.KILLED, "kernel", "kernel stopped without a system stop")
        )
        self._end_all(reason)
        self.deadlines.close()
