"""MCP servers as devices, against the real test server (stdio subprocess, streamable HTTP).

Agents use the python driver; every call goes through the kernel's syscall path (whitelist,
guards, events, breaker), the MCP event loop and the official SDK to a real server process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Collector, agent, respond
from mcp_fixtures import (
    HEADER_TOKEN,
    Recorder,
    alive,
    device_call,
    http_server,
    server_env,
    stdio_server,
    tc,
    wait_until,
    write_mcp_yaml,
)

from rnix_actors import AgentTemplate, Signal, System
from rnix_actors.errors import DeviceError
from rnix_actors.kernel.cancel import CancelToken
from rnix_actors.kernel.devices import Effect, device_effect


@pytest.fixture
def markers(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "markers"
    path.mkdir()
    with server_env(path):
        yield path


@pytest.fixture
def notes(project: Path, markers: Path) -> Iterator[System]:
    write_mcp_yaml(project, {"notes": stdio_server(markers)})
    with System(project) as system:
        yield system


def run(system: System, brain: Recorder, devices: tuple[str, ...] = ("/dev/mcp/notes",)) -> int:
    name = f"mcp-agent-{len(system.templates)}"
    agent(system, name, brain, devices=devices)
    return system.spawn(name, "use the notes")


def test_an_agent_lists_and_calls_tools_over_stdio(notes: System) -> None:
    brain = Recorder(
        respond(
            tc("mcp__notes__search", query="milk"),
            device_call("/dev/mcp/notes/read_note", name="meeting"),
            device_call("/dev/mcp/notes/fail", message="the disk is on fire"),
            device_call("/dev/mcp/notes", resource="notes://index"),
            device_call("/dev/mcp/notes", prompt="summarise", arguments={"topic": "food"}),
            device_call("/dev/mcp/notes"),
        ),
        "done",
    )
    info = notes.wait(run(notes, brain), timeout=30)
    assert (info.exit_code, info.result) == (0, "done")
    tools = {t.name: t for t in brain.requests[0].tools}
    search = tools["mcp__notes__search"]
    assert search.parameters["properties"]["query"]["type"] == "string"
    assert search.parameters["required"] == ["query"]
    assert "(MCP server notes)" in search.description
    assert {"mcp__notes__write_note", "mcp__notes__slow", "call_device"} <= set(tools)
    found, meeting, failed, index, prompt, listing = brain.tool_results()
    assert found == "groceries"
    assert meeting == "Thursday 10:00 with the design team"
    assert failed.startswith("Tool error (call_device): tool 'fail' failed:")
    assert "the disk is on fire" in failed
    assert index == "groceries\nmeeting"
    assert prompt == "user: Summarise my notes about food."
    offered = json.loads(listing)
    effects = {t["name"]: t["effect"] for t in offered["tools"]}
    assert effects["search"] == "read" and effects["write_note"] == "write"
    assert effects["send_email"] == "external"
    assert offered["resources"][0]["uri"] == "notes://index"
    assert offered["prompts"][0]["name"] == "summarise"


def test_tool_effects_come_from_annotations(notes: System) -> None:
    _, device, _ = notes.devices.lookup("/dev/mcp/notes")
    assert device_effect(device, "call", "/search") is Effect.EXTERNAL  # not listed yet
    info = notes.wait(run(notes, Recorder(respond(tc("mcp__notes__pid")), "done")), timeout=30)
    assert info.exit_code == 0
    assert device_effect(device, "call", "/search") is Effect.READ
    assert device_effect(device, "call", "/write_note") is Effect.WRITE
    assert device_effect(device, "call", "/send_email") is Effect.EXTERNAL
    assert device_effect(device, "call", "/no_such_tool") is Effect.EXTERNAL
    assert device_effect(device, "read", "") is Effect.READ


def test_a_tool_outside_the_whitelist_is_a_tool_error_and_not_offered(notes: System) -> None:
    brain = Recorder(
        respond(
            tc("mcp__notes__search", query="eggs"),
            device_call("/dev/mcp/notes/write_note", name="x", text="y"),
            device_call("/dev/mcp/notes", resource="notes://index"),
        ),
        "done",
    )
    info = notes.wait(run(notes, brain, ("/dev/mcp/notes/search",)), timeout=30)
    assert info.exit_code == 0
    names = {t.name for t in brain.requests[0].tools}
    assert "mcp__notes__search" in names and "mcp__notes__write_note" not in names
    found, write, index = brain.tool_results()
    assert found == "groceries"
    for denied in (write, index):
        assert "permission denied" in denied
        assert "cannot gain new permissions by spawning" in denied


def test_a_child_cannot_reach_a_tool_its_parent_lacks(notes: System) -> None:
    child = Recorder(respond(tc("mcp__notes__write_note", name="x", text="y")), "child done")
    child_template = agent(notes, "child", child, devices=("/dev/mcp/notes",))
    parent = Recorder(
        respond(tc("spawn", agent=child_template.name, intent="write a note")), "parent done"
    )
    info = notes.wait(run(notes, parent, ("/dev/mcp/notes/search",)), timeout=30)
    assert info.exit_code == 0
    assert {t.name for t in child.requests[0].tools} >= {"mcp__notes__search"}
    assert "mcp__notes__write_note" not in {t.name for t in child.requests[0].tools}
    (denied,) = child.tool_results()
    assert "permission denied" in denied and "/dev/mcp/notes/write_note" in denied


def test_a_server_killed_mid_call_is_restarted_and_the_next_call_works(
    notes: System, markers: Path
) -> None:
    events = Collector()
    notes.subscribe(events)
    first = Recorder(respond(tc("mcp__notes__pid")), "done")
    assert notes.wait(run(notes, first), timeout=30).exit_code == 0
    (old_pid,) = first.tool_results()
    slow = Recorder(respond(tc("mcp__notes__slow", seconds=60, tag="killed")), "after the crash")
    pid = run(notes, slow)
    wait_until(lambda: (markers / "killed").exists(), what="the slow call to start")
    os.kill(int(old_pid), signal.SIGKILL)
    info = notes.wait(pid, timeout=30)
    assert (info.exit_code, info.result) == (0, "after the crash")
    (crashed,) = slow.tool_results()
    assert "MCP server 'notes' went away during tool 'slow'" in crashed
    assert "being restarted" in crashed
    again = Recorder(respond(tc("mcp__notes__pid")), "done")
    assert notes.wait(run(notes, again), timeout=30).exit_code == 0
    (new_pid,) = again.tool_results()
    assert new_pid.isdigit() and new_pid != old_pid
    assert not alive(int(old_pid))
    assert notes.mcp is not None
    status = {s["name"]: s for s in notes.mcp.status(connect=False)}
    assert status["notes"]["state"] == "running" and status["notes"]["restarts"] == 1
    assert status["filesystem"]["state"] == "disabled"  # the shipped example


def test_sigkill_of_the_agent_cancels_its_call_in_flight(notes: System, markers: Path) -> None:
    slow = Recorder(respond(tc("mcp__notes__slow", seconds=60, tag="cancel-me")), "never")
    pid = run(notes, slow)
    wait_until(lambda: (markers / "cancel-me").exists(), what="the slow call to start")
    notes.kill(pid, Signal.SIGKILL)
    info = notes.wait(pid, timeout=10)
    assert (info.exit_code, info.exit_reason) == (1, "killed by SIGKILL from user")
    wait_until(
        lambda: (markers / "cancel-me").read_text() == "cancelled",
        what="the server to see the cancellation",
    )
    after = Recorder(respond(tc("mcp__notes__search", query="bread")), "done")
    assert notes.wait(run(notes, after), timeout=30).exit_code == 0
    assert after.tool_results() == ["groceries"]


def test_stopping_the_system_leaves_no_server_process_or_thread(
    project: Path, markers: Path
) -> None:
    write_mcp_yaml(project, {"notes": stdio_server(markers, start="eager")})
    before = set(threading.enumerate())
    system = System(project).start()
    try:
        brain = Recorder(respond(tc("mcp__notes__pid")), "done")
        assert system.wait(run(system, brain), timeout=30).exit_code == 0
        server_pid = int(brain.tool_results()[0])
        assert alive(server_pid)
    finally:
        system.stop()
    assert not alive(server_pid)
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []
    assert system.mcp is not None
    with pytest.raises(DeviceError, match="MCP server 'notes' is not running"):
        system.mcp.call("notes", "pid", {}, CancelToken())


def test_streamable_http_with_a_header_from_the_environment(project: Path) -> None:
    os.environ["RNIX_TEST_TRACKER_TOKEN"] = HEADER_TOKEN
    try:
        with http_server() as url:
            write_mcp_yaml(
                project,
                {
                    "tracker": {
                        "url": url,
                        "headers": {
                            "Authorization": {"env": "RNIX_TEST_TRACKER_TOKEN", "prefix": "Bearer "}
                        },
                        "timeout": 20,
                    }
                },
            )
            with System(project) as system:
                brain = Recorder(
                    respond(
                        tc("mcp__tracker__auth_digest"), tc("mcp__tracker__search", query="milk")
                    ),
                    "done",
                )
                info = system.wait(run(system, brain, ("/dev/mcp/tracker",)), timeout=30)
                assert info.exit_code == 0, info.exit_reason
                digest, found = brain.tool_results()
                expected = hashlib.sha256(f"Bearer {HEADER_TOKEN}".encode()).hexdigest()
                assert digest == expected
                assert found == "groceries"
    finally:
        os.environ.pop("RNIX_TEST_TRACKER_TOKEN", None)


def test_an_unreachable_server_is_a_clear_tool_error(project: Path, markers: Path) -> None:
    broken = stdio_server(markers, command="/nonexistent/mcp-server", timeout=5)
    write_mcp_yaml(project, {"notes": broken})
    with System(project) as system:
        brain = Recorder(respond(device_call("/dev/mcp/notes/search", query="x")), "done")
        info = system.wait(run(system, brain), timeout=30)
        assert info.exit_code == 0
        (error,) = brain.tool_results()
        assert "MCP server 'notes' is not available: it failed to start" in error
        assert "/nonexistent/mcp-server" in error


def test_a_template_yaml_grants_single_tools(notes: System) -> None:
    agents = notes.project_dir / ".rnix" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    brain = Recorder(respond(tc("mcp__notes__search", query="milk")), "done")
    notes.register_llm("notes-brain", brain)
    notes.add_template(
        AgentTemplate(name="reader", devices=("/dev/mcp/notes/search",), driver="notes-brain")
    )
    info = notes.wait(notes.spawn("reader", "find milk"), timeout=30)
    assert info.exit_code == 0 and brain.tool_results() == ["groceries"]


def test_a_call_past_the_server_timeout_is_a_timeout_and_the_session_lives_on(
    project: Path, markers: Path
) -> None:
    write_mcp_yaml(project, {"notes": stdio_server(markers, timeout=1)})
    with System(project) as system:
        brain = Recorder(
            respond(
                tc("mcp__notes__slow", seconds=30, tag="too-slow"),
                tc("mcp__notes__search", query="milk"),
            ),
            "done",
        )
        assert system.wait(run(system, brain), timeout=30).exit_code == 0
        timed_out, found = brain.tool_results()
        assert "tool 'slow' on MCP server 'notes' did not answer within 1s" in timed_out
        assert found == "groceries"
        wait_until(lambda: (markers / "too-slow").read_text() == "cancelled", what="cancel")


def test_repeated_tool_errors_trip_the_circuit_breaker(notes: System) -> None:
    fail = device_call("/dev/mcp/notes/fail", message="again")
    brain = Recorder(respond(fail), respond(fail), respond(fail), "never")
    info = notes.wait(run(notes, brain), timeout=30)
    assert info.exit_code == 1
    assert info.exit_reason.startswith("circuit_breaker:")
    assert "INTERNAL|/dev/mcp/notes/fail" in info.exit_reason


def test_an_http_server_that_goes_away_is_reconnected_when_it_is_back(project: Path) -> None:
    with http_server() as url:
        write_mcp_yaml(project, {"remote": {"url": url, "timeout": 10}})
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        system = System(project).start()
    try:
        first = Recorder(respond(device_call("/dev/mcp/remote/search", query="milk")), "done")
        assert system.wait(run(system, first, ("/dev/mcp/remote",)), timeout=30).exit_code == 0
        (gone,) = first.tool_results()
        assert "MCP server 'remote' is not available: it failed to start" in gone
        assert "ConnectError" in gone
        with http_server(port=port):
            again = Recorder(respond(tc("mcp__remote__search", query="milk")), "done")
            assert system.wait(run(system, again, ("/dev/mcp/remote",)), timeout=30).exit_code == 0
            assert again.tool_results() == ["groceries"]
    finally:
        system.stop()


def test_a_server_that_cannot_start_is_retried_only_when_a_call_needs_it(
    project: Path, markers: Path
) -> None:
    write_mcp_yaml(project, {"notes": stdio_server(markers, command="/nonexistent/mcp")})
    with System(project) as system:
        assert system.mcp is not None
        service = system.mcp

        def state() -> dict[str, object]:
            return next(s for s in service.status(connect=False) if s["name"] == "notes")

        brain = Recorder(respond(device_call("/dev/mcp/notes/search", query="x")), "done")
        assert system.wait(run(system, brain), timeout=30).exit_code == 0
        wait_until(lambda: state()["state"] == "failed", timeout=60, what="giving up")
        given_up_after = state()["restarts"]
        assert given_up_after == 5
        again = Recorder(respond(device_call("/dev/mcp/notes/search", query="x")), "done")
        assert system.wait(run(system, again), timeout=30).exit_code == 0
        assert "it failed to start" in again.tool_results()[0]
        # Its listing at the first step and its call each got one attempt, and no more.
        assert state()["restarts"] == given_up_after + 2
        assert state()["state"] == "failed"
