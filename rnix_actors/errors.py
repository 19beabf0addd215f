"""Errors raised by rnix-actors.

Every user-facing error says what went wrong, where (file and field when there is one) and what
to do next. Tool errors seen by agents are not exceptions: they are `DeviceError` values turned
into tool results by the reasoning loop.
"""

from __future__ import annotations

from enum import StrEnum


class RnixError(Exception):
    """Base class of every error raised by rnix-actors."""


class ConfigError(RnixError):
    """Invalid user input: a config file, agent template, replay script or compose file.

    The message names the file, the field (or line) and the fix, e.g.
    ``conf/agents/x.yaml: field 'limits.max_steps': must be an integer >= 0 (got -1)``.
    """

    def __init__(self, source: str, field: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.field = field
        self.problem = problem
        self.fix = fix
        where = f"{source}: field '{field}'" if field else source
        text = f"{where}: {problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)


class SpawnError(RnixError):
    """A spawn was refused: unknown agent, empty device intersection, depth cap, bad options."""


class UnknownAgent(SpawnError):
    """A spawn named an agent template that does not exist."""


class BadWorkdir(SpawnError):
    """A spawn's work dir is missing, is ``/``, or lies outside what agents may use."""


class NoSuchProcess(RnixError):
    """The PID is not known to this system."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"no such process: PID {pid}")


class IllegalTransition(RnixError):
    """A process state change that the state machine forbids."""


class SystemStopped(RnixError):
    """The actor system is not running (never started, already stopped, or stopping)."""


class SystemFailed(SystemStopped):
    """The system stopped itself because a service it cannot run without ended (the kernel,
    or a service that kept crashing past its restart limit).

    ``reason`` is the typed `rnix_actors.messages.links.ExitReason` of that service; the
    message says which service and why. Every process was ended with a typed reason, and
    `System.stop` still cleans up (it never raises).
    """

    def __init__(self, message: str, reason: object = None) -> None:
        self.reason = reason
        super().__init__(message)


class Unresponsive(RnixError, TimeoutError):
    """A system actor (the kernel, the event bus) did not answer in time.

    It is overloaded or stuck behind a long call; the request may still take effect later.
    Also a `TimeoutError`, so ``except TimeoutError`` catches it.
    """


class WouldDeadlock(RnixError):
    """A call that waits for a system actor, made on that actor's own thread: a `subscribe`
    callback (the event bus's thread) calling `System.sync_events`, `System.subscribe` or
    `Subscription.cancel`. It would wait on itself; the message says what to do instead."""


class StillRunning(RnixError, TimeoutError):
    """`System.wait` (or `run`) timed out: the process has not settled yet and goes on.

    Also a `TimeoutError`, so ``except TimeoutError`` catches it.
    """


class ErrorCode(StrEnum):
    """Error codes of syscalls; with the device path they form circuit-breaker fingerprints."""

    NOT_FOUND = "NOT_FOUND"
    PERMISSION = "PERMISSION"
    INVALID = "INVALID"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"
    DRIVER = "DRIVER"
    CANCELLED = "CANCELLED"


class DeviceError(RnixError):
    """A syscall on a device failed; becomes a tool error for the agent.

    ``code`` and ``path`` make the circuit-breaker fingerprint ``CODE|path``.
    """

    def __init__(self, code: ErrorCode, path: str, message: str) -> None:
        self.code = code
        self.path = path
        self.message = message
        super().__init__(f"[{code}] {path}: {message}")

    @property
    def fingerprint(self) -> str:
        return f"{self.code}|{self.path}"


class DriverError(RnixError):
    """The LLM driver could not produce a response (script exhausted, host callable failed...)."""
