"""The OpenAI-compatible HTTP driver against a scripted chat-completions server on loopback."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import threading
import traceback
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pykka
import pytest
from helpers import Collector

from rnix_actors import (
    AgentTemplate,
    ConfigError,
    Event,
    Limits,
    Message,
    SpawnError,
    System,
    ToolSpec,
)
from rnix_actors.drivers.base import LLMRequest
from rnix_actors.drivers.http import OpenAIChatDriver, PricedResponse, ProviderError, build_drivers
from rnix_actors.drivers.openai_wire import Malformed, parse_text_action
from rnix_actors.drivers.providers import ProviderConfig
from rnix_actors.kernel.agent import AgentProcess
from rnix_actors.kernel.cancel import Cancelled, CancelToken
from rnix_actors.kernel.process import ProcessInfo

# -- a scripted OpenAI-compatible server ------------------------------------------------------


@attrs.frozen
class Reply:
    """One scripted answer: a JSON body (dict) or raw text (str), after ``delay`` seconds."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    delay: float = 0.0


def text(content: str, usage: tuple[int, int] | None = (12, 4)) -> Reply:
    return _completion({"role": "assistant", "content": content}, "stop", usage)


def tools(*calls: tuple[str, Any], usage: tuple[int, int] | None = (20, 6)) -> Reply:
    wire = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {
                "name": name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }
        for i, (name, args) in enumerate(calls)
    ]
    message = {"role": "assistant", "content": None, "tool_calls": wire}
    return _completion(message, "tool_calls", usage)


def _completion(message: dict[str, Any], finish: str, usage: tuple[int, int] | None) -> Reply:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return Reply(body)


def error(status: int, message: str = "", **headers: str) -> Reply:
    return Reply({"error": {"message": message or f"status {status}"}}, status, headers)


class ChatServer:
    """Serves scripted replies in order (then 500s) and records every request it got."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.answered = 0  # replies sent whole (a delayed reply is sent only after release)
        self.release = threading.Event()  # ends every delayed reply (teardown)
        self._cond = threading.Condition()
        self.httpd = _Httpd(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,))
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def received(self, request: dict[str, Any]) -> Reply:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
            return self.replies.popleft() if self.replies else error(500, "script exhausted")

    def wait_requests(self, count: int, timeout: float = 5.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.requests) >= count, timeout)

    def sent(self) -> None:
        with self._cond:
            self.answered += 1
            self._cond.notify_all()

    def wait_answered(self, count: int, timeout: float = 5.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.answered >= count, timeout)

    def cancel_after(self, requests: int, token: CancelToken, answered: int = 0) -> None:
        """Cancel ``token`` from another thread once the server got ``requests`` requests
        (and sent ``answered`` replies): the cancel lands while the client waits."""

        def later() -> None:
            self.wait_requests(requests)
            self.wait_answered(answered)
            token.cancel("SIGKILL")

        threading.Thread(target=later, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.close_connections()  # kept-alive connections would keep their threads
        self.httpd.server_close()  # joins the request threads
        self._thread.join(5)


class _Httpd(ThreadingHTTPServer):
    """A loopback server whose open connections can be cut, so that no request thread
    outlives the test (a client's pool keeps connections alive)."""

    block_on_close = True

    def __init__(self, *args: Any) -> None:
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(*args)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            reply = server.received(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)}
            )
            if reply.delay and server.release.wait(reply.delay):
                self.close_connection = True
                return
            body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            data = body.encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                server.sent()
            except OSError:  # the client abandoned the request
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    yield chat
    chat.close()


@pytest.fixture
def backup() -> Iterator[ChatServer]:
    chat = ChatServer()
    yield chat
    chat.close()


class Sleeper:
    """Records retry waits instead of sleeping (keeps Retry-After tests fast)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, cancel: CancelToken, seconds: float) -> bool:
        self.waits.append(seconds)
        return cancel.cancelled


def config(server: ChatServer, name: str = "local", **fields: Any) -> ProviderConfig:
    fields = {"model": "test-model", "backoff": 0.5, "backoff_max": 4.0, **fields}
    return ProviderConfig(name=name, base_url=server.url, **fields)


def driver(server: ChatServer, sleeper: Sleeper | None = None, **fields: Any) -> OpenAIChatDriver:
    return OpenAIChatDriver(config(server, **fields), sleep=sleeper or Sleeper())


def request(step: int = 1, model: str = "", pid: int = 7) -> LLMRequest:
    spec = ToolSpec("read_file", "Read a file.", {"type": "object", "properties": {}})
    return LLMRequest(pid, "u7", "t", step, model, "be brief", (Message("user", "hi"),), (spec,))


def run(system: System, chat: OpenAIChatDriver, intent: str = "review", **limits: Any) -> int:
    system.register_driver(chat)
    template = AgentTemplate(
        name="http-agent",
        devices=("/dev/fs",),
        driver=chat.name,
        model="test-model",
        instructions="You review code.",
        limits=Limits(**limits),
    )
    system.add_template(template)
    return system.spawn("http-agent", intent)


def finish(system: System, pid: int) -> ProcessInfo:
    return system.wait(pid, timeout=10)


# -- runs through a real System ---------------------------------------------------------------


def test_multi_step_tool_calling_run_completes(system: System, server: ChatServer) -> None:
    server.script(
        tools(("list_files", {"path": "."})),
        tools(("read_file", {"path": "README.md"}), ("read_file", {"path": "src/app.py"})),
        text("A sample project that prints hello.", usage=(50, 9)),
    )
    events = Collector()
    system.subscribe(events)
    chat = driver(server)
    pid = run(system, chat)
    info = finish(system, pid)

    assert (info.exit_code, info.exit_reason) == (0, "completed")
    assert info.result == "A sample project that prints hello."
    assert info.tokens_used == (20 + 6) * 2 + 50 + 9
    first, second, third = server.bodies()
    assert server.requests[0]["path"] == "/v1/chat/completions"
    assert "Authorization" not in server.requests[0]["headers"]  # no key configured
    assert first["model"] == "test-model"
    assert first["messages"][:2] == [
        {"role": "system", "content": "You review code."},
        {"role": "user", "content": "review"},
    ]
    read_tool = next(t for t in first["tools"] if t["function"]["name"] == "read_file")
    assert read_tool["type"] == "function"
    assert read_tool["function"]["parameters"]["required"] == ["path"]
    assistant, result = second["messages"][2:4]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "list_files",
        "arguments": '{"path": "."}',
    }
    assert result["role"] == "tool" and result["tool_call_id"] == "call_0"
    assert "README.md" in result["content"]
    results = [m for m in third["messages"] if m["role"] == "tool"][1:]
    assert [m["tool_call_id"] for m in results] == ["call_0", "call_1"]
    assert "# sample" in results[0]["content"] and "print('hello')" in results[1]["content"]

    system.sync_events()
    llm = [e for e in events.of(pid) if e.device == "/dev/llm/local"]
    assert [e.syscall for e in llm] == ["Write", "Read"] * 3
    assert [e.tokens for e in llm if e.syscall == "Read"] == [26, 26, 59]


def test_text_protocol_for_models_without_tool_calling(system: System, server: ChatServer) -> None:
    server.script(
        text(
            'Let me read it.\n```json\n{"tool": "read_file", "input": {"path": "README.md"}}\n```'
        ),
        text('{"tool": "complete", "input": {"result": "a sample project"}}'),
    )
    info = finish(system, run(system, driver(server, tool_calling="text")))

    assert (info.exit_code, info.result) == (0, "a sample project")
    first, second = server.bodies()
    assert "tools" not in first
    system_prompt = first["messages"][0]["content"]
    assert system_prompt.startswith("You review code.\n\n# Tools")
    assert '- read_file: Read a text file in the work dir. Input: {"properties"' in system_prompt
    assistant, result = second["messages"][2:4]
    assert assistant == {
        "role": "assistant",
        "content": 'Let me read it.\n{"tool": "read_file", "input": {"path": "README.md"}}',
    }
    assert result["role"] == "user"
    assert (
        result["content"].startswith("Result of read_file:\n") and "# sample" in result["content"]
    )


def test_fallback_provider_answers_after_retries(
    system: System, server: ChatServer, backup: ChatServer
) -> None:
    server.script(error(503), error(503))
    backup.script(text("answered by the backup"))
    sleeper = Sleeper()
    providers = {
        "local": config(server, max_retries=1, fallback="backup"),
        "backup": config(backup, "backup", model="backup-model"),
    }
    primary, _ = build_drivers(providers, sleep=sleeper)
    info = finish(system, run(system, primary))

    assert (info.exit_code, info.result) == (0, "answered by the backup")
    assert len(server.requests) == 2 and len(sleeper.waits) == 1
    assert [b["model"] for b in backup.bodies()] == ["backup-model"]


def test_when_every_provider_fails_the_process_exits_naming_them(
    system: System, server: ChatServer, backup: ChatServer
) -> None:
    server.script(error(503, "overloaded"), error(503, "overloaded"))
    backup.script(error(500, "boom"))
    providers = {
        "local": config(server, max_retries=1, fallback="backup"),
        "backup": config(backup, "backup", max_retries=0),
    }
    primary, _ = build_drivers(providers, sleep=Sleeper())
    info = finish(system, run(system, primary))

    assert info.exit_code == 1
    assert info.exit_reason == (
        "llm error: provider 'local' (HTTP 503): overloaded (after 2 attempts); "
        "then fallback provider 'backup' (HTTP 500): boom"
    )


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (Reply("{not json"), "response is not valid JSON (Expecting property name"),
        (Reply({"choices": []}), "malformed response: no choices[0]"),
        (Reply({"choices": [{"message": "hi"}]}), "choices[0].message is missing or not an object"),
        (
            tools(("read_file", '{"path": "README')),
            "tool call 'read_file' has arguments that are not valid JSON (Unterminated string",
        ),
        (tools(("read_file", "[1, 2]")), "tool call 'read_file' has arguments that are not a JSON"),
        (text(""), "malformed response: neither text nor tool calls (finish_reason=stop)"),
    ],
)
def test_malformed_responses_end_the_process_with_a_clear_reason(
    system: System, server: ChatServer, reply: Reply, detail: str
) -> None:
    server.script(reply)
    info = finish(system, run(system, driver(server)))

    assert info.exit_code == 1
    assert info.exit_reason.startswith("llm error: provider 'local' (HTTP 200): ")
    assert detail in info.exit_reason
    assert len(server.requests) == 1  # a malformed answer is not retried


def test_sigkill_abandons_a_slow_request_promptly(system: System, server: ChatServer) -> None:
    server.script(Reply(text("too late").body, delay=30))
    pid = run(system, driver(server))
    server.wait_requests(1)
    (agent_ref,) = pykka.ActorRegistry.get_by_class(AgentProcess)
    system.kill(pid, "SIGKILL")
    info = finish(system, pid)
    assert agent_ref.actor_stopped.wait(5)  # its thread is free again

    assert info.exit_code == 1 and "SIGKILL" in info.exit_reason
    assert server.answered == 0  # abandoned while the server still held the reply


def test_step_timeout_abandons_a_slow_request(system: System, server: ChatServer) -> None:
    server.script(Reply(text("too late").body, delay=30))
    info = finish(system, run(system, driver(server), step_timeout=0.3))

    assert info.exit_code == 1 and info.exit_reason.startswith("step_timeout: step 1")
    assert server.answered == 0  # it did not wait for the slow reply


def test_missing_api_key_fails_the_spawn_naming_the_variable(
    system: System, server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RNIX_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="environment variable RNIX_TEST_KEY is not set"):
        run(system, driver(server, api_key_env="RNIX_TEST_KEY"))
    assert system.ps() == [] and server.requests == []


# -- the API key stays secret -----------------------------------------------------------------


def test_api_key_never_appears_in_events_logs_state_or_errors(
    system: System,
    server: ChatServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk-test-" + secrets.token_hex(16)
    monkeypatch.setenv("RNIX_TEST_KEY", key)
    caplog.set_level(logging.DEBUG)
    events: list[Event] = []
    system.subscribe(events.append)
    echo = f"Incorrect API key provided: {key}"
    server.script(
        error(500, echo),  # retried: the warning log must be redacted
        error(401, echo),  # not retried: ends the process
    )
    chat = driver(server, api_key_env="RNIX_TEST_KEY", max_retries=1)
    info = finish(system, run(system, chat))
    direct_server_reply = error(400, echo)
    server.script(direct_server_reply)
    with pytest.raises(ProviderError) as raised:
        chat.complete(request(model="m"), CancelToken())
    system.sync_events()

    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {key}"  # it was sent
    assert info.exit_reason == (
        "llm error: provider 'local' (HTTP 401): Incorrect API key provided: [REDACTED] "
        "(after 2 attempts)"
    )
    exc = raised.value
    assert "[REDACTED]" in str(exc)
    exc_text = "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)
    state = b"".join(p.read_bytes() for p in Path(system.state_dir).rglob("*") if p.is_file())
    seen = {
        "events": json.dumps([e.to_dict() for e in events]),
        "logs": caplog.text + repr([r.args for r in caplog.records]),
        "process info": json.dumps(info.to_dict(), default=str),
        "exception": exc_text,
        "reprs": repr(chat) + repr(chat.config),
        "state dir": state.decode("utf-8", "replace"),
    }
    assert "[REDACTED]" in seen["events"] and "retry 1 of 1" in seen["logs"]
    leaks = [where for where, content in seen.items() if key in content]
    assert leaks == []


# -- retries, Retry-After, timeouts (driver called directly) ----------------------------------


def test_retries_with_backoff_then_success(server: ChatServer) -> None:
    server.script(error(500), error(502), text("ok"))
    sleeper = Sleeper()
    response = driver(server, sleeper, max_retries=2).complete(request(), CancelToken())

    assert response.content == "ok" and len(server.requests) == 3
    first, second = sleeper.waits
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0  # doubling, with jitter


def test_retry_after_is_honoured(server: ChatServer) -> None:
    server.script(
        error(429, "slow down", **{"Retry-After": "7"}),
        error(503, **{"retry-after-ms": "1500"}),
        text("ok"),
    )
    sleeper = Sleeper()
    response = driver(server, sleeper, max_retries=3).complete(request(), CancelToken())

    assert response.content == "ok"
    assert sleeper.waits == [7.0, 1.5]


def test_retry_after_beyond_max_wait_gives_up_at_once(server: ChatServer) -> None:
    server.script(error(429, "quota", **{"Retry-After": "3600"}))
    sleeper = Sleeper()
    chat = driver(server, sleeper, max_retries=3, max_retry_wait=60)
    with pytest.raises(
        ProviderError, match=r"\(HTTP 429\): quota \(the server asks to retry after 3600s"
    ):
        chat.complete(request(), CancelToken())
    assert sleeper.waits == [] and len(server.requests) == 1


def test_a_wait_past_the_step_deadline_gives_up_at_once(server: ChatServer) -> None:
    server.script(error(429, "busy", **{"Retry-After": "7"}))
    sleeper = Sleeper()
    token = CancelToken().child(timeout=5)
    with pytest.raises(ProviderError, match=r"a retry in 7.00s would pass the step deadline"):
        driver(server, sleeper, max_retries=3).complete(request(), token)
    assert sleeper.waits == [] and not token.cancelled


def test_client_errors_are_not_retried(server: ChatServer) -> None:
    server.script(error(400, "context too long"))
    with pytest.raises(ProviderError) as raised:
        driver(server, max_retries=3).complete(request(), CancelToken())
    assert str(raised.value) == "provider 'local' (HTTP 400): context too long"
    assert raised.value.status == 400 and len(server.requests) == 1


def test_a_slow_attempt_times_out_and_is_retried(server: ChatServer) -> None:
    server.script(Reply(text("late").body, delay=30), text("on time"))
    response = driver(server, max_retries=1, timeout=0.2).complete(request(), CancelToken())

    assert response.content == "on time" and len(server.requests) == 2
    server.wait_answered(1)  # the server counts a reply after its last byte reaches the client
    assert server.answered == 1  # the retry's answer; the slow one was never waited for


def test_no_server_is_a_retried_connection_failure() -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ProviderConfig(name="gone", base_url=f"http://127.0.0.1:{port}/v1", model="m")
    sleeper = Sleeper()
    with pytest.raises(ProviderError, match=r"^provider 'gone' \(no HTTP response\): cannot reach"):
        OpenAIChatDriver(config, sleep=sleeper).complete(request(), CancelToken())
    assert len(sleeper.waits) == 2


def test_cancel_during_request_raises_cancelled_promptly(server: ChatServer) -> None:
    server.script(Reply(text("late").body, delay=30))
    token = CancelToken()
    server.cancel_after(requests=1, token=token)
    with pytest.raises(Cancelled, match="SIGKILL"):
        driver(server).complete(request(), token)
    assert server.answered == 0  # it gave up while the reply was still held


def test_cancel_during_backoff_raises_cancelled(server: ChatServer) -> None:
    server.script(error(503))
    token = CancelToken()
    server.cancel_after(requests=1, token=token, answered=1)  # during the 30 s backoff
    chat = OpenAIChatDriver(config(server, backoff=30, backoff_max=30, max_retries=1))
    with pytest.raises(Cancelled):
        chat.complete(request(), token)
    assert len(server.requests) == 1  # the retry never went out


# -- usage, cost, models ----------------------------------------------------------------------


def test_usage_gives_tokens_and_cost(server: ChatServer) -> None:
    server.script(text("a", usage=(1000, 500)), text("b", usage=(10, 0)))
    chat = driver(server, cost_per_input_token=2e-6, cost_per_output_token=4e-6)
    first = chat.complete(request(), CancelToken())

    assert isinstance(first, PricedResponse)
    assert (first.input_tokens, first.output_tokens) == (1000, 500)
    assert first.cost_usd == pytest.approx(0.004)
    assert first.provider == "local" and first.stop_reason == "stop"
    chat.complete(request(step=2), CancelToken())
    assert chat.spent(7) == pytest.approx(0.00402)
    chat.release(7)
    assert chat.spent(7) == 0.0 and chat.total_cost_usd == pytest.approx(0.00402)


def test_missing_usage_is_estimated(server: ChatServer) -> None:
    server.script(text("a short answer", usage=None))
    response = driver(server).complete(request(), CancelToken())
    assert response.input_tokens >= 1 and response.output_tokens >= 1


def test_request_model_overrides_the_provider_model(server: ChatServer) -> None:
    server.script(text("x"), text("y"))
    chat = driver(server)
    chat.complete(request(model="big-model"), CancelToken())
    chat.complete(request(model=""), CancelToken())
    assert [b["model"] for b in server.bodies()] == ["big-model", "test-model"]


def test_prepare_needs_a_model(server: ChatServer) -> None:
    chat = driver(server, model="")
    with pytest.raises(ConfigError, match="provider 'local' has no model"):
        chat.prepare("")
    chat.prepare("named-in-template")


def test_build_drivers_wires_fallbacks_and_rejects_cycles(server: ChatServer) -> None:
    a = config(server, "a", fallback="b")
    b = config(server, "b", fallback="c")
    c = config(server, "c")
    built = {d.name: d for d in build_drivers({"a": a, "b": b, "c": c})}
    assert built["a"].fallback is built["b"] and built["b"].fallback is built["c"]
    assert built["c"].fallback is None
    with pytest.raises(ConfigError, match="fallback cycle a → b → a"):
        build_drivers({"a": a, "b": attrs.evolve(b, fallback="a")})
    with pytest.raises(ConfigError, match="unknown provider 'c'"):
        build_drivers({"a": a, "b": b})


# -- the text protocol parser (pure) ----------------------------------------------------------


def test_text_protocol_parser() -> None:
    assert parse_text_action("Done: all good.", 3) == ("Done: all good.", ())
    example = 'An example config:\n```json\n{"debug": true}\n```'
    assert parse_text_action(example, 3) == (example, ())
    rest, (call,) = parse_text_action('{"tool": "glob", "input": {"pattern": "*.py"}}', 3)
    assert (rest, call.id, call.name, dict(call.input)) == (
        "",
        "text-s3-c0",
        "glob",
        {"pattern": "*.py"},
    )
    with pytest.raises(Malformed, match="not valid JSON"):
        parse_text_action('{"tool": "glob", "input": {"pattern": "*.py"', 3)  # cut off
    assert parse_text_action('{"answer": 42}', 3) == ('{"answer": 42}', ())
    assert parse_text_action("{not json}", 3) == ("{not json}", ())
    with pytest.raises(Malformed, match='needs "tool"'):
        parse_text_action('{"tool": ""}', 3)
    with pytest.raises(Malformed, match="must be a JSON object"):
        parse_text_action('{"tool": "glob", "input": "*.py"}', 3)


def test_providers_written_after_start_are_used_by_the_next_spawn(
    system: System, server: ChatServer, project: Path
) -> None:
    rnix = project / ".rnix"
    (rnix / "agents").mkdir(parents=True, exist_ok=True)
    (rnix / "providers.yaml").write_text(
        f'version: "1"\nproviders:\n  - name: late\n    base_url: {server.url}\n'
        "    model: test-model\n"
    )
    (rnix / "agents" / "late-agent.yaml").write_text(
        "name: late-agent\ndescription: Uses a provider added after start.\n"
        "devices: [/dev/fs]\ndriver: late\nmodel: test-model\n"
    )
    server.script(text("answered by the late provider"))
    info = system.run("late-agent", "hello", timeout=10)  # an unknown name looks at the disk
    assert (info.exit_code, info.result) == (0, "answered by the late provider")
    assert "late" in system.providers
    (rnix / "providers.yaml").write_text("version: '1'\nproviders:\n  - name: [broken\n")
    with pytest.raises(ConfigError, match=r"providers\.yaml"):
        system.reload_templates()
    assert "late" in system.providers  # a broken file changes nothing
    server.script(text("still the late provider"))
    assert system.run("late-agent", "again", timeout=10).result == "still the late provider"
    (rnix / "providers.yaml").unlink()
    changes = system.reload_templates()
    assert changes.providers and "providers reloaded" in changes.text()
    assert "late" not in system.providers
    with pytest.raises(SpawnError, match="uses driver 'late', which is not registered"):
        system.spawn("late-agent", "gone")
