"""Running a host's ``async def`` brain or device on its event loop, from an agent's thread.

Agents run on their own threads; an async handler must run on the host's loop. `LoopBridge.run`
schedules the coroutine there and blocks the agent thread only while the call lasts. It returns
as soon as the coroutine finishes, and when the process's `CancelToken` fires (SIGKILL, SIGINT,
the step timeout) it cancels the coroutine's task (the handler sees ``CancelledError``) and
raises `Cancelled` without waiting for it.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from rnix_actors.drivers.base import LLMRequest, LLMResponse
from rnix_actors.drivers.python import PythonDriver
from rnix_actors.errors import RnixError
from rnix_actors.kernel.cancel import Cancelled, CancelToken
from rnix_actors.kernel.devices import DeviceCall

T = TypeVar("T")

AsyncBrain = Callable[[LLMRequest], Awaitable[LLMResponse | str]]
AsyncHandler = Callable[[DeviceCall], Awaitable[object]]


def is_async(fn: object) -> bool:
    """True for an ``async def`` function (or an object whose ``__call__`` is one)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - a callable object's method
    )


class LoopClosed(RnixError):
    """The host's event loop is not running: an async brain or device cannot be called."""


class LoopBridge:
    """Runs coroutines on the loop it is bound to, for threads that are not the loop's own."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Use ``loop`` (call from its own thread)."""
        self.loop = loop
        self._loop_thread = threading.get_ident()

    def unbind(self) -> None:
        self.loop = None

    def run(self, coro: Coroutine[Any, Any, T], cancel: CancelToken) -> T:
        """Run ``coro`` on the loop; raise what it raises, `Cancelled` when ``cancel`` fires,
        `LoopClosed` when the loop has stopped."""
        loop = self.loop
        if threading.get_ident() == self._loop_thread:
            coro.close()
            raise RnixError("an async handler was called on its own event loop's thread")
        if cancel.cancelled:
            coro.close()
            raise Cancelled(cancel.reason)
        if loop is None or loop.is_closed() or not loop.is_running():
            coro.close()
            raise LoopClosed("the host's event loop is not running (is the AsyncSystem started?)")
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError as exc:  # closed between the check and the call
            coro.close()
            raise LoopClosed(f"the host's event loop is not running: {exc}") from None
        finished = cancel.child()  # fires when the call ends or when ``cancel`` does
        future.add_done_callback(lambda _: finished.cancel("finished"))
        finished.wait()
        if not future.done():
            future.cancel()  # the task gets CancelledError on the loop; we do not wait for it
            raise Cancelled(cancel.reason or "cancelled")
        return future.result()


class AsyncPythonDriver(PythonDriver):
    """The python driver for an ``async def`` brain: each step runs on the host's loop.

    Everything else (a ``str`` is the final answer, errors become `DriverError`) is the python
    driver's. The brain runs on one loop, so it needs no locks even when many processes use it.
    """

    def __init__(self, name: str, brain: AsyncBrain, bridge: LoopBridge) -> None:
        self._brain = brain
        self._bridge = bridge
        self._local = threading.local()  # the token of the step this thread is running
        super().__init__(name, self._step)

    def complete(self, request: LLMRequest, cancel: CancelToken) -> LLMResponse:
        self._local.cancel = cancel
        try:
            return super().complete(request, cancel)
        finally:
            self._local.cancel = None

    def _step(self, request: LLMRequest) -> LLMResponse | str:
        return self._bridge.run(_coroutine(self._brain(request)), self._local.cancel)


def async_device(handler: AsyncHandler, bridge: LoopBridge) -> Callable[[DeviceCall], object]:
    """A host-device handler that runs ``await handler(call)`` on the host's loop."""

    def handle(call: DeviceCall) -> object:
        return bridge.run(_coroutine(handler(call)), call.cancel)

    return handle


def _coroutine(awaitable: Awaitable[T]) -> Coroutine[Any, Any, T]:
    if asyncio.iscoroutine(awaitable):
        return awaitable
    return _awaited(awaitable)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
