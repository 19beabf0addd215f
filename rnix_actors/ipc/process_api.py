"""The daemon's process methods (see `rnix_actors.ipc.service`).

- ``spawn {agent, intent, max_steps?, workdir?, provider?, model?, origin?}`` → the new PID
- ``wait {pid, timeout?}`` → ``{process}`` once it exited or is suspended (at most `MAX_WAIT`)
- ``kill {pid, signal?, origin?}`` and the ``pause``/``resume`` signals →
  ``{pid, signal, outcome}``; a signal to a process that already exited is a no-op that says so,
  and resuming a process whose system died restores it from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rnix_actors.ipc.protocol import (
    ApiError,
    Code,
    param_int,
    param_opt_int,
    param_opt_str,
    param_str,
)
from rnix_actors.kernel.process import ProcessState, Signal
from rnix_actors.system import System

KILL_ORIGINS = ("user", "timeout")
"""Who a client may say sent a signal: a person, or a command's own ``--timeout``."""

MAX_WAIT = 600
"""Longest ``wait`` in seconds (a client that needs longer waits again or follows)."""

Params = Mapping[str, Any]


def spawn(system: System, params: Params) -> int:
    """Start the agent ``params`` name on its intent; returns its PID."""
    workdir = param_opt_str(params, "workdir")
    return system.spawn(
        param_str(params, "agent"),
        param_str(params, "intent"),
        max_steps=param_opt_int(params, "max_steps"),
        workdir=None if workdir is None else Path(workdir),
        driver=param_opt_str(params, "provider"),
        model=param_opt_str(params, "model"),
        origin=param_opt_str(params, "origin") or "cli",
    )


def wait(system: System, params: Params) -> dict[str, Any]:
    """The process once it exited or is suspended (TIMEOUT after ``timeout`` seconds)."""
    timeout = param_opt_int(params, "timeout", minimum=0)
    pid = param_int(params, "pid")
    limit = MAX_WAIT if timeout is None else min(timeout, MAX_WAIT)
    return {"process": system.wait(pid, timeout=limit).to_dict()}


def kill(system: System, params: Params) -> dict[str, Any]:
    """Send the named signal (SIGTERM by default) on behalf of one of `KILL_ORIGINS`."""
    name = param_opt_str(params, "signal") or "SIGTERM"
    try:
        sig = Signal.parse(name)
    except ValueError as exc:
        raise ApiError(Code.BAD_PARAMS, str(exc)) from None
    origin = param_opt_str(params, "origin") or "user"
    if origin not in KILL_ORIGINS:
        raise ApiError(Code.BAD_PARAMS, f"param 'origin' must be one of {KILL_ORIGINS}")
    return signal(system, param_int(params, "pid"), sig, origin)


def signal(
    system: System, pid: int, sig: Signal, origin: str = "user", retry: bool = False
) -> dict[str, Any]:
    """Send ``sig`` to ``pid``; ``retry`` (SIGRESUME): run the refused call again."""
    known = system.table.get(pid)
    if known is None:
        known = next((p for p in system.ps(all=True) if p.pid == pid), None)
    if known is not None and known.finished:
        # Idempotent, like the kernel's answer for a process it still lists: a stop of
        # something already stopped is not a failure, but it says what happened.
        outcome = (
            f"noop: PID {pid} already exited ({known.state}, exit {known.exit_code} "
            f"{known.exit_reason})"
        )
        return {"pid": pid, "signal": str(sig), "outcome": outcome}
    if sig is Signal.SIGRESUME and known is not None and known.state is ProcessState.LOST:
        note = system.restore(pid, origin, retry).note  # its system died: the checkpoint
        outcome = "resumed from its checkpoint" + (f"; {note}" if note else "")
        return {"pid": pid, "signal": str(sig), "outcome": outcome}
    if sig is Signal.SIGRESUME:
        outcome = system.resume(pid, origin=origin, retry=retry)
        return {"pid": pid, "signal": str(sig), "outcome": outcome}
    outcome = system.kill(pid, sig, origin=origin)
    return {"pid": pid, "signal": str(sig), "outcome": outcome}
