"""Tests of the /dev/shell device with real subprocesses."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import eventually, host_pids, marker

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.cancel import Cancelled, CancelToken
from rnix_actors.kernel.devices import DeviceCall
from rnix_actors.kernel.shell import MAX_OUTPUT_BYTES, ShellDevice, filtered_environment
from rnix_actors.shellconf import ShellSettings


def make_call(
    workdir: Path, cancel: CancelToken | None = None, op: str = "exec", **args: Any
) -> DeviceCall:
    return DeviceCall(
        pid=42,
        device="/dev/shell",
        subpath="",
        op=op,
        args=args,
        workdir=workdir,
        cancel=cancel if cancel is not None else CancelToken(),
    )


def run(workdir: Path, command: str, device: ShellDevice | None = None, **args: Any) -> str:
    return (device or ShellDevice()).handle(make_call(workdir, command=command, **args))


def read_fifo(path: Path) -> str:
    """Block until the command writes its line into the FIFO; a real synchronisation point."""
    with open(path) as fifo:
        return fifo.read().strip()


# -- results ------------------------------------------------------------------------------------


def test_output_combines_stdout_and_stderr(tmp_path: Path) -> None:
    assert run(tmp_path, "echo out; echo err >&2") == "out\nerr\n"


def test_non_zero_exit_appends_exit_code_and_is_not_an_error(tmp_path: Path) -> None:
    assert run(tmp_path, "echo partial; exit 3") == "partial\n\nexit_code: 3"
    assert run(tmp_path, "false") == "\nexit_code: 1"


def test_runs_in_the_work_dir_with_rnix_pid(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("")
    out = run(tmp_path, 'pwd; ls; echo "pid=$RNIX_PID"')
    assert out.splitlines() == [os.path.realpath(tmp_path), "marker.txt", "pid=42"]


def test_stdin_is_empty(tmp_path: Path) -> None:
    assert run(tmp_path, "cat; echo done") == "done\n"


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    assert run(tmp_path, r"printf 'a\377b'") == "a\ufffdb"


def test_large_output_is_truncated_with_a_marker(tmp_path: Path) -> None:
    total = 5 * 1024 * 1024
    out = run(tmp_path, f"head -c {total} /dev/zero | tr '\\0' a")
    body, marker = out.rsplit("\n", 1)
    assert body == "a" * MAX_OUTPUT_BYTES
    assert marker == f"[output truncated: {total} bytes total]"


# -- environment --------------------------------------------------------------------------------


def test_host_secrets_do_not_reach_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_API_KEY", "sk-very-secret")
    monkeypatch.setenv("LC_ALL", "C")
    out = run(tmp_path, "env")
    names = {line.split("=", 1)[0] for line in out.splitlines()}
    assert "SECRET_API_KEY" not in names
    assert "sk-very-secret" not in out
    assert {"PATH", "LC_ALL", "RNIX_PID"} <= names


def test_filtered_environment_keeps_only_safe_names() -> None:
    source = {"PATH": "/bin", "LC_CTYPE": "C", "AWS_SECRET_ACCESS_KEY": "x", "HOME": "/h"}
    assert filtered_environment(source) == {"PATH": "/bin", "LC_CTYPE": "C", "HOME": "/h"}


def test_explicit_env_replaces_the_host_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_API_KEY", "sk-very-secret")
    device = ShellDevice(env={"FOO": "bar", "PATH": "/usr/bin:/bin"})
    out = run(tmp_path, 'echo "$FOO $RNIX_PID [$SECRET_API_KEY]"', device)
    assert out == "bar 42 []\n"


# -- timeouts, cancellation, cleanup ------------------------------------------------------------
# Each test runs with the sandbox (PIDs inside are those of its own namespace) and without it, so
# processes are found on the host by a unique marker in their command line.


@pytest.fixture(params=["sandboxed", "unsandboxed"])
def shell(request: pytest.FixtureRequest) -> ShellDevice:
    off = request.param == "unsandboxed"
    return ShellDevice(settings=ShellSettings(sandbox=False) if off else None)


def test_timeout_kills_every_process_promptly(tmp_path: Path, shell: ShellDevice) -> None:
    mark = marker()
    command = f"sleep {mark} & setsid sleep {mark} & wait"
    with pytest.raises(DeviceError) as info:
        run(tmp_path, command, shell, timeout=1)
    # The call ended on its own timeout (a sleep of `mark` seconds did not hold it), and the
    # processes it started are gone: the outcome, not a duration.
    assert info.value.code == ErrorCode.TIMEOUT
    assert info.value.message == "command timed out after 1s"
    if shell.settings.sandbox:  # without the sandbox the setsid sleep escapes the group kill
        assert eventually(lambda: not host_pids(mark))
    else:
        assert eventually(lambda: len(host_pids(mark)) <= 1)
        for pid in host_pids(mark):
            os.kill(pid, signal.SIGKILL)


def test_timeout_is_capped_at_ten_times_the_default(tmp_path: Path) -> None:
    device = ShellDevice(default_timeout=0.1)
    with pytest.raises(DeviceError) as info:
        run(tmp_path, "sleep 30", device, timeout=1000)
    assert info.value.code == ErrorCode.TIMEOUT
    assert info.value.message == "command timed out after 1s"  # capped: not 1000s


def test_cancellation_from_another_thread_kills_the_command(
    tmp_path: Path, shell: ShellDevice
) -> None:
    fifo = tmp_path / "ready.fifo"
    os.mkfifo(fifo)
    token = CancelToken()
    mark = marker()
    command = f"sleep {mark} & echo started > ready.fifo; wait"
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(shell.handle, make_call(tmp_path, token, command=command))
        assert read_fifo(fifo) == "started"
        token.cancel("killed")
        with pytest.raises(Cancelled, match="killed"):
            future.result(timeout=5)
    assert eventually(lambda: not host_pids(mark))


def test_cancel_token_deadline_bounds_the_wait(tmp_path: Path) -> None:
    token = CancelToken(deadline=time.monotonic() + 0.3)
    with pytest.raises(Cancelled, match="timeout"):  # the token's deadline, not sleep's end
        ShellDevice().handle(make_call(tmp_path, token, command=f"sleep {marker()}"))


def test_already_cancelled_token_runs_nothing(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        ShellDevice().handle(make_call(tmp_path, token, command="touch ran"))
    assert not (tmp_path / "ran").exists()


def test_background_jobs_do_not_hold_the_call_and_are_killed(
    tmp_path: Path, shell: ShellDevice
) -> None:
    mark = marker()
    out = run(tmp_path, f"sleep {mark} & echo started", shell)  # returns before the sleep ends
    assert out == "started\n"
    assert eventually(lambda: not host_pids(mark))


# -- argument errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("run", {"command": "true"}),
        ("exec", {}),
        ("exec", {"command": ""}),
        ("exec", {"command": ["ls"]}),
        ("exec", {"command": "true", "timeout": 0}),
        ("exec", {"command": "true", "timeout": -1}),
        ("exec", {"command": "true", "timeout": "5"}),
        ("exec", {"command": "true", "timeout": True}),
        ("exec", {"command": "true", "timeout": float("nan")}),
    ],
)
def test_bad_arguments_are_invalid(tmp_path: Path, op: str, args: dict[str, Any]) -> None:
    with pytest.raises(DeviceError) as info:
        ShellDevice().handle(make_call(tmp_path, op=op, **args))
    assert info.value.code == ErrorCode.INVALID
    assert info.value.path == "/dev/shell"


def test_missing_work_dir_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(DeviceError) as info:
        run(tmp_path / "missing", "true")
    assert info.value.code == ErrorCode.NOT_FOUND


def test_default_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="default_timeout"):
        ShellDevice(default_timeout=0)
