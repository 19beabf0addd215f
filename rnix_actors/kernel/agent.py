"""The agent process actor: one reasoning step per self-sent message.

Each `RunStep` message builds the prompt, calls the driver, and executes the returned tool
calls as syscalls. Signals arrive as messages between steps (and through `ProcessControl` in the
middle of one), so a paused process never starts another step or tool call. A ``spawn`` tool
call does not block the thread: the process waits for the kernel's `ProcessExited` message.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from rnix_actors.drivers.base import LLMRequest, LLMResponse, Message, ToolCall
from rnix_actors.errors import DriverError, RnixError
from rnix_actors.kernel import links
from rnix_actors.kernel.agent_syscalls import SyscallRunner
from rnix_actors.kernel.base import RnixActor
from rnix_actors.kernel.cancel import Cancelled
from rnix_actors.kernel.checkpointing import Resumption
from rnix_actors.kernel.process import ExitCode, ExitStatus, ProcessState, Signal
from rnix_actors.kernel.safety import SPAWN_FINGERPRINT, CircuitBreaker
from rnix_actors.kernel.spec import CONTEXT_TAIL, ProcessSpec
from rnix_actors.kernel.tools import ToolInputError, device_tools, plan_tool_call, tool_specs
from rnix_actors.kernel.treebounds import BUDGET_ORIGIN
from rnix_actors.messages.events import Event, EventBatch
from rnix_actors.messages.guards import Verdict
from rnix_actors.messages.kernel import (
    DeliverMail,
    ProcessExited,
    ProcessStateChanged,
    SendSignal,
    SpawnRequest,
)
from rnix_actors.messages.links import Exit, ExitKind
from rnix_actors.messages.process import (
    ContinueCalls,
    Pause,
    Reaped,
    Resume,
    RunStep,
    Terminate,
)
from rnix_actors.redact import redact

ASK_TIMEOUT = 10.0
OUTBOX_LIMIT = 64


class AgentProcess(RnixActor):
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

    # -- lifecycle --------------------------------------------------------------------------
    def _start_actor_loop(self) -> None:
        # Pykka starts a thread per actor and waits for it to run; a pooled thread is ready.
        threads = self.spec.threads
        if threads is None:
            super()._start_actor_loop()
        else:
            threads.run(self._actor_loop)

    def started(self) -> None:
        if self.pending:  # resumed in the middle of a step: its unanswered calls run again
            self._ensure_routes()
            self.actor_ref.tell(ContinueCalls())
        else:
            self.actor_ref.tell(RunStep(self.step + 1))

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

    def handle(self, message: Any) -> Any:
        try:
            return self._handle(message)
        finally:
            self.flush_events()

    def _handle(self, message: Any) -> Any:
        if self.state in (ProcessState.ZOMBIE, ProcessState.DEAD):
            if isinstance(message, Reaped):
                self.stop()
            return None
        match message:
            case RunStep(number=n):
                if n == self.step + 1 and self._ready():
                    self._run_step()
            case ContinueCalls():
                if self._ready() or (self.state is ProcessState.RUNNING and self.pending):
                    self._run_pending()
            case ProcessExited():
                self._child_exited(message)
            case Pause(origin=origin):
                if self.state is ProcessState.RUNNING:
                    self._pause(origin)
            case Resume(origin=origin, retry=retry):
                self._resume(origin, retry)
            case Terminate():
                self.terminate = message
                if self.waiting is not None or self.state is ProcessState.SUSPENDED:
                    self._check_stop()
            case DeliverMail(sender=sender, text=text):
                self.mailbox.append(f"[message from PID {sender}] {text}")
            case Reaped():
                self.state = ProcessState.DEAD
                self.stop()
            case _:
                self.unhandled(message)
        return None

    def _charge_tree(self, response: LLMResponse) -> None:
        """Add this answer to the tree's spend; the first to cross its limit pauses the root
        (and so the whole tree) with the reason kept in the shared budget."""
        budget = self.spec.tree_budget
        if budget is not None and budget.add(response.tokens, response.cost_usd):
            self.spec.kernel.tell(SendSignal(budget.root, Signal.SIGPAUSE, BUDGET_ORIGIN))

    def _pause(self, origin: str) -> None:
        """Suspend for a SIGPAUSE from ``origin`` (the tree's budget says why it paused)."""
        budget = self.spec.tree_budget
        if origin == BUDGET_ORIGIN and budget is not None and budget.reason:
            self._suspend(ExitCode.SUSPENDED, budget.reason, ExitKind.BUDGET, origin)
        else:
            self._suspend(ExitCode.SUSPENDED, f"paused by {origin}", ExitKind.PAUSED, origin)

    def _ready(self) -> bool:
        return self.state is ProcessState.RUNNING and self.waiting is None and not self.pending

    # -- the reasoning step -------------------------------------------------------------------
    def _run_step(self) -> None:
        if self._check_stop():
            return
        control = self.spec.control
        if control.pause.is_set():  # SIGPAUSE arrived while this step message was queued
            self._pause(control.pause_origin)
            return
        budget = self.spec.tree_budget
        if budget is not None and budget.reason:  # the tree's budget is spent: a hard cap
            self._suspend(ExitCode.SUSPENDED, budget.reason, ExitKind.BUDGET, BUDGET_ORIGIN)
            return
        limits = self.spec.template.limits
        if self.spec.max_steps and self.step >= self.spec.max_steps:
            self._finish(ExitCode.ERROR, "max steps exceeded", ExitKind.MAX_STEPS)
            return
        if limits.max_tokens and self.tokens >= limits.max_tokens:
            self._suspend(ExitCode.SUSPENDED, "budget_exhausted", ExitKind.BUDGET)
            return
        if len(self.messages) >= limits.context_slots:
            self._suspend(ExitCode.CONTEXT_FULL, "context_full", ExitKind.CONTEXT_FULL)
            return
        self.step += 1
        self._live_step()
        if self.mailbox:
            self.messages.extend(Message("user", text) for text in self.mailbox)
            self.mailbox.clear()
        started = time.monotonic()
        response = self._call_llm()
        if response is None:
            return
        self.tokens += response.tokens
        self._live_answer(response)
        self._charge_tree(response)
        reported = response.duration_ms
        duration_ms = (time.monotonic() - started) * 1000 if reported is None else reported
        args = {"tool_calls": len(response.tool_calls)}
        self.emit("ReasonStep", args=args, duration_ms=duration_ms, tokens=response.tokens)
        verdict = self.syscalls.check_step(self.step, args, response.tokens, duration_ms)
        if not response.tool_calls and verdict is None:
            self.result = response.content
            self.messages.append(Message("assistant", response.content))
            self._finish(ExitCode.COMPLETED, "completed", ExitKind.COMPLETED)
            return
        self.messages.append(Message("assistant", response.content, response.tool_calls))
        self._snapshot()
        self.pending.extend(response.tool_calls)
        self._checkpoint("step")  # durable before the first of these calls runs
        if verdict is not None:
            self._suspended_by(verdict)
            return
        self._run_pending()

    def _ensure_routes(self) -> None:
        spec = self.spec
        if self.routes is None:  # first step, in this process's thread: may start a server
            offered, self.routes = device_tools(
                spec.devices, spec.allowed, spec.denied, spec.control.cancel
            )
            self.tools += offered

    def _call_llm(self) -> LLMResponse | None:
        spec = self.spec
        self._ensure_routes()
        request = LLMRequest(
            pid=self.pid,
            uuid=spec.uuid,
            template=self.name,
            step=self.step,
            model=spec.model,
            system_prompt=spec.template.instructions,
            messages=tuple(self.messages),
            tools=self.tools,
            intent=spec.intent,
        )
        timeout = spec.template.limits.step_timeout
        token = spec.control.cancel.child(timeout)
        device = f"/dev/llm/{spec.driver.name}"
        self.emit("Write", device, {"messages": len(request.messages), "model": spec.model})
        self.flush_events()
        started = time.monotonic()
        try:
            response = spec.driver.complete(request, token)
            # A driver that ignored the token must not get its late answer accepted.
            token.raise_if_cancelled()
        except Cancelled:
            if token.timed_out and not spec.control.cancel.cancelled:
                detail = f"step_timeout: step {self.step} exceeded {timeout}s"
                self._finish(ExitCode.ERROR, detail, ExitKind.TIMEOUT)
            else:
                self._interrupted()
            return None
        except (DriverError, RnixError) as exc:
            self.emit("Read", device, error=str(exc))
            self._finish(ExitCode.ERROR, f"llm error: {exc}", ExitKind.ERROR)
            return None
        self.emit(
            "Read",
            device,
            {"tool_calls": len(response.tool_calls)},
            result=response.content,
            duration_ms=(time.monotonic() - started) * 1000,
            tokens=response.tokens,
        )
        return response

    def _run_pending(self) -> None:
        """Execute queued tool calls until done, waiting on a child, or stopped."""
        while self.pending and self.waiting is None:
            if self._check_stop():
                return
            if self.spec.control.pause.is_set():
                self._pause(self.spec.control.pause_origin)
                return
            call = self.pending.popleft()
            self._execute(call)
            if self.state is not ProcessState.RUNNING:
                return
            if self.breaker.tripped_reason:
                self._breaker_tripped()
                return
        if self._ready():
            self.actor_ref.tell(RunStep(self.step + 1))

    def _execute(self, call: ToolCall) -> None:
        self._live_activity(f"tool {call.name}")
        target = self.routes.get(call.name) if self.routes else None
        if target is not None:  # a device's own tool (mcp__notes__search) is a device call
            call = ToolCall(call.id, target, call.input)
        try:
            plan = plan_tool_call(call)
        except ToolInputError as exc:
            self._tool_result(call, f"Tool error ({call.name}): {exc}", error=exc.fingerprint)
            return
        if plan.kind == "complete":
            self.result = str(plan.args["result"])
            self.emit("Complete", args={"result": self.result})
            self._finish(ExitCode.COMPLETED, "completed", ExitKind.COMPLETED)
        elif plan.kind == "spawn":
            self._spawn(call, plan.args)
        elif plan.kind == "send":
            self._send(call, plan.args)
        else:
            outcome = self.syscalls.device_call(call, plan, self.step)
            if outcome.cancelled:
                self._interrupted()
                return
            self._tool_result(call, outcome.text, error=outcome.fingerprint)
            if outcome.suspend is not None:
                self.refused = call  # a resume may retry it
                self._suspended_by(outcome.suspend)

    def _tool_result(self, call: ToolCall, text: str, error: str | None = None) -> None:
        self.messages.append(Message("tool", text, tool_call_id=call.id))
        if error is None:
            self.breaker.record_success()
        else:
            self.breaker.record_error(error)

    # -- meta tools --------------------------------------------------------------------------
    def _spawn(self, call: ToolCall, args: Any) -> None:
        devices = args.get("devices")
        if self.spec.prepare_spawn is not None:
            self.spec.prepare_spawn(str(args["agent"]))  # file parses here, not in the kernel
        request = SpawnRequest(
            template=args["agent"],
            intent=args["intent"],
            parent_pid=self.pid,
            agent_spawn=True,
            devices=None if devices is None else tuple(devices),
            workdir=self.spec.workdir,
            origin=f"PID {self.pid}",
        )
        self.flush_events()
        try:
            child = int(self.spec.kernel.ask(request, block=True, timeout=ASK_TIMEOUT))
        except RnixError as exc:
            self.emit("Spawn", args={"agent": args["agent"]}, error=str(exc))
            # The seed's rejection text reaches the model verbatim.
            self._tool_result(call, str(exc), error=SPAWN_FINGERPRINT)
            return
        self.emit("Spawn", args={"agent": args["agent"], "intent": args["intent"]}, result=child)
        self.waiting = (call.id, child)
        self._live_activity(f"child {child}")

    def _child_exited(self, msg: ProcessExited) -> None:
        if self.waiting is None or self.waiting[1] != msg.pid:
            return
        call_id, child = self.waiting
        self.waiting = None
        call = ToolCall(call_id, "spawn")
        if msg.exit.ok:
            self._tool_result(call, msg.exit.result)
        else:
            text = f"child PID {child} exited: {msg.exit.reason} (code {int(msg.exit.code)})"
            self._tool_result(call, text, error=SPAWN_FINGERPRINT)
            if msg.exit.kind is ExitKind.BREAKER and msg.exit.origin == SPAWN_FINGERPRINT:
                # A child whose breaker tripped on spawn failures: retrying from this depth
                # hits the same wall, so unwind now, not after 3^depth more children.
                detail = (
                    f"circuit_breaker: runaway spawn chain (child PID {child} tripped on "
                    f"{SPAWN_FINGERPRINT})"
                )
                self._finish(ExitCode.ERROR, detail, ExitKind.BREAKER, SPAWN_FINGERPRINT)
                return
        if self.breaker.tripped_reason:
            self._breaker_tripped()
        elif self.state is ProcessState.RUNNING:
            self.actor_ref.tell(ContinueCalls())

    def _send(self, call: ToolCall, args: Any) -> None:
        mail = DeliverMail(sender=self.pid, recipient=int(args["pid"]), text=args["message"])
        self.flush_events()
        try:
            self.spec.kernel.ask(mail, block=True, timeout=ASK_TIMEOUT)
        except RnixError as exc:
            self.emit("Send", args={"pid": mail.recipient}, error=str(exc))
            self._tool_result(call, f"Tool error (send): {exc}", error="NOT_FOUND|send")
            return
        self.emit("Send", args={"pid": mail.recipient, "message": mail.text}, result="delivered")
        self._tool_result(call, f"delivered to PID {mail.recipient}")

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
