"""An agent process's state, and the changes of it that end or suspend the process.

`AgentBase` holds what a process keeps between steps (its context, counters, pending calls,
breaker, outbox), restores it from a checkpoint, ends or suspends the process and tells the
kernel, publishes the live figures that ps, top and inspect read, and queues its events.
`rnix_actors.kernel.agent.AgentProcess` runs the steps on it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from rnix_actors.drivers.base import LLMResponse, Message, ToolCall
from rnix_actors.kernel import links
from rnix_actors.kernel.agent_syscalls import SyscallRunner
from rnix_actors.kernel.base import RnixActor
from rnix_actors.kernel.checkpointing import Resumption
from rnix_actors.kernel.process import ExitCode, ExitStatus, ProcessState
from rnix_actors.kernel.safety import CircuitBreaker
from rnix_actors.kernel.spec import CONTEXT_TAIL, ProcessSpec
from rnix_actors.kernel.tools import tool_specs
from rnix_actors.kernel.treebounds import BUDGET_ORIGIN
from rnix_actors.messages.events import Event, EventBatch
from rnix_actors.messages.guards import Verdict
from rnix_actors.messages.kernel import ProcessExited, ProcessStateChanged
from rnix_actors.messages.links import Exit, ExitKind
from rnix_actors.messages.process import ContinueCalls, RunStep, Terminate
from rnix_actors.redact import redact

OUTBOX_LIMIT = 64


class AgentBase(RnixActor):
    """An agent process's state and its state changes (see the module doc)."""

    def __init__(self, spec: ProcessSpec) -> None:
        super().__init__(spec.tracker, spec.endpoint)
        self.spec = spec
        self.pid = spec.pid
        self.name = spec.template.name
        self.state = ProcessState.RUNNING
        self.step = 0
        self.tokens = 0
        self.result = ""
        self.breaker = CircuitBreaker()
        self.pending: deque[ToolCall] = deque()
        self.refused: ToolCall | None = None  # the call a guard refused when it suspended us
        self.waiting: tuple[str, int] | None = None  # (tool_call_id, child pid)
        self.mailbox: list[str] = []
        self.terminate: Terminate | None = None
        self.messages: list[Message] = [Message("user", spec.intent)]
        self.tools = tool_specs(spec.allowed)
        self.routes: dict[str, str] | None = None  # device-offered tool name -> device path
        self.outbox: list[Event] = []
        self.syscalls = SyscallRunner(spec, self.emit, self.flush_events)
        # An exit signal from a link cancels the call in flight at once (from the sender's
        # thread); the ExitSignal message then ends the process.
        self.endpoint.on_signal = self._exit_signal_arrived
        for other in spec.links:
            links.link(self.endpoint, other)
        self.checkpointer = spec.checkpointer
        if spec.resume is not None:
            self._restore(spec.resume)

    def _restore(self, resumption: Resumption) -> None:
        """Continue from a checkpoint (`rnix_actors.kernel.checkpointing`)."""
        self.step, self.tokens, self.result = resumption.step, resumption.tokens, resumption.result
        self.messages = list(resumption.messages)
        self.mailbox = list(resumption.mailbox)
        breaker = self.breaker
        breaker.total, breaker.run, breaker.last, breaker.tripped_reason = resumption.breaker
        self.pending.extend(resumption.pending)
        figures = self.spec.control.figures
        figures.steps, figures.tokens = self.step, self.tokens
        figures.cost_usd = resumption.cost_usd
        self._snapshot()

    def _checkpoint(self, kind: str, reason: str = "") -> None:
        if self.checkpointer is not None:
            cost = self.spec.control.figures.cost_usd
            self.checkpointer.write(self, kind, reason, cost)

    def crashed(self, where: str, exc: BaseException) -> None:
        self._finish(
            ExitCode.ERROR, f"crash in {where}: {type(exc).__name__}: {exc}", ExitKind.ERROR
        )

    def _exit_signal_arrived(self, exit: Exit) -> None:
        self.spec.control.cancel.cancel(f"linked {exit.source.label} exited: {exit.reason}")

    def exit_signalled(self, exit: Exit) -> None:
        detail = f"linked {exit.source.label} exited: {exit.reason}"
        self._finish(ExitCode.ERROR, detail, ExitKind.LINK, exit.source.label)

    def _pause(self, origin: str) -> None:
        """Suspend for a SIGPAUSE from ``origin`` (the tree's budget says why it paused)."""
        budget = self.spec.tree_budget
        if origin == BUDGET_ORIGIN and budget is not None and budget.reason:
            self._suspend(ExitCode.SUSPENDED, budget.reason, ExitKind.BUDGET, origin)
        else:
            self._suspend(ExitCode.SUSPENDED, f"paused by {origin}", ExitKind.PAUSED, origin)

    def _ready(self) -> bool:
        return self.state is ProcessState.RUNNING and self.waiting is None and not self.pending

    # -- state changes -----------------------------------------------------------------------
    def _check_stop(self) -> bool:
        """End the process if a SIGKILL/SIGINT fired or a SIGTERM is pending."""
        control = self.spec.control
        if control.cancel.cancelled:
            self._interrupted()
            return True
        if self.terminate is not None:
            self._terminated(str(self.terminate.signal), self.terminate.origin)
            return True
        if control.stop_signal:  # the Terminate message is still queued behind this step
            self._terminated(control.stop_signal, control.stop_origin)
            return True
        return False

    def _terminated(self, sig: str, origin: str) -> None:
        detail = f"terminated by {sig} from {origin}"
        self._finish(ExitCode.ERROR, detail, ExitKind.SIGNAL, origin)

    def _interrupted(self) -> None:
        """The cancel token fired inside a call: a SIGINT or SIGTERM (``signal``), a linked
        actor's exit (``link``), or the kernel ending it already (``killed``: its record is
        written, this exit is only the thread catching up)."""
        control = self.spec.control
        detail = f"interrupted ({control.cancel.reason})"
        signalled = self.endpoint.signalled
        if control.stop_signal:
            self._finish(ExitCode.ERROR, detail, ExitKind.SIGNAL, control.stop_origin)
        elif signalled is not None:
            self._finish(ExitCode.ERROR, detail, ExitKind.LINK, signalled.source.label)
        else:
            self._finish(ExitCode.ERROR, detail, ExitKind.KILLED)

    def _breaker_tripped(self) -> None:
        breaker = self.breaker
        assert breaker.tripped_reason is not None
        self._finish(ExitCode.ERROR, breaker.tripped_reason, ExitKind.BREAKER, breaker.last or "")

    def _suspend(self, code: ExitCode, reason: str, kind: ExitKind, origin: str = "") -> None:
        self._snapshot()
        self._checkpoint("suspend", reason)
        self.state = ProcessState.SUSPENDED
        status = ExitStatus(code, redact(reason), self.result, kind, origin)
        self.emit("Suspend", args=status.event_args())
        self._report_state(status)

    def _suspended_by(self, verdict: Verdict) -> None:
        """A guard refused a call (or a model answer) and asked to suspend the process."""
        detail = f"{verdict.reason} (by {verdict.origin})"
        self._suspend(ExitCode.SUSPENDED, detail, ExitKind.PAUSED, verdict.origin)

    def _resume(self, origin: str, retry: bool = False) -> None:
        if self.state is not ProcessState.SUSPENDED:
            return
        refused, self.refused = self.refused, None
        if retry and refused is not None:
            # Take back the refusal the model has not seen yet, and make the call again.
            last = self.messages[-1] if self.messages else None
            if last is not None and last.role == "tool" and last.tool_call_id == refused.id:
                self.messages.pop()
            self.pending.appendleft(refused)
        self.spec.control.pause.clear()
        self.state = ProcessState.RUNNING
        self.emit("Resume", args={"origin": origin})
        self._report_state(None)
        if self._check_stop():
            return
        if self.pending and self.waiting is None:
            self.actor_ref.tell(ContinueCalls())
        elif self._ready():
            self.actor_ref.tell(RunStep(self.step + 1))

    def _report_state(self, exit_status: ExitStatus | None) -> None:
        self.flush_events()
        self.spec.kernel.tell(
            ProcessStateChanged(self.pid, self.state, exit_status, self.tokens, self.step)
        )

    def _finish(self, code: ExitCode, reason: str, kind: ExitKind, origin: str = "") -> None:
        if self.state in (ProcessState.ZOMBIE, ProcessState.DEAD):
            return
        self._snapshot()
        self.state = ProcessState.ZOMBIE
        self.pending.clear()
        result = self.result if code == ExitCode.COMPLETED or self.result else reason
        exit_status = ExitStatus(code, redact(reason), redact(result), kind, origin)
        if self.exit_reason is None:
            # Its links get the reason it ended with; an exit signal keeps the link's reason.
            signalled = self.endpoint.signalled
            self.exit_reason = exit_status.why if signalled is None else signalled.reason
        self.flush_events()
        self.spec.kernel.tell(
            ProcessExited(self.pid, exit_status, self.tokens, self.step, self.name)
        )
        if self.actor_ref.is_alive():
            self.stop()

    # -- live figures (read by ps, top, inspect while the process runs) ----------------------
    def _live_step(self) -> None:
        figures = self.spec.control.figures
        figures.steps = self.step
        figures.step_started_at = time.time()
        figures.activity = "llm"
        self._snapshot()  # bumps the version

    def _live_answer(self, response: LLMResponse) -> None:
        figures = self.spec.control.figures
        figures.tokens = self.tokens
        figures.cost_usd += response.cost_usd
        figures.version += 1

    def _live_activity(self, activity: str) -> None:
        figures = self.spec.control.figures
        figures.activity = activity
        figures.version += 1

    def _snapshot(self) -> None:
        """Publish the context tail and breaker counts for ``inspect`` (immutable values)."""
        figures = self.spec.control.figures
        figures.context = tuple(self.messages[-CONTEXT_TAIL:])
        breaker = self.breaker
        figures.breaker = (breaker.total, breaker.run, breaker.last or "")
        figures.version += 1

    # -- events ------------------------------------------------------------------------------
    def emit(
        self,
        syscall: str,
        device: str = "",
        args: dict[str, Any] | None = None,
        result: Any = None,
        error: str = "",
        duration_ms: float = 0.0,
        tokens: int = 0,
    ) -> None:
        """Queue an event; `flush_events` sends the queue to the bus in one message."""
        self.outbox.append(
            Event(
                ts=time.time(),
                pid=self.pid,
                template=self.name,
                step=self.step,
                syscall=syscall,
                device=device,
                args=args or {},
                result=result,
                error=error,
                duration_ms=duration_ms,
                tokens=tokens,
            )
        )
        if len(self.outbox) >= OUTBOX_LIMIT:
            self.flush_events()

    def flush_events(self) -> None:
        """Send queued events. Called before anything that may block (LLM calls, slow devices,
        asks), before telling the kernel about a state change, and after every message, so
        subscribers see events promptly and in order."""
        if self.outbox:
            self.spec.bus.tell(EventBatch(tuple(self.outbox)))
            self.outbox.clear()
