"""The MCP event loop: one asyncio loop on one thread, shared by every server of a system.

Agents are threads; the SDK is asyncio. `EventLoopThread.run` hands a coroutine to the loop
with ``asyncio.run_coroutine_threadsafe`` and blocks the calling thread until it finishes or
the call's `CancelToken` fires, in which case the coroutine is cancelled on the loop (the SDK
then tells the server the request is cancelled) and `Cancelled` is raised at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from rnix_actors.cancel import Cancelled, CancelToken
from rnix_actors.errors import SystemStopped

POLL_SECONDS = 0.02  # how often a waiting thread looks at its cancel token
_T = TypeVar("_T")


class EventLoopThread:
    """Started by `start`, stopped by `stop` (which first awaits ``on_stop`` on the loop)."""

    def __init__(self, name: str = "rnix-mcp-loop") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._done: asyncio.Event | None = None
        # `start` and `stop` come from the threads that start and stop the system: the loop's
        # thread is started once and joined once.
        self._lock = threading.Lock()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            ready = threading.Event()
            self._thread = threading.Thread(
                target=self._main, args=(ready,), name=self.name, daemon=True
            )
            self._thread.start()
            if not ready.wait(10):
                raise RuntimeError("the MCP event loop did not start")

    def _main(self, ready: threading.Event) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._done = asyncio.Event()
            ready.set()
            await self._done.wait()

        try:
            asyncio.run(serve())  # also shuts down the loop's executor threads
        finally:
            self._loop = None
            ready.set()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        loop = self._loop
        if loop is None:
            coro.close()
            raise SystemStopped("the MCP event loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def run(self, coro: Coroutine[Any, Any, _T], cancel: CancelToken | None = None) -> _T:
        """Run ``coro`` on the loop and wait for it from this (non-loop) thread.

        Raises what the coroutine raised, or `Cancelled` as soon as ``cancel`` fires.
        """
        future = self.submit(coro)
        if cancel is None:
            return future.result()
        while True:
            try:
                return future.result(POLL_SECONDS)
            except concurrent.futures.TimeoutError:
                if future.done():
                    raise  # the coroutine's own TimeoutError
                if cancel.cancelled:
                    future.cancel()
                    raise Cancelled(cancel.reason) from None

    def stop(self, on_stop: Callable[[], Awaitable[None]] | None, timeout: float) -> None:
        """Await ``on_stop()`` on the loop, end the loop and join its thread."""
        with self._lock:
            thread, loop, done = self._thread, self._loop, self._done
            self._thread = None
        if thread is None:
            return
        if loop is not None and done is not None:
            if on_stop is not None:
                # What did not close in time is abandoned with the loop.
                with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                    asyncio.run_coroutine_threadsafe(_call(on_stop), loop).result(timeout)
            loop.call_soon_threadsafe(done.set)
        thread.join(timeout)


async def _call(fn: Callable[[], Awaitable[None]]) -> None:
    await fn()
