"""MCP tools seen by a model over the OpenAI wire, judged by the immune system, and secrets.

The real test server (stdio and streamable HTTP), the real OpenAI-compatible driver against a
scripted chat-completions server on loopback, the real immune daemon in enforce mode, and the
``rnix mcp`` commands.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner
from helpers import Collector, agent, respond
from mcp_fixtures import (
    HEADER_TOKEN,
    TOKEN,
    Recorder,
    http_server,
    server_env,
    stdio_server,
    tc,
    write_mcp_yaml,
)
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from test_http_driver import ChatServer, driver, text, tools

from rnix_actors import AgentTemplate, LLMRequest, LLMResponse, ProcessState, System
from rnix_actors.cli.main import cli
from rnix_actors.cli.shell.commands import Shell
from rnix_actors.cli.shell.repl import ShellCompleter
from rnix_actors.immune import ImmuneConfig
from rnix_actors.ipc.local import LocalApi
from rnix_actors.ipc.service import Service


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


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    server = ChatServer()
    yield server
    server.close()


def test_the_openai_driver_lists_granted_mcp_tools_as_functions(
    notes: System, chat: ChatServer
) -> None:
    chat.script(tools(("mcp__notes__search", {"query": "milk"})), text("milk is on the list"))
    model = driver(chat)
    notes.register_driver(model)
    notes.add_template(
        AgentTemplate(
            name="shopper", devices=("/dev/mcp/notes/search",), driver=model.name, model="m"
        )
    )
    info = notes.wait(notes.spawn("shopper", "is milk on my list?"), timeout=30)
    assert (info.exit_code, info.result) == (0, "milk is on the list")
    first, second = chat.bodies()
    functions = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert "mcp__notes__write_note" not in functions  # not granted
    search = functions["mcp__notes__search"]
    assert search["parameters"]["properties"]["query"]["type"] == "string"
    assert search["parameters"]["required"] == ["query"]
    assert search["description"].startswith("Find notes")
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "groceries"


READS = [
    respond(tc("mcp__notes__search", query="milk"), tc("mcp__notes__read_note", name="meeting")),
    "done",
]
WRITE = [respond(tc("mcp__notes__write_note", name="exfil", text="secrets")), "done"]


def test_enforce_mode_lets_a_new_read_tool_pass_and_suspends_a_new_write_tool(
    notes: System,
) -> None:
    immune = notes.set_immune(ImmuneConfig(warn_only=False))
    try:
        scripts = {"write": WRITE}

        def brain(request: LLMRequest) -> LLMResponse | str:
            steps = scripts.get(request.messages[0].content, READS)
            return steps[min(request.step, len(steps)) - 1]

        agent(notes, "librarian", brain, devices=("/dev/mcp/notes",))
        for i in range(5):
            assert notes.wait(notes.spawn("librarian", f"read {i}"), timeout=30).exit_code == 0
        notes.sync_events()
        assert immune.status().profiles[0].runs == 5
        # A never-used tool that only reads (readOnlyHint) is not a risk on its own.
        scripts["look"] = [
            respond(tc("mcp__notes__search", query="x"), tc("mcp__notes__pid")),
            "ok",
        ]
        looked = notes.wait(notes.spawn("librarian", "look"), timeout=30)
        assert (looked.exit_code, looked.result) == (0, "ok")
        events = Collector()
        notes.subscribe(events)
        info = notes.wait(notes.spawn("librarian", "write"), timeout=30)
        assert info.state is ProcessState.SUSPENDED
        assert "/dev/mcp/notes/write_note" in info.exit_reason
        notes.sync_events()
        calls = [e for e in events.of(info.pid) if e.device.endswith("write_note")]
        assert [e.syscall for e in calls if e.syscall != "AnomalyAlert"] == ["Blocked"]
        notes.kill(info.pid, "SIGKILL")
        checker = Recorder(respond(tc("mcp__notes__read_note", name="exfil")), "done")
        agent(notes, "checker", checker, devices=("/dev/mcp/notes/read_note",))
        assert notes.wait(notes.spawn("checker", "check"), timeout=30).exit_code == 0
        (answer,) = checker.tool_results()
        assert "no note named 'exfil'" in answer  # the write never reached the server
    finally:
        immune.stop()


def test_rnix_mcp_list_and_call(project: Path, markers: Path) -> None:
    write_mcp_yaml(project, {"notes": stdio_server(markers)})
    runner = CliRunner()
    base = ["--project-dir", str(project)]
    listed = runner.invoke(cli, [*base, "mcp", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    servers = {s["name"]: s for s in json.loads(listed.output)["servers"]}
    assert servers["notes"]["state"] == "running"
    assert {t["name"] for t in servers["notes"]["tools"]} >= {"search", "write_note"}
    human = runner.invoke(cli, [*base, "mcp", "list"])
    assert "tool search [read]  Find notes whose name or text contains the query." in human.output
    called = runner.invoke(cli, [*base, "mcp", "call", "notes", "search", '{"query": "bread"}'])
    assert (called.exit_code, called.output.strip()) == (0, "groceries")
    failed = runner.invoke(cli, [*base, "mcp", "call", "notes", "fail", '{"message": "nope"}'])
    assert failed.exit_code == 1 and "tool 'fail' failed" in failed.output
    bad = runner.invoke(cli, [*base, "mcp", "call", "notes", "search", "[1]"])
    assert bad.exit_code == 1 and "must be a JSON object" in bad.output


def test_secrets_never_reach_events_logs_errors_state_or_json(
    project: Path, markers: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    os.environ["RNIX_TEST_TRACKER_TOKEN"] = HEADER_TOKEN
    os.environ["RNIX_TEST_CRASH"] = "1"
    seen: list[str] = []
    try:
        with http_server() as url:
            crashing = stdio_server(markers, timeout=10)
            crashing["env"] = {**crashing["env"], "CRASH_AT_START": "RNIX_TEST_CRASH"}
            auth = {"env": "RNIX_TEST_TRACKER_TOKEN", "prefix": "Bearer "}
            write_mcp_yaml(
                project,
                {
                    "notes": stdio_server(markers),
                    "broken": crashing,
                    "tracker": {"url": url, "headers": {"Authorization": auth}},
                },
            )
            with System(project) as system:
                events = Collector()
                system.subscribe(events)
                brain = Recorder(
                    respond(
                        tc("mcp__notes__token_digest"),
                        tc("mcp__notes__leak_token"),
                        tc("mcp__notes__fail", message="bad"),
                        tc("mcp__tracker__auth_digest"),
                        tc("call_device", device="/dev/mcp/broken/search", input={"query": "x"}),
                    ),
                    "done",
                )
                agent(system, "leaky", brain, devices=("/dev/mcp",))
                info = system.wait(system.spawn("leaky", "go"), timeout=60)
                assert info.exit_code == 0
                system.sync_events()
                assert brain.tool_results()[1] == "my token is [REDACTED]"
                crashed = brain.tool_results()[-1]
                assert "fatal: cannot log in with token [REDACTED]" in crashed  # stderr, scrubbed
                seen += [
                    json.dumps(e.to_dict() if hasattr(e, "to_dict") else str(e))
                    for e in events.events
                ]
                seen += brain.tool_results()
                assert system.mcp is not None
                seen.append(json.dumps(system.mcp.status(connect=True), default=str))
            runner = CliRunner()
            base = ["--project-dir", str(project)]
            seen.append(runner.invoke(cli, [*base, "mcp", "list", "--json"]).output)
            seen.append(runner.invoke(cli, [*base, "mcp", "call", "broken", "pid"]).output)
    finally:
        os.environ.pop("RNIX_TEST_TRACKER_TOKEN", None)
        os.environ.pop("RNIX_TEST_CRASH", None)
    seen.append(caplog.text)
    for file in (project / ".rnix").rglob("*"):
        if file.is_file():
            seen.append(file.read_bytes().decode("utf-8", "replace"))
    blob = "\n".join(seen)
    assert "[REDACTED]" in blob and "/dev/mcp/notes/token_digest" in blob  # the scan saw them
    assert TOKEN not in blob
    assert HEADER_TOKEN not in blob


def test_the_shell_lists_calls_and_completes_mcp_tools(notes: System) -> None:
    lines: list[str] = []
    api = LocalApi(Service(notes))
    try:
        shell = Shell(api, lines.append)
        shell.execute("mcp list")
        assert (
            "  tool search [read]  Find notes whose name or text contains the query."
            in "\n".join(lines)
        )
        lines.clear()
        shell.execute("""mcp call notes search '{"query": "milk"}'""")
        shell.execute("""mcp call notes fail '{"message": "no"}'""")
        assert lines[0] == "groceries" and lines[1].startswith("tool error: tool 'fail' failed")
        completer = ShellCompleter(list, tuple, lambda: shell.mcp_tools)
        assert complete(completer, "mc") == ["mcp"]
        assert complete(completer, "mcp call no") == ["notes"]
        assert complete(completer, "mcp call notes re") == ["read_note"]
        assert complete(completer, "/dev/mcp/notes/wr") == ["/dev/mcp/notes/write_note"]
    finally:
        api.close()


def complete(completer: ShellCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_shell_completion_of_mcp_call_names_servers(project: Path, markers: Path) -> None:
    write_mcp_yaml(project, {"notes": stdio_server(markers), "nothing": stdio_server(markers)})
    completer = ShellComplete(cli, {}, "rnix", "_RNIX_COMPLETE")
    base = ["--project-dir", str(project), "mcp", "call"]
    assert [c.value for c in completer.get_completions(base, "no")] == ["notes", "nothing"]
    # Without a daemon there is no session to ask for tools, and nothing is started.
    assert completer.get_completions([*base, "notes"], "se") == []
