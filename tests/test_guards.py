"""Guards see every syscall (and every model answer) before it runs, in the agent's thread."""

from __future__ import annotations

import threading

from helpers import Collector, agent, call, respond, scripted

from rnix_actors import LLMResponse, ProcessState, SyscallAttempt, System, Verdict


def test_a_guard_blocks_one_call_with_a_tool_error(system: System) -> None:
    seen: list[SyscallAttempt] = []

    def no_shell(attempt: SyscallAttempt) -> Verdict:
        seen.append(attempt)
        if attempt.device == "/dev/shell":
            return Verdict("block", "shell is off limits", origin="policy")
        return Verdict("allow")

    system.add_guard(no_shell)
    results: list[str] = []

    def brain(request):  # type: ignore[no-untyped-def]
        if request.step == 1:
            return respond(call("shell", command="touch pwned"), call("list_files"))
        results.extend(m.content for m in request.messages if m.role == "tool")
        return "done"

    agent(system, "a", brain)
    info = system.run("a", "x", timeout=10)
    assert info.exit_code == 0
    assert results[0] == "Tool error (shell): blocked by policy: shell is off limits"
    assert not (system.project_dir / "pwned").exists()
    assert [a.syscall for a in seen] == ["ReasonStep", "Exec", "Open", "ReasonStep"]
    assert seen[0].tokens == 10 and seen[0].args == {"tool_calls": 2}


def test_a_suspend_verdict_stops_the_process_before_its_next_call(system: System) -> None:
    def tripwire(attempt: SyscallAttempt) -> Verdict:
        if attempt.syscall == "Exec":
            return Verdict("suspend", "unusual /dev/shell use", origin="immune")
        return Verdict("allow")

    system.add_guard(tripwire)
    events = Collector()
    system.subscribe(events)
    agent(system, "a", scripted([respond(call("shell", command="id"), call("list_files")), "done"]))
    info = system.run("a", "x", timeout=10)
    assert info.state is ProcessState.SUSPENDED
    assert info.exit_reason == "unusual /dev/shell use (by immune)"
    system.sync_events()
    assert not events.of(info.pid, "Open")  # the second call did not run
    system.resume(info.pid)
    final = system.wait(info.pid, 10)
    assert (final.exit_code, final.result) == (0, "done")
    system.sync_events()
    assert len(events.of(info.pid, "Open")) == 1  # it ran after the resume


def test_a_step_verdict_suspends_before_any_tool_call_of_the_step(system: System) -> None:
    armed = threading.Event()

    def token_watch(attempt: SyscallAttempt) -> Verdict:
        if attempt.syscall == "ReasonStep" and attempt.tokens > 1000 and not armed.is_set():
            armed.set()
            return Verdict("suspend", "excessive-token-drain", origin="immune")
        return Verdict("allow")

    system.add_guard(token_watch)
    events = Collector()
    system.subscribe(events)
    agent(
        system,
        "drain",
        scripted(
            [
                respond(call("list_files"), tokens=10),
                respond(call("list_files"), call("list_files"), tokens=5000),
                LLMResponse(content="done"),
            ]
        ),
    )
    info = system.run("drain", "x", timeout=10)
    assert (info.state, info.steps) == (ProcessState.SUSPENDED, 2)
    system.sync_events()
    assert len(events.of(info.pid, "Open")) == 1
    system.resume(info.pid)
    assert system.wait(info.pid, 10).exit_code == 0
    system.sync_events()
    assert len(events.of(info.pid, "Open")) == 3
