"""The OpenAI-compatible HTTP driver: hosted APIs and local servers (issue 7).

`OpenAIChatDriver` speaks ``POST <base_url>/chat/completions`` (OpenAI, vLLM, llama.cpp server,
Ollama, LM Studio). Tools are sent as OpenAI ``tools`` with their JSON Schemas and the answer's
``tool_calls`` come back as `ToolCall` values; a provider with ``tool_calling: text`` gets the
tools described in its system prompt instead and answers with one JSON action per reply.

Failures, in order: a 429, a 5xx, a timeout or a connection failure is retried ``max_retries``
times with exponential backoff and jitter (or the server's ``Retry-After``); then the fallback
provider is asked once; then `DriverError` names each provider and its HTTP status. A
`CancelToken` that fires (SIGKILL, step timeout) abandons the request at once: it runs on a
daemon worker thread whose late answer is dropped.

The API key is read from the environment on every call and never stored, logged or shown:
every error text that could echo it is redacted.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import httpx

from rnix_actors.cancel import Cancelled, CancelToken
from rnix_actors.drivers.base import LLMRequest, LLMResponse
from rnix_actors.drivers.openai_wire import Malformed, error_detail, parse_completion, request_body
from rnix_actors.drivers.providers import ProviderConfig, backoff_delay, parse_retry_after
from rnix_actors.drivers.replay import estimate_input_tokens, estimate_output_tokens
from rnix_actors.errors import ConfigError, DriverError
from rnix_actors.redact import redact, register_secrets

log = logging.getLogger(__name__)

POLL_SECONDS = 0.02  # how often a waiting call checks its cancel token
REDACTED = "[REDACTED]"
USER_AGENT = "rnix-actors (OpenAI-compatible driver)"

Sleep = Callable[[CancelToken, float], bool]
"""Waits ``seconds`` unless the token fires first; returns True if it fired."""

_T = TypeVar("_T")


def _wait(cancel: CancelToken, seconds: float) -> bool:
    return cancel.wait(seconds)


@attrs.frozen
class PricedResponse(LLMResponse):
    """An `LLMResponse` with the provider that answered it (its cost is ``cost_usd``)."""

    provider: str = ""


class ProviderError(DriverError):
    """A provider gave no usable answer. ``status`` is the HTTP status, 0 when there was none."""

    def __init__(
        self,
        provider: str,
        status: int,
        detail: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after
        where = f"HTTP {status}" if status else "no HTTP response"
        super().__init__(f"provider '{provider}' ({where}): {detail}")

    def noted(self, note: str) -> ProviderError:
        """The same failure, final, with ``note`` appended to its detail."""
        return ProviderError(self.provider, self.status, f"{self.detail} {note}")


class _AttemptTimeout(Exception):
    """One attempt ran past the provider's ``timeouts.request``."""


class OpenAIChatDriver:
    """A `Driver` for one provider; ``name`` is the provider name (``/dev/llm/<name>``).

    Thread-safe: one driver serves every agent thread over one pooled HTTP client, created on
    first use. ``sleep`` and ``rng`` exist for tests (retry waits without real sleeping).
    """

    def __init__(
        self,
        config: ProviderConfig,
        *,
        fallback: OpenAIChatDriver | None = None,
        sleep: Sleep = _wait,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.fallback = fallback
        self._sleep = sleep
        self._rng = rng or random.Random()
        # Every agent thread using this provider adds to the spend and may create the client;
        # `close` runs in the thread that stops the system.
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._spent: dict[int, float] = {}
        self.total_cost_usd = 0.0

    def __repr__(self) -> str:
        return f"OpenAIChatDriver({self.name!r}, base_url={self.config.base_url!r})"

    # -- the Driver protocol ------------------------------------------------------------------
    def complete(self, request: LLMRequest, cancel: CancelToken) -> LLMResponse:
        """Ask this provider (with retries), then its fallback chain; return a `PricedResponse`.

        Raises `Cancelled` as soon as ``cancel`` fires (the request in flight is abandoned), and
        `ProviderError` (a `DriverError`) naming every provider tried and its HTTP status when
        none answered usably: an error status, malformed JSON, tool arguments that are not a
        JSON object, an empty answer, a timeout, or a missing API key.
        """
        cancel.raise_if_cancelled()
        response = self._complete_chain(request, cancel)
        with self._lock:
            self._spent[request.pid] = self._spent.get(request.pid, 0.0) + response.cost_usd
            self.total_cost_usd += response.cost_usd
        return response

    def prepare(self, model: str) -> None:
        """Check before a spawn that a model is named and the API key variable is set.

        Raises `ConfigError` naming the providers.yaml entry, the field and the variable (never
        its value). The fallback is not checked: it is only needed if this provider fails.
        """
        config = self.config
        if not (model or config.model):
            problem = f"provider '{self.name}' has no model"
            fix = "set model: in the agent template or in the provider's providers.yaml entry"
            raise ConfigError(config.source, "model", problem, fix)
        env = config.api_key_env
        if env and not os.environ.get(env):
            problem = f"environment variable {env} is not set (provider '{self.name}' needs a key)"
            raise ConfigError(config.source, "api_key_env", problem, f"export {env}=<your key>")

    def release(self, pid: int) -> None:
        """Forget the spend recorded for ``pid`` (``total_cost_usd`` keeps it)."""
        with self._lock:
            self._spent.pop(pid, None)

    # -- accounting and lifecycle -------------------------------------------------------------
    def spent(self, pid: int) -> float:
        """USD spent by ``pid`` through this driver (fallbacks included) since it started."""
        with self._lock:
            return self._spent.get(pid, 0.0)

    def close(self) -> None:
        """Close the pooled HTTP connections; the next call opens new ones."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- one provider, then the fallback chain -------------------------------------------------
    def _complete_chain(self, request: LLMRequest, cancel: CancelToken) -> PricedResponse:
        try:
            return self._with_retries(request, cancel)
        except ProviderError as failure:
            if self.fallback is None:
                raise
            log.warning(
                "%s; trying fallback provider '%s'",
                _redact(str(failure), self._key()),
                self.fallback.name,
            )
            # The fallback answers with its own configured model.
            try:
                return self.fallback._complete_chain(attrs.evolve(request, model=""), cancel)
            except ProviderError as second:
                raise ProviderError(
                    failure.provider, failure.status, f"{failure.detail}; then fallback {second}"
                ) from None

    def _with_retries(self, request: LLMRequest, cancel: CancelToken) -> PricedResponse:
        config = self.config
        key = self._key()
        if config.api_key_env and not key:
            detail = f"environment variable {config.api_key_env} is not set; export the API key"
            raise ProviderError(self.name, 0, detail)
        model = request.model or config.model
        if not model:
            raise ProviderError(self.name, 0, "no model: set model: in the template or provider")
        body = json.dumps(
            request_body(request, model, self.config.tool_calling), ensure_ascii=False, default=str
        ).encode()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(body, request, key, cancel)
            except ProviderError as failure:
                last = failure
            note = f"(after {attempt} attempts)" if attempt > 1 else ""
            if not last.retryable or attempt > config.max_retries:
                raise last.noted(note) if note else last
            wait = last.retry_after
            if wait is not None and wait > config.max_retry_wait:
                limit = f"{config.max_retry_wait:g}s"
                raise last.noted(
                    f"(the server asks to retry after {wait:g}s, over max_wait {limit})"
                )
            if wait is None:
                wait = backoff_delay(attempt, config.backoff, config.backoff_max, self._rng)
            left = cancel.remaining()
            if left is not None and wait >= left:
                # Waiting would only end in a step timeout; the fallback may still answer.
                raise last.noted(f"(a retry in {wait:.2f}s would pass the step deadline)")
            log.warning("%s; retry %d of %d in %.2fs", last, attempt, config.max_retries, wait)
            if self._sleep(cancel, wait):
                raise Cancelled(cancel.reason)

    def _key(self) -> str:
        env = self.config.api_key_env
        return os.environ.get(env, "") if env else ""

    # -- one HTTP attempt ---------------------------------------------------------------------
    def _attempt(
        self, body: bytes, request: LLMRequest, key: str, cancel: CancelToken
    ) -> PricedResponse:
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        client = self._http()
        failure: ProviderError | None = None
        try:
            reply = _abandonable(
                lambda: client.post(url, content=body, headers=headers),
                cancel,
                self.config.timeout,
                f"llm-{self.name}-pid{request.pid}",
            )
        except _AttemptTimeout:
            failure = ProviderError(
                self.name, 0, f"timed out after {self.config.timeout:g}s", retryable=True
            )
        except httpx.TimeoutException as exc:
            detail = f"{type(exc).__name__} talking to {url}"
            failure = ProviderError(self.name, 0, detail, retryable=True)
        except httpx.TransportError as exc:
            detail = f"cannot reach {url}: {type(exc).__name__}: {_redact(str(exc), key)}"
            failure = ProviderError(self.name, 0, detail, retryable=True)
        except httpx.HTTPError as exc:
            detail = f"request to {url} failed: {type(exc).__name__}: {_redact(str(exc), key)}"
            failure = ProviderError(self.name, 0, detail)
        # Raised outside the handlers so no httpx exception (whose request carries the key's
        # header) stays attached as __context__.
        if failure is not None:
            raise failure
        return self._read(reply, request, key)

    def _read(self, reply: httpx.Response, request: LLMRequest, key: str) -> PricedResponse:
        status = reply.status_code
        if not 200 <= status < 300:
            retryable = status in (408, 429) or status >= 500
            retry_after = parse_retry_after(reply.headers) if retryable else None
            detail = _redact(error_detail(reply.text, reply.reason_phrase), key)
            raise ProviderError(
                self.name, status, detail, retryable=retryable, retry_after=retry_after
            )
        try:
            return self._parse(reply.json(), request)
        except json.JSONDecodeError as exc:
            detail = f"response is not valid JSON ({exc.msg} at line {exc.lineno})"
        except ValueError as exc:  # not UTF-8
            detail = f"response is not valid JSON text ({exc})"
        except Malformed as exc:
            detail = f"malformed response: {exc}"
        raise ProviderError(self.name, status, _redact(detail, key))

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                config = self.config
                timeout = httpx.Timeout(
                    connect=config.connect_timeout,
                    read=config.read_timeout,
                    write=config.read_timeout,
                    pool=config.connect_timeout,
                )
                self._client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
            return self._client

    def _parse(self, data: Any, request: LLMRequest) -> PricedResponse:
        reply = parse_completion(data, request.step, self.config.tool_calling)
        input_tokens = reply.input_tokens
        if input_tokens is None:
            input_tokens = estimate_input_tokens(request)
        output_tokens = reply.output_tokens
        if output_tokens is None:
            output_tokens = estimate_output_tokens(reply.content, reply.tool_calls)
        calls = reply.tool_calls
        return PricedResponse(
            content=reply.content,
            tool_calls=calls,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            stop_reason=reply.finish_reason or ("tool_calls" if calls else "stop"),
            cost_usd=self.config.cost(input_tokens, output_tokens),
            provider=self.name,
        )


def build_drivers(
    providers: Mapping[str, ProviderConfig],
    *,
    sleep: Sleep = _wait,
    rng: random.Random | None = None,
) -> list[OpenAIChatDriver]:
    """One driver per provider, each wired to its fallback's driver, in ``providers`` order.

    Raises `ConfigError` for an unknown fallback or a fallback cycle (`load_providers` already
    rejects both; configs built in Python are checked here).
    """
    built: dict[str, OpenAIChatDriver] = {}

    def build(name: str, chain: tuple[str, ...]) -> OpenAIChatDriver:
        if name in built:
            return built[name]
        config = providers[name]
        fallback = None
        if config.fallback:
            if config.fallback not in providers:
                problem = f"provider '{name}' falls back to unknown provider '{config.fallback}'"
                raise ConfigError(config.source, "fallback", problem, "fix fallback:")
            if config.fallback in chain:
                loop = " → ".join((*chain, config.fallback))
                raise ConfigError(config.source, "fallback", f"fallback cycle {loop}")
            fallback = build(config.fallback, (*chain, config.fallback))
        built[name] = OpenAIChatDriver(config, fallback=fallback, sleep=sleep, rng=rng)
        return built[name]

    return [build(name, (name,)) for name in providers]


# -- helpers (pure) ------------------------------------------------------------------------------
def _abandonable(fn: Callable[[], _T], cancel: CancelToken, limit: float, name: str) -> _T:
    """Run ``fn`` on a daemon thread; raise `Cancelled` or `_AttemptTimeout` instead of waiting.

    Threads cannot be killed, so on cancel or timeout the worker is left to finish on its own
    (bounded by the HTTP client's timeouts) and its result is dropped.
    """
    outcome: list[_T | Exception] = []
    done = threading.Event()

    def work() -> None:
        try:
            outcome.append(fn())
        except Exception as exc:
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=work, name=name, daemon=True).start()
    deadline = time.monotonic() + limit
    while not done.wait(POLL_SECONDS):
        if cancel.cancelled:
            raise Cancelled(cancel.reason)
        if time.monotonic() >= deadline:
            raise _AttemptTimeout
    if not outcome:
        raise httpx.TransportError("the request thread died without an answer")
    result = outcome[0]
    if isinstance(result, Exception):
        raise result
    return result


def _redact(text: str, key: str) -> str:
    """``text`` without the key, nor any 8-character run of it (providers echo truncated
    keys), nor anything shaped like a key or a bearer token."""
    if key:
        register_secrets([key])
    return redact(text.replace(key, REDACTED) if key else text)
