"""The kernel's side of a process's end: state reports, exits, SIGKILL, the kernel's own end.

An exit is recorded (→ zombie), the process reaped (→ dead), and only then do its parent, its
owner and its links hear of it, so that whoever reacts sees a dead process. SIGKILL is
authoritative: `Exits._force_exit` records the exit at once, even if the process's thread is
still in a call.
"""

from __future__ import annotations

import logging
import time

import attrs
import pykka

from rnix_actors.kernel import links
from rnix_actors.kernel.kernelbase import KernelBase, Live, tell
from rnix_actors.kernel.process import (
    ExitCode,
    ExitStatus,
    ProcessInfo,
    ProcessState,
    check_transition,
)
from rnix_actors.messages.kernel import ProcessExited, ProcessStateChanged
from rnix_actors.messages.links import ExitKind, ExitReason
from rnix_actors.messages.process import Reaped

log = logging.getLogger(__name__)


class Exits(KernelBase):
    """Recording what processes report of their state and their ends."""

    def _state_changed(self, msg: ProcessStateChanged) -> None:
        if msg.pid not in self.live or self._state(msg.pid) == msg.state:
            return
        info = self.deps.table.get(msg.pid)
        assert info is not None
        exit_status = msg.exit
        self._save(
            attrs.evolve(
                info,
                state=msg.state,
                exit_code=None if exit_status is None else int(exit_status.code),
                exit_reason="" if exit_status is None else exit_status.reason,
                exit_kind="" if exit_status is None else str(exit_status.kind),
                exit_origin="" if exit_status is None else exit_status.origin,
                tokens_used=msg.tokens_used,
                steps=msg.steps,
                cost_usd=max(info.cost_usd, self.live[msg.pid].control.figures.cost_usd),
            ),
            check=True,
        )

    def _exited(self, pid: int, exit_status: ExitStatus, tokens: int, steps: int) -> None:
        if pid not in self.live:
            return  # stale: already killed and reaped by the kernel
        info = self.deps.table.get(pid)
        assert info is not None
        self._finalize(info, exit_status, tokens, steps)

    def _force_exit(
        self, pid: int, reason: str, origin: str, kind: ExitKind = ExitKind.KILLED
    ) -> None:
        """SIGKILL is authoritative: the process is dead now, even if its thread is still in
        a call. Its links hear of it from here, since its own teardown may come much later."""
        live = self.live.get(pid)
        info = self.deps.table.get(pid)
        if live is None or info is None:
            return
        live.control.cancel.cancel(reason)
        status = ExitStatus(ExitCode.ERROR, reason, reason, kind, origin)
        self._finalize(info, status, info.tokens_used, info.steps)
        links.exit(live.endpoint, status.why)
        tell(live.ref, Reaped())

    def _finalize(
        self, info: ProcessInfo, exit_status: ExitStatus, tokens: int, steps: int
    ) -> None:
        """Record the exit (→ zombie), reap (→ dead), then notify parent and owner."""
        pid = info.pid
        live = self.live.pop(pid)
        self.bounds.exited(pid, live.agent_spawn and not exit_status.ok)
        if live.timer is not None:
            live.timer.cancel()
        ended = self._record_exit(info, live, exit_status, tokens, steps)
        live.driver.release(pid)
        # Reaped before anyone hears of it, so that whoever reacts sees a dead process.
        dead = attrs.evolve(ended, state=ProcessState.DEAD)
        check_transition(ended.state, dead.state, pid)
        self.deps.table.put(dead)
        self._notify_exit(info, live, ProcessExited(pid, exit_status, tokens, steps, info.template))
        self.deps.process_log.tell(dead)
        for child in info.children:
            if child in self.live:
                origin = f"parent PID {pid} exited"
                self._force_exit(child, f"killed by SIGKILL from {origin}", origin)

    def _record_exit(
        self, info: ProcessInfo, live: Live, exit_status: ExitStatus, tokens: int, steps: int
    ) -> ProcessInfo:
        """The exit in the table (a zombie, unless it ends suspended) and on the bus."""
        pid = info.pid
        ended = attrs.evolve(
            info,
            exit_code=int(exit_status.code),
            exit_reason=exit_status.reason,
            exit_kind=str(exit_status.kind),
            exit_origin=exit_status.origin,
            result=exit_status.result,
            tokens_used=tokens,
            steps=steps,
            cost_usd=max(info.cost_usd, live.control.figures.cost_usd),
            ended_at=time.time(),
        )
        if info.state is not ProcessState.SUSPENDED:
            check_transition(info.state, ProcessState.ZOMBIE, pid)
            ended = attrs.evolve(ended, state=ProcessState.ZOMBIE)
            self.deps.table.put(ended)
        self._publish(
            pid,
            "Exit",
            exit_status.event_args(),
            result=exit_status.result,
            tokens=tokens,
            template=info.template,
        )
        return ended

    def _notify_exit(self, info: ProcessInfo, live: Live, notice: ProcessExited) -> None:
        """Tell the spawning parent and the owner that the process exited."""
        parent = self.live.get(info.ppid)
        if parent is not None and live.agent_spawn:
            parent.ref.tell(notice)
        if live.owner is not None:
            try:
                live.owner.tell(notice)
            except pykka.ActorDeadError:
                log.warning("owner of PID %d is gone; exit not delivered", info.pid)

    def _abandon(self, pid: int, reason: str, origin: str) -> None:
        """Stop a live process without recording an exit: the store keeps its state."""
        live = self.live.pop(pid)
        if live.timer is not None:
            live.timer.cancel()
        live.control.cancel.cancel(reason)
        live.driver.release(pid)
        links.exit(live.endpoint, ExitReason(ExitKind.SHUTDOWN, origin, reason))
        tell(live.ref, Reaped())

    def _end_all(self, why: ExitReason) -> None:
        """The kernel is ending: no process may outlive the table's owner. Each live process
        is killed and recorded dead (kind ``killed``, origin ``kernel``, the kernel's reason
        in the detail), so every ``wait`` returns and every supervisor sees a typed exit."""
        if not self.live:
            return
        reason = f"killed by the kernel's end: {why.detail or why.kind}"
        for pid in sorted(self.live, reverse=True):
            if pid not in self.live:  # a child, already ended with its parent
                continue
            try:
                # Killed, not failed: the process's end is not its own doing (a supervisor
                # sees an abnormal exit; the planner's ledger does not count it against it).
                self._force_exit(pid, reason, "kernel", ExitKind.KILLED)
            except Exception:
                log.exception("PID %d could not be ended with the kernel", pid)
                self.live.pop(pid, None)
