"""The agent process actor: one reasoning step per self-sent message.

Each `RunStep` message builds the prompt, calls the driver, and executes the returned tool
calls as syscalls. Signals arrive as messages between steps (and through `ProcessControl` in the
middle of one), so a paused process never starts another step or tool call. A ``spawn`` tool
call does not block the thread: the process waits for the kernel's `ProcessExited` message.
"""

from __future__ import annotations

import time
from typing import Any

from rnix_actors.drivers.base import LLMRequest, LLMResponse, Message, ToolCall
from rnix_actors.errors import DriverError, RnixError
from rnix_actors.kernel.agentbase import OUTBOX_LIMIT, AgentBase
from rnix_actors.kernel.cancel import Cancelled
from rnix_actors.kernel.process import ExitCode, ProcessState, Signal
from rnix_actors.kernel.safety import SPAWN_FINGERPRINT
from rnix_actors.kernel.tools import ToolInputError, device_tools, plan_tool_call
from rnix_actors.kernel.treebounds import BUDGET_ORIGIN
from rnix_actors.messages.kernel import (
    DeliverMail,
    ProcessExited,
    SendSignal,
    SpawnRequest,
)
from rnix_actors.messages.links import ExitKind
from rnix_actors.messages.process import (
    ContinueCalls,
    Pause,
    Reaped,
    Resume,
    RunStep,
    Terminate,
)

__all__ = ["ASK_TIMEOUT", "OUTBOX_LIMIT", "AgentProcess"]

ASK_TIMEOUT = 10.0


class AgentProcess(AgentBase):
    """An agent process: its steps, its tool calls and its meta tools (``spawn``, ``send``,
    ``complete``) on the state of `AgentBase`."""

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

    # -- the reasoning step -------------------------------------------------------------------
    def _step_stopped(self) -> bool:
        """End or suspend the process instead of a step, if a signal or a limit says so."""
        if self._check_stop():
            return True
        control = self.spec.control
        if control.pause.is_set():  # SIGPAUSE arrived while this step message was queued
            self._pause(control.pause_origin)
            return True
        budget = self.spec.tree_budget
        if budget is not None and budget.reason:  # the tree's budget is spent: a hard cap
            self._suspend(ExitCode.SUSPENDED, budget.reason, ExitKind.BUDGET, BUDGET_ORIGIN)
            return True
        limits = self.spec.template.limits
        if self.spec.max_steps and self.step >= self.spec.max_steps:
            self._finish(ExitCode.ERROR, "max steps exceeded", ExitKind.MAX_STEPS)
            return True
        if limits.max_tokens and self.tokens >= limits.max_tokens:
            self._suspend(ExitCode.SUSPENDED, "budget_exhausted", ExitKind.BUDGET)
            return True
        if len(self.messages) >= limits.context_slots:
            self._suspend(ExitCode.CONTEXT_FULL, "context_full", ExitKind.CONTEXT_FULL)
            return True
        return False

    def _run_step(self) -> None:
        if self._step_stopped():
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
