"""Cancellation tokens honoured by long device and LLM calls.

Threads cannot be killed, so a SIGKILL or a step timeout sets a token and every blocking call
(subprocess wait, HTTP request, host callable that cares) polls it or waits on it.
"""

from __future__ import annotations

import threading
import time

# The canceller (the kernel's thread, a timeout) and the waiter (the call's thread) may both
# make a token's Event first: one lock for every token, so each gets one Event, not two.
_EVENT_LOCK = threading.Lock()


class Cancelled(Exception):
    """Raised by `CancelToken.raise_if_cancelled` when the token fired."""


class CancelToken:
    """A thread-safe, one-way cancellation flag with an optional deadline.

    ``child(timeout)`` makes a token that fires when this one fires or when its own deadline
    passes (used for the per-step timeout).
    """

    __slots__ = ("_deadline", "_event", "_fired", "_parent", "_reason")

    def __init__(self, deadline: float | None = None, parent: CancelToken | None = None) -> None:
        # The Event is made on first need: most tokens (one per syscall) are never waited on.
        self._event: threading.Event | None = None
        self._fired = False
        self._deadline = deadline
        self._parent = parent
        self._reason = ""

    def _get_event(self) -> threading.Event:
        event = self._event
        if event is None:
            with _EVENT_LOCK:
                if self._event is None:
                    self._event = threading.Event()
                    if self._fired:
                        self._event.set()
                event = self._event
        return event

    def cancel(self, reason: str = "cancelled") -> None:
        if not self._fired:
            self._reason = reason
            self._fired = True
            self._get_event().set()

    @property
    def cancelled(self) -> bool:
        if self._fired:
            return True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.cancel("timeout")
            return True
        if self._parent is not None and self._parent.cancelled:
            self.cancel(self._parent.reason)
            return True
        return False

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def timed_out(self) -> bool:
        return self.cancelled and self._reason == "timeout"

    def remaining(self) -> float | None:
        """Seconds until the deadline (of this token or its parents), or None for no deadline."""
        deadlines = []
        token: CancelToken | None = self
        while token is not None:
            if token._deadline is not None:
                deadlines.append(token._deadline)
            token = token._parent
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds (and never past the deadline); True if cancelled."""
        step = 0.05
        end = None if timeout is None else time.monotonic() + timeout
        while not self.cancelled:
            left = step if end is None else min(step, end - time.monotonic())
            if left <= 0:
                return False
            self._get_event().wait(left)
        return True

    def raise_if_cancelled(self) -> None:
        if self.cancelled:
            raise Cancelled(self._reason)

    def child(self, timeout: float | None = None) -> CancelToken:
        deadline = None if timeout is None or timeout <= 0 else time.monotonic() + timeout
        return CancelToken(deadline=deadline, parent=self)
