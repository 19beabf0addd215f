"""`AsyncSupervisorHandle`: a supervision tree started by `AsyncSystem.supervise`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from rnix_actors.supervision.handle import SupervisorHandle
from rnix_actors.supervision.views import SupervisorView


class AsyncSupervisorHandle:
    """The async face of a `SupervisorHandle` (``handle``). ``status`` and ``reason`` are
    plain reads; what asks the supervisor runs off the loop."""

    def __init__(
        self,
        handle: SupervisorHandle,
        call: Callable[..., Awaitable[Any]],
        future: Callable[[], asyncio.Future[Any]],
    ) -> None:
        self.handle = handle
        self.path = handle.path
        self._call = call
        self._future = future

    @property
    def status(self) -> str:
        """running, completed, escalated or stopped."""
        return self.handle.status

    @property
    def reason(self) -> str:
        return self.handle.reason

    async def view(self) -> SupervisorView:
        view: SupervisorView = await self._call(self.handle.view)
        return view

    async def wait(
        self, timeout: float | None = None, *, stop_on_cancel: bool = False
    ) -> SupervisorView:
        """The final view once the tree finished (completed, escalated or stopped). Raises
        `TimeoutError` (the tree keeps running) and `SystemStopped`. Cancelling the awaiting
        task leaves the tree running unless ``stop_on_cancel``."""
        future = self._future()
        loop = future.get_loop()

        def finished(view: SupervisorView) -> None:  # the supervisor's thread, or this one
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(_resolve, future, view)

        self.handle.add_done_callback(finished)
        try:
            async with asyncio.timeout(timeout):
                view: SupervisorView = await future
            return view
        except TimeoutError:
            raise TimeoutError(f"supervisor {self.path} still running after {timeout}s") from None
        except asyncio.CancelledError:
            if stop_on_cancel:
                await asyncio.shield(self._call(self.handle.stop, False, "cancel"))
            raise

    async def stop(self, kill: bool = False, origin: str = "user") -> None:
        """`SupervisorHandle.stop`: the subtree in reverse start order, no restarts."""
        await self._call(self.handle.stop, kill, origin)

    async def start_child(self, intent: str) -> str:
        """simple_one_for_one: start a child of the template spec; returns its name."""
        name: str = await self._call(self.handle.start_child, intent)
        return name


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)
