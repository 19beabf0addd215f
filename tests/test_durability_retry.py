"""A call a guard refused before the system stopped or died: on resume it is retried (once)
or reported, never lost silently and never run twice. Real SQLite files, real threads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_durability import STEPS, TIMEOUT, Work, make_system

from rnix_actors import ProcessState, System
from rnix_actors.cli.shell.commands import Shell
from rnix_actors.ipc.local import LocalApi
from rnix_actors.ipc.service import Service
from rnix_actors.messages.guards import ALLOW, SyscallAttempt, Verdict

REFUSED = 3  # the work call the guard refuses


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path


def refuse_work_3(attempt: SyscallAttempt) -> Verdict:
    """A guard of the kind the immune system or a budget installs: refuse one call and
    suspend the process before it runs anything else."""
    if attempt.device == "/dev/work" and attempt.args.get("n") == REFUSED:
        return Verdict("suspend", "payee not seen before", origin="test-guard")
    return ALLOW


def refused_then_stopped(root: Path) -> int:
    """A process whose call 3 a guard refused (it suspended); then a graceful stop."""
    work = Work()
    system = make_system(root, work)
    try:
        system.add_guard(refuse_work_3)
        pid = system.spawn("worker", "count to five")
        info = system.wait(pid, TIMEOUT)
        assert info.state is ProcessState.SUSPENDED
        assert "payee not seen before (by test-guard)" in info.exit_reason
        assert work.calls == [(pid, 1), (pid, 2)]  # call 3 never ran
    finally:
        system.stop(checkpoint=True)
    return pid


def finish(system: System, pid: int) -> None:
    done = system.wait(pid, TIMEOUT)
    assert done.state is ProcessState.DEAD and done.exit_code == 0
    assert done.result == "all done" and done.steps == STEPS + 1


@pytest.mark.parametrize("retry", [False, True])
def test_a_refused_call_is_retried_once_or_reported_after_a_restart(
    root: Path, retry: bool
) -> None:
    pid = refused_then_stopped(root)
    after = Work()
    system = make_system(root, after)
    try:
        assert system.info(pid).state is ProcessState.SUSPENDED
        outcome = system.resume(pid, retry=retry)
        if retry:
            assert "call_device" in outcome and "runs again" in outcome
        else:
            assert "is not run" in outcome and "--retry" in outcome
        finish(system, pid)
        ran = [n for _, n in after.calls]
        assert ran == ([REFUSED, 4, 5] if retry else [4, 5])
    finally:
        system.stop()


def test_a_retried_call_is_not_run_again_by_a_second_restart(root: Path) -> None:
    """Resumed with --retry, the refusal is taken back in the resume checkpoint: a crash
    before the retried call answered runs it (at-least-once for that step), a later resume
    never brings the refusal back nor runs the call a second time after it answered."""
    pid = refused_then_stopped(root)
    held = Work(hold_at=4)
    system = make_system(root, held)
    try:
        system.resume(pid, retry=True)
        assert held.held.wait(TIMEOUT)  # call 3 ran and answered; call 4 in flight
        system.pause(pid)
        held.release.set()
        assert system.wait(pid, TIMEOUT).state is ProcessState.SUSPENDED
    finally:
        held.release.set()
        system.stop(checkpoint=True)
    last = Work()
    system = make_system(root, last)
    try:
        outcome = system.resume(pid, retry=True)
        assert "runs again" not in outcome  # nothing is refused any more
        finish(system, pid)
        assert [n for _, n in held.calls] == [REFUSED, 4]
        assert [n for _, n in last.calls] == [5]
    finally:
        system.stop()


def test_a_refusal_survives_a_kill_before_the_suspension_was_recorded(root: Path) -> None:
    """A kill -9 after the suspend checkpoint but before the process row said suspended:
    the next start finds the process lost, and its resume still knows the refused call."""
    pid = refused_then_stopped(root)
    conn = sqlite3.connect(root / "state" / "rnix.db")
    try:
        with conn:
            conn.execute("UPDATE processes SET state = 'running' WHERE pid = ?", (pid,))
    finally:
        conn.close()
    after = Work()
    system = make_system(root, after)
    try:
        assert system.recovery.lost == (pid,)
        assert system.ps(all=True)[0].state is ProcessState.LOST
        outcome = system.resume(pid, retry=True)
        assert "runs again" in outcome
        finish(system, pid)
        assert [n for _, n in after.calls] == [REFUSED, 4, 5]
    finally:
        system.stop()


@pytest.mark.parametrize("retry", [False, True])
def test_the_shell_resumes_with_or_without_retry(root: Path, retry: bool) -> None:
    work = Work()
    system = make_system(root, work)
    local = LocalApi(Service(system))
    lines: list[str] = []
    shell = Shell(local, lines.append)
    try:
        refused: list[int] = []

        def refuse_once(attempt: SyscallAttempt) -> Verdict:
            verdict = refuse_work_3(attempt) if not refused else ALLOW
            if verdict.action != "allow":
                refused.append(attempt.pid)
            return verdict

        system.add_guard(refuse_once)  # as the immune system's after a person's resume
        pid = system.spawn("worker", "count to five")
        assert system.wait(pid, TIMEOUT).state is ProcessState.SUSPENDED
        shell.execute(f"resume {pid} --retry" if retry else f"resume {pid}")
        finish(system, pid)
        assert [n for _, n in work.calls] == ([1, 2, REFUSED, 4, 5] if retry else [1, 2, 4, 5])
        assert f"PID {pid}: signal sent (SIGRESUME)" in "\n".join(lines)
    finally:
        shell.close()
        local.close()
        system.stop()
