"""Signals on real agent processes: pause/resume subtrees, term, kill, int, escalation."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import attrs
from helpers import Collector, agent, call, eventually, host_pids, marker, respond

from rnix_actors import LLMRequest, LLMResponse, ProcessState, System
from rnix_actors.config import KernelConfig, load_config


def looping(release: threading.Event, answer: str = "done"):  # type: ignore[no-untyped-def]
    """A brain that keeps working (one cheap tool call per step) until ``release`` is set."""

    def brain(request: LLMRequest) -> LLMResponse | str:
        if release.is_set():
            return answer
        release.wait(0.01)  # pacing only, so the loop does not flood the event log
        return respond(call("list_files"))

    return brain


def test_sigpause_suspends_the_running_subtree_and_sigresume_resumes_it(system: System) -> None:
    release = threading.Event()
    agent(system, "worker", looping(release, "child result"), max_steps=100_000)
    results: list[str] = []

    def parent_brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(call("spawn", agent="worker", intent="work"))
        results.append(request.messages[-1].content)
        return "parent done"

    agent(system, "boss", parent_brain)
    events = Collector()
    system.subscribe(events)
    parent = system.spawn("boss", "delegate")
    child_start = events.wait_for(lambda e: e.syscall == "Start" and e.template == "worker")
    child = child_start.pid
    events.wait_for(lambda e: e.pid == child and e.syscall == "ReasonStep")

    assert system.pause(parent) == "pausing 2 process(es)"
    assert system.wait(parent, 10).state is ProcessState.SUSPENDED
    paused_child = system.wait(child, 10)
    assert paused_child.state is ProcessState.SUSPENDED
    assert (paused_child.exit_code, paused_child.exit_reason) == (2, "paused by user")
    assert system.info(parent).children == (child,)

    release.set()
    assert system.resume(parent) == "resuming 2 process(es)"
    final = system.wait(parent, 10)
    assert (final.exit_code, final.result) == (0, "parent done")
    assert results == ["child result"]
    # No step of the child ran between its Suspend and its Resume.
    system.sync_events()
    child_events = [e.syscall for e in events.of(child)]
    suspended_at = child_events.index("Suspend")
    resumed_at = child_events.index("Resume")
    assert "ReasonStep" not in child_events[suspended_at:resumed_at]
    signal = events.of(parent, "Signal")[0]
    assert signal.args == {"signal": "SIGPAUSE", "origin": "user"}


def test_sigkill_works_on_a_suspended_process(system: System) -> None:
    release = threading.Event()
    agent(system, "w", looping(release), max_steps=100_000)
    pid = system.spawn("w", "x")
    system.pause(pid, origin="immune")
    assert system.wait(pid, 10).exit_reason == "paused by immune"
    system.kill(pid, "SIGKILL")
    info = system.wait(pid, 10)
    assert (info.state, info.exit_code) == (ProcessState.DEAD, 1)
    assert info.exit_reason == "killed by SIGKILL from user"


def test_sigterm_on_a_suspended_process_kills_it(system: System) -> None:
    release = threading.Event()
    agent(system, "w", looping(release), max_steps=100_000)
    pid = system.spawn("w", "x")
    system.pause(pid)
    system.wait(pid, 10)
    system.kill(pid, "SIGTERM")
    info = system.wait(pid, 10)
    assert info.state is ProcessState.DEAD
    assert info.exit_reason == "SIGTERM while suspended (from user)"


def test_sigterm_is_cooperative(system: System) -> None:
    release = threading.Event()
    agent(system, "w", looping(release), max_steps=100_000)
    events = Collector()
    system.subscribe(events)
    pid = system.spawn("w", "x")
    events.wait_for(lambda e: e.pid == pid and e.syscall == "ReasonStep")
    system.kill(pid, "SIGTERM", origin="supervisor")
    info = system.wait(pid, 10)
    assert (info.exit_code, info.exit_reason) == (1, "terminated by SIGTERM from supervisor")


def test_sigterm_escalates_to_sigkill_after_the_grace_period(project: Path) -> None:
    config = attrs.evolve(load_config(None), kernel=KernelConfig(sigterm_grace=0.2))
    stuck = threading.Event()
    unblock = threading.Event()

    def deaf(request: LLMRequest) -> str:
        stuck.set()
        unblock.wait(10)  # ignores cancellation, like a badly written host callable
        return "too late"

    with System(project, config=config) as system:
        events = Collector()
        system.subscribe(events)
        agent(system, "deaf", deaf)
        pid = system.spawn("deaf", "x")
        assert stuck.wait(10)
        system.kill(pid, "SIGTERM")
        info = system.wait(pid, 10)
        unblock.set()
        assert info.exit_code == 1
        assert info.exit_reason == ("killed by SIGKILL from user (SIGTERM grace period expired)")
        escalation = events.wait_for(
            lambda e: e.syscall == "Signal" and e.args.get("escalation") == "grace_timeout"
        )
        assert escalation.args["signal"] == "SIGKILL"


def _ready(project: Path) -> Path:
    """A FIFO the agent's shell command writes to once it runs (see `_wait_ready`)."""
    fifo = project / "ready.fifo"
    os.mkfifo(fifo)
    return fifo


def _wait_ready(fifo: Path) -> str:
    """Block until the command has written its line: a real synchronisation point (the
    open blocks until the writer opens; pytest's timeout bounds a command that never runs)."""
    with open(fifo) as reader:
        return reader.read().strip()


def test_sigkill_interrupts_a_long_shell_command(system: System, project: Path) -> None:
    mark = marker()
    fifo = _ready(project)
    command = f"echo up > {fifo.name}; sleep {mark}"
    agent(system, "sleeper", lambda r: respond(call("shell", command=command)))
    pid = system.spawn("sleeper", "x")
    assert _wait_ready(fifo) == "up"
    assert host_pids(mark)
    system.kill(pid, "SIGKILL")
    info = system.wait(pid, 5)
    assert info.exit_reason == "killed by SIGKILL from user"
    system.stop()
    assert eventually(lambda: not host_pids(mark))


def test_sigint_cancels_the_call_in_flight(system: System, project: Path) -> None:
    mark = marker()
    fifo = _ready(project)
    command = f"echo up > {fifo.name}; sleep {mark}"
    agent(system, "sleeper", lambda r: respond(call("shell", command=command)))
    pid = system.spawn("sleeper", "x")
    assert _wait_ready(fifo) == "up"
    assert host_pids(mark)
    system.kill(pid, "SIGINT")
    info = system.wait(pid, 5)
    assert info.exit_code == 1 and info.exit_reason.startswith("interrupted (SIGINT from user")
    system.stop()
    assert eventually(lambda: not host_pids(mark))


def test_signal_to_an_exited_process_is_a_noop(system: System) -> None:
    agent(system, "quick", lambda r: "done")
    info = system.run("quick", "x", timeout=10)
    assert system.kill(info.pid, "SIGKILL") == f"noop: PID {info.pid} already exited"
    assert system.info(info.pid).exit_reason == "completed"


def test_sigterm_to_many_processes_starts_no_thread_per_grace_period(system: System) -> None:
    release = threading.Event()
    agent(system, "w", looping(release), max_steps=100_000)
    pids = [system.spawn("w", f"task {i}") for i in range(10)]
    before = {t.name for t in threading.enumerate()}
    for pid in pids:
        system.kill(pid, "SIGTERM")
    started = {t.name for t in threading.enumerate()} - before
    release.set()
    for pid in pids:
        assert system.wait(pid, 10).exit_reason == "terminated by SIGTERM from user"
    # One thread keeps every grace period. The checkpoint journal's writer may start in this
    # window too (lazily, on the first checkpoint of a step): it is one thread for all.
    assert started - {"rnix-checkpoints"} <= {"KernelDeadlines"}
