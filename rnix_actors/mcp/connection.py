"""One supervised MCP session per server, on the MCP event loop (the SDK is asyncio/anyio).

`ServerConnection` owns a task that opens the server with the official SDK (``mcp.Client``
over ``stdio_client`` or ``streamable_http_client``), lists its tools, resources and prompts,
and holds the session until the system stops or the server goes away. A server that dies (its
process exits, its stream ends, a call finds the connection broken) is reopened with
exponential backoff and jitter; the calls in flight get a clear error, and a call that arrives
meanwhile ends the backoff wait and gets the next attempt. After `GIVE_UP_AFTER` failed starts
in a row the server is ``failed`` and retried only when a call needs it. Every method here
runs on the loop's thread.

Values of environment variables and headers are read when a connection opens, handed to the
SDK, and scrubbed from every error text (`Secrets`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import IO, Any, Literal, TextIO, TypeVar, cast

import anyio
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from rnix_actors.drivers.providers import backoff_delay
from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.mcp.config import EnvRef, McpServerConfig

log = logging.getLogger(__name__)

BACKOFF_BASE = 0.25  # first restart wait in seconds, doubling per failure in a row
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # a connection up this long resets the failure streak
GIVE_UP_AFTER = 5  # failed starts in a row before retrying only when a call needs the server
STDERR_TAIL = 600  # characters of a server's stderr quoted when it fails to start
REDACTED = "[REDACTED]"

State = Literal["stopped", "starting", "running", "restarting", "failed"]
_T = TypeVar("_T")


class Secrets:
    """The values this server was given; `scrub` removes each from a text."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def scrub(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


class Unavailable(DeviceError):
    """The server cannot take the call now (not started, restarting, stopped)."""


class ServerConnection:
    """The session of one server. ``tools``, ``resources`` and ``prompts`` are replaced whole
    on each (re)connection, so other threads may read them without a lock."""

    def __init__(self, config: McpServerConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.state: State = "stopped"
        self.tools: dict[str, types.Tool] = {}
        self.resources: tuple[types.Resource, ...] = ()
        self.prompts: tuple[types.Prompt, ...] = ()
        self.last_error = ""
        self.restarts = 0
        self.secrets = Secrets()
        self._rng = rng or random.Random()
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()  # set (and replaced) whenever the state changes
        self._stop = asyncio.Event()
        self._broken = asyncio.Event()
        self._wake = asyncio.Event()  # a call wants the server now (ends a backoff wait)
        self._failures = 0  # failed connection attempts, ever (calls compare it)
        self._streak = 0  # failures in a row, for the backoff

    @property
    def device(self) -> str:
        return self.config.device

    # -- lifecycle ---------------------------------------------------------------------------
    def ensure_started(self) -> None:
        if self._task is None and not self._stop.is_set():
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"mcp-{self.config.name}"
            )

    async def stop(self, timeout: float) -> None:
        """Close the session (a stdio server's process is ended by the SDK) and stop the task."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._set("stopped")

    def _set(self, state: State) -> None:
        self.state = state
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._set("starting")
            opened_at = None
            try:
                opened_at = await self._hold()
            except Exception as exc:  # any failure to open or to hold the session
                self.last_error = self._describe(exc)
                log.warning("MCP server '%s': %s", self.config.name, self.last_error)
            if self._stop.is_set():
                break
            if opened_at is None:
                self._failures += 1
            stable = opened_at is not None and time.monotonic() - opened_at >= STABLE_AFTER
            self._streak = 0 if stable else self._streak + 1
            self.restarts += 1
            if opened_at is None and self._streak >= GIVE_UP_AFTER:
                # Down for good, it seems: no more retries until a call needs the server.
                self._set("failed")
                await _first_of(self._stop.wait(), self._wake.wait())
                continue
            self._set("restarting")
            delay = backoff_delay(max(self._streak, 1), BACKOFF_BASE, BACKOFF_MAX, self._rng)
            # A call that needs the server cuts the wait short: it gets the next attempt now.
            await _first_of(self._stop.wait(), self._wake.wait(), asyncio.sleep(delay))

    async def _hold(self) -> float | None:
        """Open the session, publish it, hold it until stop or breakage; return when it
        opened (None if it never did)."""
        closed = anyio.Event()
        opened_at = None
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
            # No read timeout of the SDK's own: `request` bounds each call.
            client = Client(_watched(self._transport(errlog), closed))
            try:
                # The handshake has a deadline; the session, once open, has none.
                with anyio.CancelScope(
                    deadline=anyio.current_time() + self.config.start_timeout
                ) as scope:
                    async with client:
                        await self._catalogue(client)
                        scope.deadline = math.inf
                        opened_at = time.monotonic()
                        self._client = client
                        self.last_error = ""
                        self._set("running")
                        await _first_of(self._stop.wait(), self._broken.wait(), closed.wait())
                        self._client = None
                        if closed.is_set() and not self._stop.is_set():
                            self.last_error = "the server closed the connection"
                if scope.cancelled_caught and opened_at is None:
                    raise TimeoutError
            except Exception as exc:
                tail = self.secrets.scrub(_tail(errlog))
                if opened_at is None and tail:
                    raise _Failed(
                        f"{_what(exc, self.config.start_timeout)}; stderr: {tail}"
                    ) from exc
                raise
            finally:
                self._client = None
                self._broken.clear()
        return opened_at

    def _transport(self, errlog: IO[str]) -> Any:
        config = self.config
        if config.transport == "http":
            headers = {
                name: self._resolve(ref, f"headers.{name}") for name, ref in config.headers.items()
            }
            client = httpx2.AsyncClient(
                headers=headers,
                timeout=httpx2.Timeout(config.timeout, read=max(config.timeout, 300.0)),
            )
            return _owning(client, streamable_http_client(config.url, http_client=client))
        env = {name: self._resolve(ref, f"env.{name}") for name, ref in config.env.items()}
        params = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env=env,
            cwd=None if config.cwd is None else str(config.cwd),
        )
        return stdio_client(params, errlog=cast(TextIO, errlog))

    def _resolve(self, ref: EnvRef, field: str) -> str:
        value = os.environ.get(ref.var)
        if value is None:
            raise _Failed(
                f"environment variable {ref.var} is not set (needed by {field} of server "
                f"'{self.config.name}' in {self.config.source}); export it and call again"
            )
        self.secrets.values.add(value)
        return ref.prefix + value

    async def _catalogue(self, client: Client) -> None:
        tools: dict[str, types.Tool] = {}
        cursor: str | None = None
        for _ in range(100):  # a server that pages forever cannot hang the connection
            page = await client.list_tools(cursor=cursor)
            tools.update((tool.name, tool) for tool in page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        caps = client.server_capabilities
        self.tools = tools
        self.resources = tuple((await client.list_resources()).resources) if caps.resources else ()
        self.prompts = tuple((await client.list_prompts()).prompts) if caps.prompts else ()

    def _describe(self, exc: BaseException) -> str:
        return self.secrets.scrub(_what(exc, self.config.start_timeout))

    # -- calls -------------------------------------------------------------------------------
    async def connected(self, timeout: float) -> Client:
        """The live session, waiting (up to ``timeout``) for a start or restart in progress.

        Raises `Unavailable` when the attempt it waited for failed, or on timeout.
        """
        self.ensure_started()
        if self._client is None and self.state in ("restarting", "failed"):
            self._wake.set()
        seen = self._failures
        deadline = time.monotonic() + timeout
        while self._client is None:
            if self._stop.is_set():
                raise self._unavailable("the MCP service is stopped")
            if self._failures > seen:
                raise self._unavailable(f"it failed to start: {self.last_error}")
            changed = self._changed
            left = deadline - time.monotonic()
            try:
                await asyncio.wait_for(changed.wait(), left if left > 0 else 0)
            except TimeoutError:
                why = f" (last error: {self.last_error})" if self.last_error else ""
                ready = f"it did not become ready within {timeout:g}s{why}"
                raise self._unavailable(ready) from None
        return self._client

    def _unavailable(self, why: str) -> Unavailable:
        message = f"MCP server '{self.config.name}' is not available: {self.secrets.scrub(why)}"
        return Unavailable(ErrorCode.INTERNAL, self.device, message)

    async def request(
        self,
        path: str,
        what: str,
        send: Callable[[Client], Awaitable[_T]],
        timeout: float,
        start_timeout: float,
    ) -> _T:
        """Run ``send`` on the session within ``timeout`` seconds, once the session is up
        (waiting up to ``start_timeout`` for it); map every failure to a `DeviceError` for
        ``path`` (``what`` names the tool or resource in messages)."""
        client = await self.connected(start_timeout)
        name = self.config.name
        try:
            async with asyncio.timeout(timeout):
                return await send(client)
        except TimeoutError:
            message = f"{what} on MCP server '{name}' did not answer within {timeout:g}s"
            raise DeviceError(ErrorCode.TIMEOUT, path, message) from None
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                self._broken.set()
                message = (
                    f"MCP server '{name}' went away during {what} (connection closed); it is "
                    "being restarted, so the call may be retried"
                )
                raise DeviceError(ErrorCode.INTERNAL, path, message) from None
            code = ErrorCode.INVALID if exc.code == types.INVALID_PARAMS else ErrorCode.INTERNAL
            detail = self.secrets.scrub(exc.message)
            raise DeviceError(
                code, path, f"{what} failed on MCP server '{name}': {detail}"
            ) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, httpx2.TransportError) as exc:
            self._broken.set()
            detail = self._describe(exc)
            message = f"MCP server '{name}' is unreachable during {what} ({detail}); reconnecting"
            raise DeviceError(ErrorCode.INTERNAL, path, message) from None


class _Failed(Exception):
    """A connection attempt failed for a reason already worded for the user."""


def _what(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, _Failed):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"no answer to the MCP handshake within {timeout:g}s"
    if isinstance(exc, FileNotFoundError):
        return f"cannot run the command: {exc.strerror or exc} ({exc.filename})"
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _what(exc.exceptions[0], timeout)
    if isinstance(exc, MCPError) and exc.code == types.CONNECTION_CLOSED:
        return "the server closed the connection before the MCP handshake ended"
    if isinstance(exc, MCPError):
        return f"MCP error {exc.code}: {exc.message}"
    text = str(exc) or "no details"
    return f"{type(exc).__name__}: {text}"


def _tail(errlog: IO[str]) -> str:
    try:
        errlog.seek(0)
        text = errlog.read()
    except (OSError, ValueError):
        return ""
    text = " ".join(text.split())
    return text[-STDERR_TAIL:]


async def _first_of(*waits: Awaitable[Any]) -> None:
    """Return when the first of ``waits`` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def _owning(client: httpx2.AsyncClient, transport: Any) -> AsyncIterator[Any]:
    async with client, transport as streams:
        yield streams


class _WatchedRead:
    """A read stream that sets ``closed`` when the server's side of it ends."""

    def __init__(self, inner: Any, closed: anyio.Event) -> None:
        self._inner = inner
        self._closed = closed

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._closed.set()
            raise

    def __aiter__(self) -> _WatchedRead:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._inner.__anext__()
        except StopAsyncIteration:
            self._closed.set()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _WatchedRead:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        result: bool | None = await self._inner.__aexit__(*exc)
        return result


@asynccontextmanager
async def _watched(transport: Any, closed: anyio.Event) -> AsyncIterator[Any]:
    async with transport as (read, write):
        yield _WatchedRead(read, closed), write
