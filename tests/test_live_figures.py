"""Live accounting: a running process's steps, tokens, cost and activity are visible in every
view while it runs, not only once it settles; subtrees roll up."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import agent, call, respond, scripted

from rnix_actors import LLMRequest, LLMResponse, ProcessState, System
from rnix_actors.cli.main import cli
from rnix_actors.immune import ImmuneConfig
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.server import DaemonServer
from rnix_actors.ipc.service import Service


class Gate:
    """A brain that answers two steps with a tool call (100 tokens, $0.01 each) and then
    blocks in its third step until the test opens the gate."""

    def __init__(self) -> None:
        self.in_step3 = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: LLMRequest) -> LLMResponse | str:
        if request.step <= 2:
            return LLMResponse(
                tool_calls=(call("list_files"),),
                input_tokens=60,
                output_tokens=40,
                cost_usd=0.01,
            )
        self.in_step3.set()
        assert self.release.wait(10), "test never released the gate"
        return LLMResponse(content="done", input_tokens=10)


@pytest.fixture
def gate(system: System) -> Iterator[Gate]:
    brain = Gate()
    agent(system, "slow", brain)
    yield brain
    brain.release.set()


def test_a_running_process_shows_its_figures_in_system_ps(system: System, gate: Gate) -> None:
    pid = system.spawn("slow", "count")
    assert gate.in_step3.wait(10)
    (info,) = [p for p in system.ps() if p.pid == pid]
    assert info.state is ProcessState.RUNNING
    assert info.steps == 3  # the step in flight
    assert info.tokens_used == 200
    assert info.cost_usd == pytest.approx(0.02)
    assert info.activity == "llm" and info.step_started_at is not None
    assert system.info(pid).tokens_used == 200
    assert [p.tokens_used for p in system.ps(all=True) if p.pid == pid] == [200]
    gate.release.set()
    done = system.wait(pid, timeout=10)
    assert (done.steps, done.tokens_used) == (3, 210)
    assert done.cost_usd == pytest.approx(0.02)


def test_the_daemon_ps_json_and_table_show_live_figures(
    system: System, project: Path, gate: Gate
) -> None:
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, socket=path)):
        pid = system.spawn("slow", "count")
        assert gate.in_step3.wait(10)
        runner = CliRunner()
        result = runner.invoke(cli, ["--project-dir", str(project), "ps", "--json"])
        assert result.exit_code == 0, result.output
        (row,) = [p for p in json.loads(result.stdout)["processes"] if p["pid"] == pid]
        assert (row["steps"], row["tokens_used"], row["activity"]) == (3, 200, "llm")
        table = runner.invoke(cli, ["--project-dir", str(project), "ps"]).stdout
        line = next(line for line in table.splitlines() if line.split()[:1] == [str(pid)])
        assert "200" in line and "running" in line
        gate.release.set()
        system.wait(pid, timeout=10)


def test_a_subtree_rolls_up_its_descendants(system: System) -> None:
    child_started = threading.Event()
    release = threading.Event()

    def child(request: LLMRequest) -> LLMResponse | str:
        child_started.set()
        assert release.wait(10)
        return LLMResponse(content="child done", input_tokens=5)

    def parent(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return LLMResponse(
                tool_calls=(call("spawn", agent="kid", intent="help"),), input_tokens=50
            )
        return LLMResponse(content="parent done", input_tokens=1)

    agent(system, "kid", child)
    agent(system, "mum", parent)
    pid = system.spawn("mum", "delegate")
    assert child_started.wait(10)
    up = system.rollup(pid)
    assert (up.processes, up.running, up.suspended) == (2, 2, 0)
    assert up.tokens == 50  # the child's answer is not in yet
    (mum,) = [p for p in system.ps() if p.pid == pid]
    # The child may run before the parent's spawn call has returned to it.
    assert mum.activity in ("tool spawn", f"child {mum.children[0]}")
    release.set()
    system.wait(pid, timeout=10)
    assert system.rollup(pid).tokens == 56


def test_inspect_shows_a_running_process_context_and_breaker(system: System, project: Path) -> None:
    in_step2 = threading.Event()
    release = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return LLMResponse(
                content="I will read a file that is not there.",
                tool_calls=(call("read_file", path="missing.txt"),),
                input_tokens=30,
            )
        in_step2.set()
        assert release.wait(10)
        return LLMResponse(content="done", input_tokens=1)

    agent(system, "reader", brain, max_tokens=1000)
    pid = system.spawn("reader", "read it")
    assert in_step2.wait(10)
    detail = system.inspect(pid)
    assert detail.live and detail.info.steps == 2 and detail.info.token_budget == 1000
    roles = [entry.role for entry in detail.context]
    assert roles == ["user", "assistant", "tool"]
    assert detail.context[1].tool_calls == ('read_file {"path": "missing.txt"}',)
    assert detail.breaker[0] == 1 and detail.breaker[2].startswith("NOT_FOUND|")
    assert detail.limits is not None and detail.limits.max_tokens == 1000
    assert detail.shell == "sandboxed, network off"
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, socket=path)):
        shown = CliRunner().invoke(cli, ["--project-dir", str(project), "inspect", str(pid)])
        assert shown.exit_code == 0, shown.output
        assert "tokens:" in shown.stdout and "30/1,000" in shown.stdout
        assert "assistant: I will read a file that is not there." in shown.stdout
        data = json.loads(
            CliRunner()
            .invoke(cli, ["--project-dir", str(project), "inspect", str(pid), "--json"])
            .stdout
        )
        assert data["live"] is True and data["breaker"]["errors"] == 1
    release.set()
    system.wait(pid, timeout=10)


def test_inspect_a_finished_process_reads_its_event_log(system: System, project: Path) -> None:
    pid = system.spawn("doc-writer", "document")
    system.wait(pid, timeout=10)
    system.sync_events()
    detail = system.inspect(pid, tail=100)
    assert not detail.live and detail.context
    assert detail.context[0].role == "user"
    assert any(entry.role == "assistant" for entry in detail.context)
    missing = CliRunner().invoke(cli, ["--project-dir", str(project), "inspect", "999", "--json"])
    assert missing.exit_code == 1
    assert json.loads(missing.stdout)["error"]["code"] == "NO_SUCH_PROCESS"


def test_inspect_says_when_a_template_turned_the_shell_sandbox_off(system: System) -> None:
    import attrs

    from rnix_actors.shellconf import ShellSettings

    template = agent(system, "loose", lambda r: "done")
    system.add_template(attrs.evolve(template, shell=ShellSettings(sandbox=False)))
    pid = system.run("loose", "x", timeout=10).pid
    assert system.inspect(pid).shell == "sandbox OFF (shell.sandbox: off), network off"
    agent(system, "no-shell", lambda r: "done", devices=("/dev/fs",))
    assert system.inspect(system.run("no-shell", "x", timeout=10).pid).shell == ""


def test_inspect_shows_the_immune_figures_of_a_running_process_against_its_baseline(
    system: System, project: Path
) -> None:
    system.set_immune(ImmuneConfig())
    agent(system, "w", scripted([respond(call("list_files")), "done"]))
    for _ in range(5):
        system.run("w", "x", timeout=10)
    system.sync_events()
    assert [p.active for p in system.immune.status().profiles if p.template == "w"] == [True]
    in_step2, release = threading.Event(), threading.Event()

    def busier(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:  # three listings where every learned run made one
            return respond(call("list_files"), call("list_files"), call("list_files"))
        in_step2.set()
        assert release.wait(10), "test never released the process"
        return "done"

    agent(system, "w", busier)
    pid = system.spawn("w", "x")
    try:
        assert in_step2.wait(10)
        detail = system.inspect(pid)
        live = detail.immune_live
        assert live is not None and live.active and live.learned == 5 and live.calls == 3
        counts = {f.metric: f for f in live.figures if f.metric.startswith("run.count:")}
        (listing,) = counts.values()
        assert listing.value == 3 and listing.mean == 1 and listing.limit is not None
        assert {f.metric for f in live.figures} >= {"step.tokens", "run.tokens", "run.steps"}
        path = socket_path(system.state_dir)
        with DaemonServer(path, Service(system, socket=path)):
            args = ["--project-dir", str(project), "inspect", str(pid)]
            shown = CliRunner().invoke(cli, args)
            assert shown.exit_code == 0, shown.output
            assert "baseline: 5 runs of w learned (detection on)" in shown.stdout
            shown_line = rf"{re.escape(listing.metric)}\s+3\s+\(mean 1, alerts above \d"
            assert re.search(shown_line, shown.stdout), shown.stdout
            data = json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)
            figures = data["immune"]["live"]["figures"]
            assert {"metric": listing.metric, "value": 3.0, "mean": 1.0} == {
                k: v
                for k, v in next(f for f in figures if f["metric"] == listing.metric).items()
                if k != "limit"
            }
    finally:
        release.set()
    system.wait(pid, timeout=10)
    assert system.inspect(pid).immune_live is None  # finished: the record is gone


def test_inspect_says_a_template_is_still_learning(system: System, project: Path) -> None:
    system.set_immune(ImmuneConfig())
    started, release = threading.Event(), threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(call("list_files"))
        started.set()
        assert release.wait(10), "test never released the process"
        return "done"

    agent(system, "new", brain)
    pid = system.spawn("new", "x")
    try:
        assert started.wait(10)
        live = system.inspect(pid).immune_live
        assert live is not None and not live.active and live.learned == 0
        assert all(f.limit is None and f.mean is None for f in live.figures)
        path = socket_path(system.state_dir)
        with DaemonServer(path, Service(system, socket=path)):
            args = ["--project-dir", str(project), "inspect", str(pid)]
            shown = CliRunner().invoke(cli, args).stdout
        assert "baseline: learning, 0 of 5 runs of new (no detection yet)" in shown
    finally:
        release.set()
    system.wait(pid, timeout=10)
