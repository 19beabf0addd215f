"""The ``/dev/shell`` device: run a shell command in the process's work dir.

The command runs as a real ``/bin/sh -c`` subprocess, in the sandbox of
`rnix_actors.kernel.sandbox` unless the config or the agent's template turns it off (which is
logged). The subprocess starts a session of its own, so its whole process group can be killed;
inside the sandbox a PID namespace also takes down every process that left the group. The call
waits in short slices, which lets a timeout, a cancellation (SIGKILL of the agent, step timeout)
or the cancel token's deadline end it promptly; in every case the group is killed and the
subprocess reaped before the call returns.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.cancel import Cancelled, CancelToken
from rnix_actors.kernel.devices import DeviceCall, Effect
from rnix_actors.kernel.sandbox import Bubblewrap, SandboxPolicy, SandboxUnavailable, bwrap_argv
from rnix_actors.shellconf import DEFAULT_READ, ShellSettings

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 64 * 1024
POLL_SECONDS = 0.05
# After the shell exits, how long to wait for the pipe to close; a process that left the
# group (setsid) could otherwise hold it open until the timeout.
EXIT_GRACE_SECONDS = 1.0

# Only these variables reach agent commands by default: API keys and tokens in the host
# environment must never be readable by an agent.
_ENV_KEEP = frozenset({"PATH", "HOME", "LANG", "TERM", "TMPDIR", "USER", "SHELL"})


def filtered_environment(source: Mapping[str, str]) -> dict[str, str]:
    """Return the subset of ``source`` that is safe to hand to agent commands."""
    return {k: v for k, v in source.items() if k in _ENV_KEEP or k.startswith("LC_")}


class _Output:
    """Keeps the first `MAX_OUTPUT_BYTES` of the output and counts the rest.

    The pipe is drained to the end so a chatty command never blocks on a full pipe, but memory
    stays bounded even for ``yes``.
    """

    def __init__(self) -> None:
        self.head = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = MAX_OUTPUT_BYTES - len(self.head)
        if room > 0:
            self.head += chunk[:room]

    def text(self) -> str:
        text = bytes(self.head).decode("utf-8", errors="replace")
        if self.total > len(self.head):
            text += f"\n[output truncated: {self.total} bytes total]"
        return text


class ShellDevice:
    """Runs ``exec`` calls: args ``command`` (str) and optional ``timeout`` (seconds).

    Returns stdout and stderr combined; a non-zero exit status is appended as
    ``exit_code: N`` and is not an error. Raises `DeviceError` TIMEOUT when the command
    outlives its timeout, `Cancelled` when ``call.cancel`` fires (or its deadline passes),
    INVALID for bad arguments, NOT_FOUND when the work dir is missing and INTERNAL (saying how
    to install bubblewrap or turn the sandbox off) when the sandbox cannot start. Background
    processes started by the command are killed when it ends. Thread-safe: each call owns its
    subprocess.

    ``settings`` are the config's shell settings (sandbox on, no network, `DEFAULT_READ` when
    not given); a call's ``shell`` (its template's settings) is merged over them. ``hidden``
    are the state and config dirs that no command may see.
    """

    effect = Effect.EXTERNAL  # a command can do anything its sandbox lets it

    def __init__(
        self,
        default_timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        *,
        settings: ShellSettings | None = None,
        hidden: Iterable[Path] = (),
        sandbox: Bubblewrap | None = None,
    ) -> None:
        if not default_timeout > 0 or not math.isfinite(default_timeout):
            raise ValueError(f"default_timeout must be a positive number (got {default_timeout})")
        self.default_timeout = float(default_timeout)
        self._env = dict(env) if env is not None else None
        given = settings or ShellSettings()
        self.settings = ShellSettings(
            sandbox=given.sandbox is not False,
            network=bool(given.network),
            read=DEFAULT_READ if given.read is None else given.read,
        )
        self.hidden = tuple(Path(os.path.realpath(h)) for h in hidden)
        self.sandbox = sandbox or Bubblewrap()
        self._warned: set[ShellSettings] = set()
        # The settings already warned about, from the agents' threads that run commands at once.
        self._warn_lock = threading.Lock()

    def handle(self, call: DeviceCall) -> str:
        if call.op != "exec":
            raise DeviceError(
                ErrorCode.INVALID, call.device, f"unknown op {call.op!r}; use op 'exec'"
            )
        command = call.args.get("command")
        if not isinstance(command, str) or not command.strip():
            raise DeviceError(
                ErrorCode.INVALID,
                call.device,
                "exec needs arg 'command' as a non-empty string, e.g. 'ls -la'",
            )
        timeout = self._timeout(call)
        call.cancel.raise_if_cancelled()
        return self._run(call, command, timeout)

    def _timeout(self, call: DeviceCall) -> float:
        value = call.args.get("timeout")
        if value is None:
            return self.default_timeout
        cap = 10 * self.default_timeout
        # bool is an int subclass; "timeout": true is a mistake, not one second.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise DeviceError(
                ErrorCode.INVALID,
                call.device,
                f"arg 'timeout' must be a number of seconds > 0 (at most {cap:g}); got {value!r}",
            )
        return min(float(value), cap)

    def _environment(self, pid: int) -> dict[str, str]:
        base = self._env if self._env is not None else filtered_environment(os.environ)
        env = dict(base)
        env["RNIX_PID"] = str(pid)
        return env

    def argv(self, call: DeviceCall, command: str) -> list[str]:
        """The command line that runs ``command`` for ``call`` (sandboxed unless turned off)."""
        settings = self.settings.merged(call.shell)
        shell = ["/bin/sh", "-c", command]
        if settings.sandbox is False:
            self._warn_unsandboxed(settings)
            return shell
        try:
            binary = self.sandbox.ensure()
        except SandboxUnavailable as exc:
            raise DeviceError(ErrorCode.INTERNAL, call.device, str(exc)) from None
        workdir = Path(os.path.realpath(call.workdir))
        if not workdir.is_dir():
            raise DeviceError(
                ErrorCode.NOT_FOUND, call.device, f"the work dir {call.workdir} does not exist"
            )
        policy = SandboxPolicy(settings.read or (), self.hidden, bool(settings.network))
        return bwrap_argv(binary, workdir, policy, shell)

    def _warn_unsandboxed(self, settings: ShellSettings) -> None:
        with self._warn_lock:
            if settings in self._warned:
                return
            self._warned.add(settings)
        log.warning(
            "/dev/shell runs commands WITHOUT a sandbox (shell.sandbox: off): they see the "
            "host's files, processes and network as this user"
        )

    def _run(self, call: DeviceCall, command: str, timeout: float) -> str:
        argv = self.argv(call, command)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=call.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self._environment(call.pid),
                start_new_session=True,
                bufsize=0,
            )
        except FileNotFoundError:
            raise DeviceError(
                ErrorCode.NOT_FOUND, call.device, f"the work dir {call.workdir} does not exist"
            ) from None
        except OSError as exc:
            raise DeviceError(
                ErrorCode.INTERNAL, call.device, f"cannot start {argv[0]}: {exc.strerror}"
            ) from None
        output = _Output()
        try:
            _pump(proc, output, time.monotonic() + timeout, call.cancel, call.device, timeout)
        finally:
            # Kill whatever is left of the group (the shell on timeout or cancel, background
            # jobs on a normal exit) and reap the shell so no zombie stays behind.
            _kill_group(proc.pid)
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
        text = output.text()
        if proc.returncode != 0:
            text += f"\nexit_code: {proc.returncode}"
        return text


def _pump(
    proc: subprocess.Popen[bytes],
    output: _Output,
    deadline: float,
    cancel: CancelToken,
    device: str,
    timeout: float,
) -> None:
    """Copy the pipe into ``output`` until EOF, honouring the timeout and the cancel token."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        exited_at: float | None = None
        while True:
            if cancel.cancelled:
                _kill_group(proc.pid)
                raise Cancelled(cancel.reason)
            now = time.monotonic()
            if now >= deadline:
                _kill_group(proc.pid)
                raise DeviceError(
                    ErrorCode.TIMEOUT, device, f"command timed out after {timeout:g}s"
                )
            wait = min(POLL_SECONDS, deadline - now)
            left = cancel.remaining()
            if left is not None:
                wait = min(wait, left)
            if selector.select(max(wait, 0.0)):
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                output.add(chunk)
            elif exited_at is not None:
                if now - exited_at >= EXIT_GRACE_SECONDS:
                    return
            elif proc.poll() is not None:
                # The shell exited but a background job still holds the pipe open: kill the
                # group so the pipe reaches EOF instead of waiting for the timeout.
                exited_at = now
                _kill_group(proc.pid)


def _kill_group(pgid: int) -> None:
    # The group id stays reserved while any member lives, so this cannot hit a recycled pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
