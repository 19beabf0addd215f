"""``rnix shell``: its syntax, its commands, completion, the prompt_toolkit loop driven through
a pipe input, scripts (``-c`` and stdin) through click's runner."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import agent, call, respond
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from rnix_actors import LLMRequest, LLMResponse, System
from rnix_actors.cli.main import cli
from rnix_actors.cli.shell.commands import ExitShell, Shell
from rnix_actors.cli.shell.parse import (
    ShellSyntaxError,
    current_segment,
    nearest,
    pipe_intent,
    split_commands,
    split_pipeline,
    words,
)
from rnix_actors.cli.shell.repl import HISTORY_NAME, Repl, ShellCompleter
from rnix_actors.ipc.local import LocalApi
from rnix_actors.ipc.service import Service


class Lines:
    """Collects echoed output; `wait_for` blocks (with a timeout) until a line matches."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, text: str) -> None:
        with self._cond:
            self.lines.extend(text.splitlines() or [""])
            self._cond.notify_all()

    def wait_for(self, fragment: str, timeout: float = 10.0) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if fragment in line), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"{fragment!r} never printed; got {self.lines}")
            line = found()
            assert line is not None
            return line

    @property
    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


@pytest.fixture
def api(system: System) -> Iterator[LocalApi]:
    local = LocalApi(Service(system))
    yield local
    local.close()


def echo_brain(request: LLMRequest) -> LLMResponse | str:
    """Answers with the intent it was given, upper-cased (to see what a pipe passed on)."""
    if request.step == 1:
        return respond(call("list_files"))
    user = next(m.content for m in request.messages if m.role == "user")
    return user.upper()


# -- syntax ------------------------------------------------------------------------------------
def test_commands_pipes_and_quotes() -> None:
    assert split_commands("spawn a 'x; y'; ps ;; tree # comment; ps") == [
        "spawn a 'x; y'",
        "ps",
        "tree",
    ]
    assert split_pipeline('spawn a "p | q" | spawn b x') == ['spawn a "p | q"', "spawn b x"]
    assert words("spawn code-analyst 'review this' --max-steps 3") == [
        "spawn",
        "code-analyst",
        "review this",
        "--max-steps",
        "3",
    ]
    with pytest.raises(ShellSyntaxError, match="unclosed ' quote"):
        split_commands("spawn a 'oops")
    with pytest.raises(ShellSyntaxError, match="empty pipeline stage"):
        split_pipeline("spawn a x | ")
    assert current_segment('spawn a "x | y" | spawn co') == "spawn co"
    assert pipe_intent("r", "i") == "[PIPE_INPUT]\nr\n[/PIPE_INPUT]\n\ni"


def test_nearest_suggestions() -> None:
    commands = ["spawn", "ps", "pause", "resume", "watch", "help", "exit"]
    assert nearest("spwan", commands) == "spawn"
    assert nearest("wat", commands) == "watch"  # unique prefix
    assert nearest("xyzzy", commands) is None


@given(st.lists(st.text(alphabet="ab ;|'\"\\#", max_size=12), max_size=4))
def test_the_parser_never_fails_unexpectedly(parts: list[str]) -> None:
    line = " ".join(parts)
    try:
        for command in split_commands(line):
            for stage in split_pipeline(command):
                words(stage)
    except ShellSyntaxError:
        pass
    current_segment(line)  # completion must cope with anything half-typed


# -- commands ----------------------------------------------------------------------------------
def test_script_mode_spawns_in_the_foreground(api: LocalApi) -> None:
    lines = Lines()
    shell = Shell(api, lines)
    assert shell.execute("spawn doc-writer 'document it'; ps --all")
    assert "[kernel] spawned PID 1 (doc-writer)" in lines.lines
    assert "[kernel] PID 1 exited(0) completed | tokens: 4,654 | steps: 4" in lines.text
    assert "0 active, 1 total" in lines.text
    assert lines.text.index("step 3: Write /dev/fs DOCS-SUMMARY.md") < lines.text.index("Result")


def test_a_pipeline_passes_each_result_on(system: System, api: LocalApi) -> None:
    agent(system, "echo", echo_brain)
    lines = Lines()
    assert Shell(api, lines).execute('spawn echo "first" | spawn echo "second"')
    second = system.info(2)
    assert second.intent == pipe_intent("FIRST", "second")
    assert second.result == pipe_intent("FIRST", "second").upper()
    assert "[kernel] pipeline stage 2/2: spawned PID 2 (echo)" in lines.lines


def test_a_failing_stage_stops_the_pipeline(api: LocalApi) -> None:
    lines = Lines()
    ok = Shell(api, lines).execute(
        "spawn code-analyst x --max-steps 1 | spawn doc-writer y; ps --all"
    )
    assert not ok
    assert "[kernel] pipeline stopped at stage 1/2" in lines.lines
    assert "pipeline stage 2/2" not in lines.text and "0 active" not in lines.text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("spwan x y", "unknown command 'spwan'; did you mean 'spawn'? (try 'help')"),
        ("frobnicate", "unknown command 'frobnicate' (try 'help')"),
        ("kill", "usage: kill PID [--signal NAME]"),
        ("kill abc", "PID must be a positive integer, got 'abc'"),
        ("kill 1 --signal", "--signal needs a signal name (SIGTERM, SIGKILL"),
        ("kill 99", "error: no such process: PID 99"),
        ("kill 99 -s SIGNOPE", "error: unknown signal 'SIGNOPE'"),
        ("watch 1 2", "usage: watch [PID] [-v]"),
        ("spawn onlyagent", 'usage: spawn AGENT "intent"'),
        ("spawn nobody x", "error: unknown agent 'nobody'; known agents: code-analyst"),
        ("ps | spawn a x", "only spawn commands can be piped, got 'ps'"),
        ("spawn a 'x", "error: unclosed ' quote"),
        ("immune nonsense", "usage: immune status"),
        ("help nope", "no command 'nope'"),
    ],
)
def test_bad_input_is_explained_and_never_raises(api: LocalApi, line: str, expected: str) -> None:
    lines = Lines()
    assert Shell(api, lines).execute(line) is False
    assert expected in lines.text


def test_help_and_exit(api: LocalApi) -> None:
    lines = Lines()
    shell = Shell(api, lines)
    assert shell.execute("help") and "spawn" in lines.text and "watch" in lines.text
    assert shell.execute("help kill") and "usage: kill PID [--signal NAME]" in lines.text
    with pytest.raises(ExitShell):
        shell.execute("quit")


def test_watch_of_a_finished_process_prints_its_end(api: LocalApi) -> None:
    lines = Lines()
    shell = Shell(api, lines)
    assert shell.execute("spawn doc-writer x; watch 1")
    assert lines.lines[-1] == "[kernel] PID 1 exited(0) completed"


# -- completion --------------------------------------------------------------------------------
def complete(completer: ShellCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent())]


def test_completion_of_commands_agents_pids_and_signals() -> None:
    completer = ShellCompleter(lambda: ["code-analyst", "doc-writer"], lambda: (3, 12))
    assert complete(completer, "")[:3] == ["agents", "exit", "help"]
    assert complete(completer, "pa") == ["pause"]
    assert complete(completer, "spawn co") == ["code-analyst"]
    assert complete(completer, "spawn code-analyst 'x' | spawn d") == ["doc-writer"]
    assert complete(completer, "kill 1") == ["12"]
    assert complete(completer, "watch ") == ["12", "3"]
    assert complete(completer, "kill 3 --signal SIGK") == ["SIGKILL"]
    assert complete(completer, "help wa") == ["watch"]
    assert complete(completer, "spawn code-analyst 'rev") == []


# -- the interactive loop through a pipe input -------------------------------------------------
@contextlib.contextmanager
def running_repl(api: LocalApi, state: Path, lines: Lines) -> Iterator[tuple[Repl, PipeInput]]:
    """A `Repl` reading ``pipe`` on its own thread; ended with Ctrl-D and joined on exit."""
    with create_pipe_input() as pipe:
        repl = Repl(api, lines, state_dir=state, input=pipe, output=DummyOutput())
        thread = threading.Thread(target=repl.run, name="test-repl")
        thread.start()
        try:
            yield repl, pipe
        finally:
            if thread.is_alive():
                pipe.send_text("\x04")  # Ctrl-D
            thread.join(10)
            assert not thread.is_alive(), "the shell did not exit"


def test_repl_spawns_in_the_background_completes_and_keeps_history(
    api: LocalApi, tmp_path: Path
) -> None:
    lines = Lines()
    with running_repl(api, tmp_path, lines) as (repl, pipe):
        completed = threading.Event()
        buffer = repl.session.default_buffer
        buffer.on_text_changed += lambda buf: completed.set() if buf.text == "spawn" else None
        pipe.send_text("spa\t")  # Tab completes "spawn" (asynchronously)
        assert completed.wait(10)
        pipe.send_text(" doc-writer 'document'\r")
        lines.wait_for("[kernel] spawned PID 1 (doc-writer)")
        lines.wait_for("[kernel] PID 1 exited(0) completed")
        assert "step 3" not in lines.text  # background jobs print outcomes, not steps
        pipe.send_text("bogus\r")
        lines.wait_for("unknown command 'bogus'")
        pipe.send_text("ps --all\r")
        lines.wait_for("0 active, 1 total")
        pipe.send_text("exit\r")
    history = (tmp_path / HISTORY_NAME).read_text()
    assert "+spawn doc-writer 'document'" in history and "+ps --all" in history


def test_repl_toolbar_counts_follow_the_processes(
    system: System, api: LocalApi, tmp_path: Path
) -> None:
    gate = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            assert gate.wait(10)
            return respond(call("list_files"))
        return "done"

    agent(system, "gated", brain)
    lines = Lines()
    try:
        with running_repl(api, tmp_path, lines) as (repl, pipe):
            pipe.send_text("spawn gated x\r")
            lines.wait_for("[kernel] spawned PID 1 (gated)")
            pipe.send_text("pause 1\r")
            lines.wait_for("pausing 1 process(es)")
            gate.set()
            lines.wait_for("[kernel] PID 1 suspended(2) paused by user")
            system.sync_events()
            repl.monitor.refresh(announce=False)
            assert repl.toolbar().startswith(" embedded | running: 0 | suspended: 1 | alerts: ")
            assert repl.monitor.snapshot.pids == (1,)
            pipe.send_text("kill 1 -s SIGKILL\r")
            lines.wait_for("signal sent (SIGKILL)")
    finally:
        gate.set()


# -- `rnix shell` non-interactive ---------------------------------------------------------------
def test_shell_dash_c_and_a_script_on_stdin(project: Path) -> None:
    runner = CliRunner()
    base = ["--project-dir", str(project), "shell"]
    result = runner.invoke(cli, [*base, "-c", "spawn doc-writer 'x'; ps --all"])
    assert result.exit_code == 0, result.output
    assert "[kernel] PID 1 exited(0) completed" in result.stdout
    assert "0 active, 1 total" in result.stdout
    script = "# a comment\nspawn doc-writer 'y'\n\nps --all\nnope\nps\n"
    result = runner.invoke(cli, base, input=script)
    assert result.exit_code == 1
    assert "0 active, 2 total" in result.stdout and "unknown command 'nope'" in result.stdout
    assert "No active processes." not in result.stdout  # stopped at the failing line


def test_the_shell_follows_a_process_again_after_pause_and_resume(
    system: System, api: LocalApi
) -> None:
    in_step1 = threading.Event()
    release = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            in_step1.set()
            assert release.wait(10)
            return respond(call("list_files"))
        return "finished after the pause"

    agent(system, "pausable", brain)
    lines = Lines()
    shell = Shell(api, lines, background=True)
    try:
        assert shell.execute("spawn pausable 'work'")
        assert in_step1.wait(10)
        pid = system.ps()[0].pid
        assert shell.execute(f"pause {pid}")
        release.set()
        lines.wait_for(f"(resume {pid} to continue)")
        assert shell.execute(f"resume {pid}")
        lines.wait_for("finished after the pause")
        lines.wait_for(f"[kernel] PID {pid} exited(0) completed")
    finally:
        shell.close()


def test_shell_parity_commands(system: System, api: LocalApi) -> None:
    lines = Lines()
    shell = Shell(api, lines)
    assert shell.execute("spawn doc-writer 'document'")
    assert shell.execute("ps -a -q")
    assert "1" in lines.lines
    assert shell.execute("inspect 1")
    lines.wait_for("PID 1  doc-writer  dead")
    assert shell.execute("logs 1 -n 3")
    assert shell.execute("agents")
    lines.wait_for("code-analyst (replay):")
    assert shell.execute("immune similarity")
    lines.wait_for("security-scanner")
    assert not shell.execute("inspect 999")
    lines.wait_for("error: no such process: PID 999")


def test_enter_inside_an_open_quote_continues_the_command(
    system: System, api: LocalApi, tmp_path: Path
) -> None:
    seen: list[str] = []

    def brain(request: LLMRequest) -> LLMResponse | str:
        seen.append(request.intent)
        return "noted"

    agent(system, "note-taker", brain)
    lines = Lines()
    with running_repl(api, tmp_path, lines) as (_repl, pipe):
        pipe.send_text("spawn note-taker 'first line\r")  # the quote is still open
        pipe.send_text("second line'\r")
        lines.wait_for("[kernel] PID 1 exited(0) completed")
        pipe.send_text("exit\r")
    assert seen == ["first line\nsecond line"]
    assert not any("unclosed" in line for line in lines.lines)


def test_open_quote() -> None:
    from rnix_actors.cli.shell.parse import open_quote

    assert open_quote("spawn a 'one") and open_quote('spawn a "x; ps')
    assert not open_quote("spawn a 'one'") and not open_quote("ps; tree")
    assert not open_quote('spawn a "it\'s"')  # a quote of the other kind inside
