"""The python driver: a host callable plays the model."""

from __future__ import annotations

import pytest
from helpers import Collector, agent

from rnix_actors import System
from rnix_actors.drivers.base import Driver, LLMRequest, LLMResponse, Message, ToolCall
from rnix_actors.drivers.python import PythonDriver
from rnix_actors.errors import DriverError
from rnix_actors.kernel.cancel import Cancelled, CancelToken


def request(step: int = 1, text: str = "summarise the repo") -> LLMRequest:
    return LLMRequest(
        pid=3,
        uuid="u3",
        template="host",
        step=step,
        model="m",
        system_prompt="you are helpful",
        messages=(Message("user", text),),
        tools=(),
    )


def test_str_result_is_a_final_answer_with_estimated_tokens() -> None:
    driver = PythonDriver("host", lambda req: "all done")
    response = driver.complete(request(), CancelToken())
    assert response.content == "all done"
    assert response.tool_calls == ()
    assert response.input_tokens >= 1
    assert response.output_tokens >= 1
    assert isinstance(driver, Driver)
    assert driver.name == "host"


def test_callable_sees_the_request_and_may_return_tool_calls() -> None:
    def model(req: LLMRequest) -> LLMResponse | str:
        if req.step == 1:
            call = ToolCall("c1", "list_files", {"path": "."})
            return LLMResponse(content="looking", tool_calls=(call,), input_tokens=5)
        return f"finished after {len(req.messages)} messages"

    driver = PythonDriver("host", model)
    first = driver.complete(request(step=1), CancelToken())
    assert first.tool_calls[0].name == "list_files"
    assert first.input_tokens == 5
    assert driver.complete(request(step=2), CancelToken()).content == "finished after 1 messages"


def test_exceptions_become_driver_errors() -> None:
    def broken(req: LLMRequest) -> str:
        raise ValueError("boom")

    with pytest.raises(
        DriverError, match=r"^python driver 'host' failed: ValueError: boom$"
    ) as info:
        PythonDriver("host", broken).complete(request(), CancelToken())
    assert isinstance(info.value.__cause__, ValueError)


def test_system_exit_does_not_escape() -> None:
    def leaving(req: LLMRequest) -> str:
        raise SystemExit(3)

    with pytest.raises(DriverError, match="failed: SystemExit: 3"):
        PythonDriver("host", leaving).complete(request(), CancelToken())


def test_cancelled_passes_through() -> None:
    def cancelled(req: LLMRequest) -> str:
        raise Cancelled("SIGKILL")

    with pytest.raises(Cancelled):
        PythonDriver("host", cancelled).complete(request(), CancelToken())


def test_already_cancelled_token_skips_the_call() -> None:
    calls: list[LLMRequest] = []

    def model(req: LLMRequest) -> str:
        calls.append(req)
        return "x"

    driver = PythonDriver("host", model)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        driver.complete(request(), token)
    assert calls == []


def test_wrong_return_type_is_a_driver_error() -> None:
    driver = PythonDriver("host", lambda req: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(DriverError, match="returned NoneType: return an LLMResponse or a str"):
        driver.complete(request(), CancelToken())


@pytest.mark.parametrize("name", ["", "a/b", "..", "-x"])
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="not valid"):
        PythonDriver(name, lambda req: "x")


def test_release_is_a_no_op() -> None:
    driver = PythonDriver("host", lambda req: "x")
    driver.release(3)
    assert driver.complete(request(), CancelToken()).content == "x"


def test_a_host_function_reports_usage_and_duration(system: System) -> None:
    events = Collector()
    system.subscribe(events, ["ReasonStep"])
    answer = LLMResponse(content="done", input_tokens=40, output_tokens=2, duration_ms=1234.5)
    agent(system, "timed", lambda request: answer, devices=("/dev/fs",))
    info = system.run("timed", "go", timeout=10)
    system.sync_events()
    (step,) = events.of(info.pid, "ReasonStep")
    assert (step.tokens, step.duration_ms) == (42, 1234.5)
