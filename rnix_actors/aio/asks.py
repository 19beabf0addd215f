"""Asking an actor from an event loop without a thread waiting for the answer.

Pykka's ``ask`` hands the actor a future and blocks on it; its futures take no callbacks. Here
the actor gets a `_LoopReply` (a Pykka future) whose ``set`` resolves an asyncio future through
``call_soon_threadsafe``: the loop's thread only enqueues the message, and the actor's thread
answers straight to the loop. This needs Pykka's ``Envelope``, which Pykka does not export;
without it (another Pykka), `ask` falls back to a blocking ask on an executor thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pykka
from pykka import ThreadingFuture

from rnix_actors.errors import SystemStopped, Unresponsive

try:  # which branch runs depends on the installed Pykka
    from pykka._envelope import Envelope

    HAVE_ENVELOPE = True
except ImportError:  # pragma: no cover
    HAVE_ENVELOPE = False


class _LoopReply(ThreadingFuture[Any]):
    """A Pykka future that forwards its one result to an asyncio future."""

    def __init__(self, target: asyncio.Future[Any], what: str) -> None:
        super().__init__()
        self._target = target
        self._loop = target.get_loop()
        self._what = what

    def set(self, value: Any | None = None) -> None:
        self._forward(_set_result, value)

    def set_exception(self, exc_info: Any = None) -> None:
        exc = (exc_info or sys.exc_info())[1]
        if isinstance(exc, pykka.ActorDeadError):
            exc = SystemStopped(f"the system is stopping: the {self._what} is gone")
        self._forward(_set_exception, exc)

    def _forward(self, fn: Callable[[asyncio.Future[Any], Any], None], value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(fn, self._target, value)


def send(ref: pykka.ActorRef[Any], message: Any, what: str) -> asyncio.Future[Any]:
    """Send ``message``; the returned future gets the actor's answer (or its exception, or
    `SystemStopped` if it is gone). Needs `HAVE_ENVELOPE`."""
    target: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    put(ref, message, _LoopReply(target, what), what)
    return target


def put(ref: pykka.ActorRef[Any], message: Any, reply: ThreadingFuture[Any], what: str) -> None:
    """Queue ``message`` for the actor with ``reply`` as the future it answers."""
    if not ref.is_alive():
        raise SystemStopped(f"the system is stopping: the {what} is gone")
    ref.actor_inbox.put(Envelope(message, reply_to=reply))


def unresponsive(what: str, timeout: float) -> Unresponsive:
    return Unresponsive(
        f"the {what} did not answer within {timeout:g}s (overloaded, or stuck behind a long "
        "call); the request may still take effect"
    )


async def answer(future: asyncio.Future[Any], what: str, timeout: float) -> Any:
    """Await a `send` future, `Unresponsive` after ``timeout`` seconds (as the thread API)."""
    try:
        async with asyncio.timeout(timeout):
            return await future
    except TimeoutError:
        raise unresponsive(what, timeout) from None


async def ask(
    ref: pykka.ActorRef[Any],
    message: Any,
    what: str,
    timeout: float,
    fallback: Callable[[], Awaitable[Any]],
) -> Any:
    """The actor's answer to ``message`` (see `send` and `answer`). ``fallback()`` is awaited
    instead when Pykka's envelope is not available."""
    if not HAVE_ENVELOPE:  # pragma: no cover
        return await fallback()
    return await answer(send(ref, message, what), what, timeout)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
