"""Executing one device syscall for an agent process: permission, guards, device, event."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from rnix_actors.drivers.base import ToolCall
from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.cancel import Cancelled
from rnix_actors.kernel.devices import DeviceCall, Effect, device_effect, permission_error
from rnix_actors.kernel.spec import ProcessSpec
from rnix_actors.kernel.tools import ToolPlan
from rnix_actors.messages.guards import SyscallAttempt, Verdict

RESULT_PREVIEW = 500


@attrs.frozen
class Outcome:
    """What a device call produced for the agent: the tool-result text, and for errors the
    circuit-breaker fingerprint. ``suspend`` is the verdict of a guard that asked to suspend."""

    text: str
    fingerprint: str | None = None
    cancelled: bool = False
    suspend: Verdict | None = None


Emit = Callable[..., None]


class SyscallRunner:
    def __init__(self, spec: ProcessSpec, emit: Emit, flush: Callable[[], None]) -> None:
        self.spec = spec
        self.emit = emit
        self.flush = flush
        # The whitelist of a process never changes: decide each path once.
        self._denials: dict[str, str | None] = {}
        self._effects: dict[tuple[str, str], Effect] = {}

    def check_step(
        self, step: int, args: dict[str, Any], tokens: int, duration_ms: float
    ) -> Verdict | None:
        """Show a model answer to the guards; return the verdict of the first that objects
        (any objection to a model answer suspends the process)."""
        spec = self.spec
        device = f"/dev/llm/{spec.driver.name}"
        attempt = SyscallAttempt(
            spec.pid, spec.template.name, step, "ReasonStep", device, args, tokens, duration_ms
        )
        return self._objection(attempt)

    def _objection(self, attempt: SyscallAttempt) -> Verdict | None:
        """The verdict of the first guard that objects to ``attempt`` (its ``Blocked`` event
        emitted), or None when every guard allows it."""
        for guard in self.spec.guards:
            verdict = guard(attempt)
            if verdict.action != "allow":
                blocked = {
                    "syscall": attempt.syscall,
                    "reason": verdict.reason,
                    "origin": verdict.origin,
                }
                self.emit("Blocked", attempt.device, blocked)
                return verdict
        return None

    def device_call(self, call: ToolCall, plan: ToolPlan, step: int) -> Outcome:
        """Run one device call: the whitelist, then the guards, then the device."""
        spec, path, args = self.spec, plan.device, dict(plan.args)
        refused = self._denied(call, plan, args) or self._blocked(call, plan, args, step)
        if refused is not None:
            return refused
        started = time.monotonic()
        try:
            device_path, device, subpath = spec.devices.lookup(path)
            if getattr(device, "blocking", True):
                self.flush()  # a slow call must not hold back the events before it
            token = spec.control.cancel.child(spec.template.limits.step_timeout)
            result = device.handle(
                DeviceCall(
                    spec.pid,
                    device_path,
                    subpath,
                    plan.op,
                    args,
                    spec.workdir,
                    token,
                    spec.template.shell,
                )
            )
        except Cancelled:
            self.emit(plan.syscall, path, args, error="cancelled", duration_ms=_ms(started))
            return Outcome("", cancelled=True)
        except DeviceError as exc:
            self.emit(plan.syscall, path, args, error=str(exc), duration_ms=_ms(started))
            return Outcome(f"Tool error ({call.name}): {exc.message}", f"{exc.code}|{path}")
        except Exception as exc:  # a broken host device must not crash the agent
            message = f"{type(exc).__name__}: {exc}"
            self.emit(plan.syscall, path, args, error=message, duration_ms=_ms(started))
            return Outcome(f"Tool error ({call.name}): {message}", f"{ErrorCode.INTERNAL}|{path}")
        self.emit(plan.syscall, path, args, result=_preview(result), duration_ms=_ms(started))
        return Outcome(result)

    def _denied(self, call: ToolCall, plan: ToolPlan, args: dict[str, Any]) -> Outcome | None:
        """The outcome of a call outside the process's whitelist; None for a granted one."""
        spec, path = self.spec, plan.device
        if path in self._denials:
            denial = self._denials[path]
        else:
            denial = permission_error(path, spec.allowed, spec.denied)
            if len(self._denials) < 1024:
                self._denials[path] = denial
        if denial is None:
            return None
        self.emit(plan.syscall, path, args, error=denial)
        self.emit("Denied", path, {"tool": call.name})
        return Outcome(f"Tool error ({call.name}): {denial}", f"{ErrorCode.PERMISSION}|{path}")

    def _blocked(
        self, call: ToolCall, plan: ToolPlan, args: dict[str, Any], step: int
    ) -> Outcome | None:
        """The outcome of a call the first objecting guard blocked; None when all allow it."""
        spec, path = self.spec, plan.device
        if not spec.guards:
            return None
        attempt = SyscallAttempt(
            spec.pid,
            spec.template.name,
            step,
            plan.syscall,
            path,
            args,
            0,
            0.0,
            plan.op,
            self._effect(path, plan.op),
        )
        verdict = self._objection(attempt)
        if verdict is None:
            return None
        text = f"Tool error ({call.name}): blocked by {verdict.origin}: {verdict.reason}"
        suspend = verdict if verdict.action == "suspend" else None
        return Outcome(text, f"{ErrorCode.PERMISSION}|{path}", suspend=suspend)

    def _effect(self, path: str, op: str) -> Effect:
        """What the device at ``path`` declares ``op`` does (decided once per path and op);
        a path no device covers is ``EXTERNAL`` (the call itself will fail)."""
        found = self._effects.get((path, op))
        if found is None:
            try:
                _, device, subpath = self.spec.devices.lookup(path)
                found = device_effect(device, op, subpath)
            except DeviceError:
                found = Effect.EXTERNAL
            if len(self._effects) < 1024:
                self._effects[(path, op)] = found
        return found


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _preview(text: Any) -> Any:
    if isinstance(text, str) and len(text) > RESULT_PREVIEW:
        return text[:RESULT_PREVIEW] + f"…[{len(text)} chars]"
    return text
