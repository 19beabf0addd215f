"""Agent processes end to end on real actors, threads, files and subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Collector, agent, call, respond, scripted

from rnix_actors import (
    AgentTemplate,
    ConfigError,
    DeviceCall,
    LLMRequest,
    LLMResponse,
    NoSuchProcess,
    ProcessState,
    SpawnError,
    System,
)


def test_final_text_completes_and_tokens_add_up(system: System) -> None:
    agent(
        system,
        "a",
        scripted(
            [
                respond(call("read_file", path="README.md"), tokens=50),
                LLMResponse(content="all good", input_tokens=30),
            ]
        ),
    )
    info = system.run("a", "check", timeout=10)
    assert (info.exit_code, info.exit_reason, info.result) == (0, "completed", "all good")
    assert info.state is ProcessState.DEAD
    assert (info.tokens_used, info.steps) == (80, 2)


def test_tool_results_are_fed_back_into_the_context(system: System, project: Path) -> None:
    seen: list[str] = []

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(
                call("read_file", path="src/app.py"),
                call("shell", command="echo from-shell; exit 3"),
            )
        seen.extend(m.content for m in request.messages if m.role == "tool")
        return "done"

    agent(system, "a", brain)
    assert system.run("a", "x", timeout=10).exit_code == 0
    assert seen[0] == "print('hello')\n"
    assert seen[1] == "from-shell\n\nexit_code: 3"


def test_complete_tool_sets_the_result(system: System, project: Path) -> None:
    agent(
        system,
        "a",
        scripted(
            [
                respond(
                    call("write_file", path="out/r.md", content="R"),
                    call("complete", result="wrote it"),
                )
            ]
        ),
    )
    info = system.run("a", "x", timeout=10)
    assert (info.exit_code, info.result) == (0, "wrote it")
    assert (project / "out" / "r.md").read_text() == "R"


def test_denied_device_is_a_tool_error_that_says_spawning_will_not_help(system: System) -> None:
    tool_results: list[str] = []

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(call("shell", command="id"))
        tool_results.append(request.messages[-1].content)
        return "ok"

    agent(system, "reader", brain, devices=("/dev/fs",))
    events = Collector()
    system.subscribe(events)
    pid = system.spawn("reader", "x")
    system.wait(pid, 10)
    assert (
        "permission denied: device /dev/shell not in allowed list ['/dev/fs']" in (tool_results[0])
    )
    assert "cannot gain new permissions by spawning" in tool_results[0]
    events.wait_for(lambda e: e.pid == pid and e.syscall == "Denied")


def test_max_steps_exceeded(system: System) -> None:
    agent(system, "loop", scripted([respond(call("list_files"))]), max_steps=3)
    info = system.run("loop", "x", timeout=10)
    assert (info.exit_code, info.exit_reason, info.steps) == (1, "max steps exceeded", 3)


def test_max_tokens_suspends_with_budget_exhausted(system: System) -> None:
    agent(system, "spender", scripted([respond(call("list_files"), tokens=400)]), max_tokens=1000)
    info = system.run("spender", "x", timeout=10)
    assert info.state is ProcessState.SUSPENDED
    assert (info.exit_code, info.exit_reason) == (2, "budget_exhausted")
    assert info.tokens_used == 1200
    assert system.kill(info.pid, "SIGKILL")
    final = system.wait(info.pid, 10)
    assert final.state is ProcessState.DEAD and final.exit_code == 1


def test_context_full_suspends_with_exit_3(system: System) -> None:
    agent(
        system,
        "chatty",
        scripted([respond(call("list_files"), call("list_files"))]),
        context_slots=6,
    )
    info = system.run("chatty", "x", timeout=10)
    assert (info.state, info.exit_code, info.exit_reason) == (
        ProcessState.SUSPENDED,
        3,
        "context_full",
    )


def test_circuit_breaker_trips_on_repeated_errors(system: System) -> None:
    agent(system, "clumsy", scripted([respond(call("read_file", path="missing.txt"))]))
    info = system.run("clumsy", "x", timeout=10)
    assert info.exit_code == 1
    assert info.exit_reason == (
        "circuit_breaker: 3 consecutive errors with fingerprint NOT_FOUND|/dev/fs"
    )


def test_driver_failure_exits_1_with_the_reason(system: System) -> None:
    def brain(request: LLMRequest) -> str:
        raise RuntimeError("provider down")

    agent(system, "a", brain)
    info = system.run("a", "x", timeout=10)
    assert info.exit_code == 1 and "provider down" in info.exit_reason


def test_step_timeout(system: System) -> None:
    def slow(request: LLMRequest) -> str:
        from rnix_actors.kernel.cancel import CancelToken

        CancelToken().wait(1.0)
        return "late"

    agent(system, "slow", slow, step_timeout=0.2)
    info = system.run("slow", "x", timeout=10)
    assert info.exit_code == 1 and info.exit_reason.startswith("step_timeout: step 1")


def test_host_device_and_proc(system: System) -> None:
    calls: list[DeviceCall] = []

    def handler(device_call: DeviceCall) -> str:
        calls.append(device_call)
        return json.dumps({"balance": 42})

    system.register_device("/dev/bank/balance", handler)
    results: list[str] = []

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(
                call("call_device", device="/dev/bank/balance", input={"acct": 1}),
                call("call_device", device=f"/proc/{request.pid}/status"),
            )
        results.extend(m.content for m in request.messages if m.role == "tool")
        return "ok"

    agent(system, "banker", brain, devices=("/dev/bank", "/proc"))
    pid = system.spawn("banker", "x")
    system.wait(pid, 10)
    assert calls[0].args == {"acct": 1} and calls[0].device == "/dev/bank/balance"
    assert json.loads(results[0]) == {"balance": 42}
    status = json.loads(results[1])
    assert status["pid"] == pid and status["state"] == "running"


def test_send_delivers_mail_to_another_process(system: System) -> None:
    inbox: list[str] = []

    def listener(request: LLMRequest) -> LLMResponse | str:
        mail = [m.content for m in request.messages if m.content.startswith("[message")]
        if mail:
            inbox.extend(mail)
            return "got it"
        return respond(call("list_files"))

    agent(system, "listener", listener, max_steps=500)
    target = system.spawn("listener", "wait for mail")
    agent(system, "sender", scripted([respond(call("send", pid=target, message="hello")), "sent"]))
    assert system.run("sender", "x", timeout=10).exit_code == 0
    assert system.wait(target, 10).result == "got it"
    assert inbox == [f"[message from PID {target + 1}] hello"]


def test_unknown_agent_and_empty_device_set_are_spawn_errors(system: System) -> None:
    with pytest.raises(SpawnError, match="unknown agent 'nope'; known agents:"):
        system.spawn("nope", "x")
    system.add_template(AgentTemplate(name="fs-only", devices=("/dev/fs",), driver="replay"))
    with pytest.raises(SpawnError, match="would hold no devices"):
        system.spawn("fs-only", "x", devices=["/dev/shell"])


def test_events_are_published_and_logged_per_process(system: System) -> None:
    agent(system, "a", scripted([respond(call("list_files")), "done"]))
    events = Collector()
    system.subscribe(events)
    pid = system.spawn("a", "x")
    system.wait(pid, 10)
    events.wait_for(lambda e: e.pid == pid and e.syscall == "Exit")
    names = [e.syscall for e in events.of(pid)]
    assert names[0] == "Start" and names[-1] == "Exit"
    assert {"Write", "Read", "ReasonStep", "Open"} <= set(names)
    open_event = events.of(pid, "Open")[0]
    assert (open_event.device, open_event.template, open_event.step) == ("/dev/fs", "a", 1)
    system.stop()
    lines = system.events_file(pid).read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    assert [e["syscall"] for e in logged] == names
    assert set(logged[0]) == {
        "ts",
        "pid",
        "template",
        "step",
        "syscall",
        "device",
        "args",
        "result",
        "error",
        "duration_ms",
        "tokens",
    }


def test_a_failing_subscriber_does_not_stop_the_others(system: System) -> None:
    def broken(event: object) -> None:
        raise ValueError("subscriber bug")

    system.subscribe(broken)
    events = Collector()
    system.subscribe(events)
    agent(system, "a", scripted(["done"]))
    pid = system.spawn("a", "x")
    events.wait_for(lambda e: e.pid == pid and e.syscall == "Exit")


def test_pids_are_never_reused_across_restarts(project: Path) -> None:
    seen: list[int] = []
    for _ in range(3):
        with System(project) as system:
            agent(system, "a", scripted(["done"]))
            for _ in range(3):
                seen.append(system.run("a", "x", timeout=10).pid)
    assert len(set(seen)) == len(seen) and seen == sorted(seen)
    with System(project) as system:
        history = system.ps(all=True)
    assert [p.pid for p in history] == seen
    assert all(p.state is ProcessState.DEAD and p.exit_code == 0 for p in history)


def test_wait_and_kill_unknown_pid(system: System) -> None:
    with pytest.raises(NoSuchProcess):
        system.wait(999, 1)
    with pytest.raises(NoSuchProcess):
        system.kill(999)


def test_a_bad_replay_script_fails_the_spawn_and_starts_nothing(
    system: System, tmp_path: Path
) -> None:
    script = tmp_path / "broken.yaml"
    script.write_text('version: "1"\nresponses:\n  - contnt: typo\n')
    system.add_template(AgentTemplate(name="broken", devices=("/dev/fs",), model=str(script)))
    with pytest.raises(ConfigError, match=r"broken.yaml:3.*contnt"):
        system.spawn("broken", "x")
    assert system.ps(all=True) == []


def test_an_exhausted_replay_script_is_a_clear_error(system: System, tmp_path: Path) -> None:
    script = tmp_path / "short.yaml"
    script.write_text('version: "1"\nresponses:\n  - tool_calls: [{name: list_files}]\n')
    system.add_template(AgentTemplate(name="short", devices=("/dev/fs",), model=str(script)))
    info = system.run("short", "x", timeout=10)
    assert info.exit_code == 1
    assert "exhausted after 1 responses (PID 1 asked for response 2)" in info.exit_reason


def test_project_templates_override_shipped_ones(project: Path) -> None:
    agents = project / ".rnix" / "agents"
    agents.mkdir(parents=True)
    (agents / "code-analyst.yaml").write_text(
        "name: code-analyst\ndriver: house-model\ndevices: [/dev/fs]\n"
    )
    with System(project) as system:
        system.register_llm("house-model", lambda r: "house answer")
        assert system.templates["code-analyst"].driver == "house-model"
        assert system.run("code-analyst", "x", timeout=10).result == "house answer"
        assert "doc-writer" in system.templates


def test_events_before_a_blocking_call_are_delivered_while_it_runs(
    system: System, project: Path
) -> None:
    gate = project / "gate"
    agent(
        system,
        "a",
        scripted(
            [
                respond(
                    call("list_files"),
                    call("shell", command="while [ ! -e gate ]; do sleep 0.02; done; echo open"),
                ),
                "done",
            ]
        ),
    )
    events = Collector()
    system.subscribe(events)
    pid = system.spawn("a", "x")
    # The list_files event is queued in a batch; the shell call must flush it first.
    events.wait_for(lambda e: e.pid == pid and e.syscall == "Open")
    assert system.info(pid).state is ProcessState.RUNNING
    gate.write_text("")
    assert system.wait(pid, 10).exit_code == 0


def test_llm_devices_are_listed_but_not_callable(system: System) -> None:
    results: list[str] = []

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(
                call("call_device", device="/dev/llm"),
                call("call_device", device="/dev/llm/replay", input={"prompt": "hi"}),
            )
        results.extend(m.content for m in request.messages if m.role == "tool")
        return "done"

    agent(system, "a", brain, devices=("/dev/llm",))
    system.run("a", "x", timeout=10)
    assert "replay" in json.loads(results[0])
    assert "models are called by the kernel" in results[1]
