"""The replay driver: strict script parsing, per-PID cursors, threads, exhaustion, cancel."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rnix_actors.drivers import replay
from rnix_actors.drivers.base import Driver, LLMRequest, Message, ToolCall
from rnix_actors.drivers.replay import (
    ReplayDriver,
    ReplayResponse,
    ReplayScript,
    dump_replay_script,
    parse_replay_script,
    parse_replay_text,
)
from rnix_actors.errors import ConfigError, DriverError
from rnix_actors.kernel.cancel import Cancelled, CancelToken

SCRIPT = """\
version: "1"
responses:
  - content: looking
    tool_calls:
      - name: list_files
        input: {path: "."}
      - {name: glob, input: {pattern: "*.py"}, id: mine}
    usage: {input_tokens: 100, output_tokens: 20}
  - content: done
    stop_reason: end
"""


def request(model: str, pid: int = 1, text: str = "hello", step: int = 1) -> LLMRequest:
    return LLMRequest(
        pid=pid,
        uuid=f"u{pid}",
        template="t",
        step=step,
        model=model,
        system_prompt="be brief",
        messages=(Message("user", text),),
        tools=(),
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def script_of(*contents: str, delay_ms: int = 0) -> ReplayScript:
    return ReplayScript(tuple(ReplayResponse(content=c, delay_ms=delay_ms) for c in contents))


# --- parsing --------------------------------------------------------------------------------


def test_parse_fills_ids_and_reads_fields(tmp_path: Path) -> None:
    path = write(tmp_path, SCRIPT)
    script = parse_replay_script(path)
    first, second = script.responses
    assert script.source == str(path)
    assert first.tool_calls == (
        ToolCall("replay-s0-c0", "list_files", {"path": "."}),
        ToolCall("mine", "glob", {"pattern": "*.py"}),
    )
    assert (first.input_tokens, first.output_tokens) == (100, 20)
    assert second == ReplayResponse(content="done", stop_reason="end")


def test_python_built_scripts_get_ids_too() -> None:
    script = ReplayScript((ReplayResponse(tool_calls=(ToolCall("", "complete", {"result": 1}),)),))
    assert script.responses[0].tool_calls[0].id == "replay-s0-c0"
    with pytest.raises(ValueError, match="content or tool_calls"):
        ReplayResponse()
    with pytest.raises(ValueError, match="at least one response"):
        ReplayScript(())


@pytest.mark.parametrize(
    ("text", "line", "field", "expected"),
    [
        ('version: "2"\nresponses: [{content: x}]\n', 1, "version", "unsupported version"),
        ("responses: [{content: x}]\n", 1, "version", "is required"),
        ('version: "1"\n', 1, "responses", "is required"),
        ('version: "1"\nresponses: []\n', 2, "responses", "at least one response"),
        ('version: "1"\nresponses:\n  - stop_reason: x\n', 3, "responses[0]", "neither content"),
        ('version: "1"\nresponses:\n  - content: x\n    extra: 1\n', 4, "responses[0].extra", ""),
        (
            'version: "1"\nresponses:\n  - tool_calls:\n      - {name: a, args: {}}\n',
            4,
            "responses[0].tool_calls[0].args",
            "unknown key",
        ),
        (
            'version: "1"\nresponses:\n  - tool_calls:\n      - {name: a, input: [1]}\n',
            4,
            "responses[0].tool_calls[0].input",
            "must be a mapping",
        ),
        (
            'version: "1"\nresponses:\n  - tool_calls:\n      - {input: {}}\n',
            4,
            "responses[0].tool_calls[0].name",
            "is required",
        ),
        (
            'version: "1"\nresponses:\n  - content: x\n    usage: {input_tokens: -5}\n',
            4,
            "responses[0].usage.input_tokens",
            "integer >= 0",
        ),
        (
            'version: "1"\nresponses:\n  - content: x\n    delay_ms: 1.5\n',
            4,
            "responses[0].delay_ms",
            "integer >= 0",
        ),
        (
            'version: "1"\nresponses:\n  - tool_calls:\n      - {name: a, id: x}\n'
            "      - {name: b, id: x}\n",
            5,
            "responses[0].tool_calls[1].id",
            "duplicate id",
        ),
    ],
)
def test_parse_errors_name_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        parse_replay_script(path)
    assert info.value.source == f"{path}:{line}"
    assert info.value.field == field
    assert expected in str(info.value)
    assert info.value.fix


def test_unquoted_version_one_is_accepted() -> None:
    assert len(parse_replay_text("version: 1\nresponses: [{content: x}]\n").responses) == 1


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
_json = st.recursive(
    _json_scalars | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_calls = st.lists(
    st.builds(
        ToolCall,
        id=st.sampled_from(["", "fixed"]),
        name=st.text(min_size=1, max_size=12),
        input=st.dictionaries(st.text(max_size=8), _json, max_size=3),
    ),
    max_size=3,
    unique_by=lambda c: c.id or object(),
)
_responses = st.builds(
    ReplayResponse,
    content=st.text(max_size=40),
    tool_calls=_calls,
    input_tokens=st.none() | st.integers(0, 10**6),
    output_tokens=st.none() | st.integers(0, 10**6),
    stop_reason=st.text(max_size=10),
    delay_ms=st.integers(0, 10**4),
)


@st.composite
def _scripts(draw: st.DrawFn) -> ReplayScript:
    responses = []
    for _ in range(draw(st.integers(1, 4))):
        try:
            responses.append(draw(_responses))
        except ValueError:  # neither content nor tool calls: not a valid response
            responses.append(ReplayResponse(content="fallback"))
    return ReplayScript(tuple(responses))


@settings(max_examples=150, deadline=None)
@given(_scripts())
def test_dump_then_parse_round_trips(script: ReplayScript) -> None:
    assert parse_replay_text(dump_replay_script(script)).responses == script.responses


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["version", "responses", "content", "tool_calls", "x"]),
        _json
        | st.lists(st.dictionaries(st.sampled_from(["content", "tool_calls", "usage"]), _json)),
        max_size=3,
    )
)
def test_junk_scripts_only_raise_config_error(data: dict[str, Any]) -> None:
    with contextlib.suppress(ConfigError):
        parse_replay_text(yaml.safe_dump(data))


# --- the driver -----------------------------------------------------------------------------


def test_driver_satisfies_protocol() -> None:
    assert isinstance(ReplayDriver(), Driver)


def test_cursor_per_pid_is_independent(tmp_path: Path) -> None:
    driver = ReplayDriver()
    model = str(write(tmp_path, SCRIPT))
    first = driver.complete(request(model, pid=1), CancelToken())
    assert first.tool_calls[0].name == "list_files"
    assert (first.input_tokens, first.output_tokens, first.stop_reason) == (100, 20, "tool_use")
    assert driver.complete(request(model, pid=2), CancelToken()).content == "looking"
    assert driver.complete(request(model, pid=1), CancelToken()).content == "done"
    assert driver.cursors() == {1: 2, 2: 1}
    driver.release(1)
    assert driver.complete(request(model, pid=1), CancelToken()).content == "looking"


def test_exhaustion_message_and_it_sticks() -> None:
    driver = ReplayDriver()
    driver.add_script("k", script_of("a", "b"))
    for _ in range(2):
        driver.complete(request("k", pid=7), CancelToken())
    expected = (
        "replay script k exhausted after 2 responses (PID 7 asked for response 3): "
        "add responses to the script or lower max_steps"
    )
    for _ in range(2):
        with pytest.raises(DriverError) as info:
            driver.complete(request("k", pid=7), CancelToken())
        assert str(info.value) == expected
    assert driver.complete(request("k", pid=8), CancelToken()).content == "a"


def test_tokens_are_estimated_when_usage_is_absent() -> None:
    driver = ReplayDriver()
    driver.add_script("k", script_of("x" * 80, "y"))
    small = driver.complete(request("k", pid=1, text="hi"), CancelToken())
    big = driver.complete(request("k", pid=2, text="word " * 400), CancelToken())
    assert small.output_tokens == 20
    assert big.input_tokens > small.input_tokens >= 1
    assert driver.complete(request("k", pid=1), CancelToken()).output_tokens == 1
    assert small.stop_reason == "end_turn"


def test_concurrent_use_from_many_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parses = []
    real_parse = replay.parse_replay_script

    def counting_parse(path: Path) -> ReplayScript:
        parses.append(path)
        return real_parse(path)

    monkeypatch.setattr(replay, "parse_replay_script", counting_parse)
    text = 'version: "1"\nresponses:\n' + "".join(f"  - content: r{i}\n" for i in range(20))
    model = str(write(tmp_path, text))
    driver = ReplayDriver()
    start = threading.Barrier(8)

    def run(pid: int) -> list[str]:
        start.wait(timeout=10)
        return [driver.complete(request(model, pid=pid), CancelToken()).content for _ in range(20)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(1, 9), timeout=30))
    assert all(seq == [f"r{i}" for i in range(20)] for seq in results)
    assert len(parses) == 1


def test_delay_honours_cancel_and_does_not_consume() -> None:
    driver = ReplayDriver()
    driver.add_script("slow", script_of("late", delay_ms=60_000))
    token = CancelToken().child(timeout=0.05)  # fires by deadline: no sleeps in the test
    with pytest.raises(Cancelled):
        driver.complete(request("slow"), token)
    assert driver.cursors() == {}


def test_cancel_from_another_thread_interrupts_delay() -> None:
    driver = ReplayDriver()
    driver.add_script("slow", script_of("late", delay_ms=60_000))
    token = CancelToken()
    outcome: list[BaseException] = []
    done = threading.Event()

    def call() -> None:
        try:
            driver.complete(request("slow"), token)
        except BaseException as exc:
            outcome.append(exc)
        done.set()

    thread = threading.Thread(target=call)
    thread.start()
    token.cancel("SIGKILL")
    assert done.wait(timeout=10)
    thread.join(timeout=10)
    assert isinstance(outcome[0], Cancelled)


def test_short_delay_completes() -> None:
    driver = ReplayDriver()
    driver.add_script("k", script_of("ok", delay_ms=1))
    assert driver.complete(request("k"), CancelToken()).content == "ok"


def test_already_cancelled_token_raises_before_consuming() -> None:
    driver = ReplayDriver()
    driver.add_script("k", script_of("a"))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        driver.complete(request("k"), token)
    assert driver.cursors() == {}


def test_bad_or_missing_script_is_a_driver_error(tmp_path: Path) -> None:
    driver = ReplayDriver()
    with pytest.raises(DriverError, match="file not found"):
        driver.complete(request(str(tmp_path / "none.yaml")), CancelToken())
    path = write(tmp_path, 'version: "1"\nresponses:\n  - content: 5\n')
    with pytest.raises(DriverError, match=rf"{path}:3: field 'responses\[0\].content'"):
        driver.complete(request(str(path)), CancelToken())
    with pytest.raises(DriverError, match="no replay script"):
        driver.complete(request(""), CancelToken())


def test_load_caches_and_can_fail_early(tmp_path: Path) -> None:
    driver = ReplayDriver()
    model = str(write(tmp_path, SCRIPT))
    assert driver.load(model) is driver.load(model)
    with pytest.raises(ConfigError):
        driver.load(str(tmp_path / "missing.yaml"))
