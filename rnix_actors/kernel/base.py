"""The common base actor: every crash path of Pykka becomes a typed report.

Pykka has no supervision. An exception while handling a ``tell`` stops the actor and calls
``on_failure``; one in ``on_start`` stops it without ``on_failure``; ``SystemExit`` or
``KeyboardInterrupt`` anywhere stops *every* actor. `RnixActor` closes those holes: it converts
``BaseException`` into `ActorCrashed` so it never escapes, and calls `crashed` exactly once on
any fatal path so the subclass can tell its owner (the kernel, a supervisor) in a typed message.

Every path that ends an actor (a normal stop, a crash in ``on_start`` or while handling a
``tell``, a `Fatal` ask) ends its `Endpoint` with a typed `ExitReason`, from the actor's own
thread: that is what delivers the exit to its links and monitors (`rnix_actors.kernel.links`).
An exit signal from a link ends an actor that does not trap exits with the same reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pykka

from rnix_actors.kernel import links
from rnix_actors.kernel.links import Endpoint
from rnix_actors.messages.links import Exit, ExitKind, ExitReason, ExitSignal

log = logging.getLogger(__name__)


class ActorCrashed(Exception):
    """Raised in place of a ``BaseException`` (SystemExit, KeyboardInterrupt...) in an actor."""


class Fatal(Exception):
    """Raise from `RnixActor.handle` during an ``ask`` to stop the actor, not only the caller."""


class ThreadTracker:
    """Remembers the threads of a system's actors so that stopping the system can join them."""

    def __init__(self) -> None:
        # Each actor's thread adds itself (on_start) while the stopping caller's thread lists
        # the threads to join: no actor can own the list, since every actor writes it.
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._prune_at = 64

    def add(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.append(thread)
            # Prune finished threads now and then, not on every add (quadratic with 10k actors).
            if len(self._threads) >= self._prune_at:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._prune_at = max(64, 2 * len(self._threads))

    def owns(self, thread: threading.Thread) -> bool:
        """True when ``thread`` runs (or ran) one of this system's actors."""
        with self._lock:
            return thread in self._threads

    def join(
        self, timeout: float, exclude: frozenset[threading.Thread] = frozenset()
    ) -> list[threading.Thread]:
        """Join the tracked threads (but ``exclude``) within ``timeout`` seconds; return those
        still alive."""
        end = time.monotonic() + timeout
        with self._lock:
            threads = [t for t in self._threads if t not in exclude]
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, end - time.monotonic()))
        return [t for t in threads if t.is_alive()]


Launch = Callable[[str, Callable[[], "pykka.ActorRef[Any]"]], Any]
"""How a subsystem starts its actor: ``launch(name, start)`` returns the ref to use. The
`System` passes its application supervisor's, which runs ``start`` again after a crash and
returns a `rnix_actors.app.ServiceRef`; alone, `launch_here` starts it once."""


def launch_here(name: str, start: Callable[[], pykka.ActorRef[Any]]) -> Any:
    """Start the actor, unsupervised (tests, embedding one subsystem alone)."""
    return start()


STOPPED_UNSAID = ExitReason(ExitKind.KILLED, "", "stopped without a reason")

# The actor each thread runs (a pooled agent thread: the one it runs now), so that an ask can
# tell it would wait on its own thread (`rnix_actors.kernel.asking.ask`).
_running = threading.local()


def current_actor_urn() -> str | None:
    """The URN of the rnix actor that runs on this thread, or None."""
    urn: str | None = getattr(_running, "urn", None)
    return urn


class RnixActor(pykka.ThreadingActor):
    """Base of every rnix actor. Subclasses implement `handle`, and may implement `started`,
    `stopped`, `crashed` and `exit_signalled`.

    Set ``exit_reason`` before calling ``stop()`` to say why the actor ends; an actor stopped
    without one ends ``killed`` (a supervisor restarts it)."""

    thread: threading.Thread | None = None

    def __init__(
        self, tracker: ThreadTracker | None = None, endpoint: Endpoint | None = None
    ) -> None:
        super().__init__()
        self._crash_reported = False
        self._at_end: list[Callable[[], None]] = []
        self._tracker = tracker
        self.exit_reason: ExitReason | None = None
        self.endpoint = endpoint if endpoint is not None else Endpoint(type(self).__name__)
        self.endpoint.ref = self.actor_ref

    # -- hooks for subclasses -------------------------------------------------------------
    def started(self) -> None:
        """Run in the actor's thread before any message is handled."""

    def handle(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise NotImplementedError

    def crashed(self, where: str, exc: BaseException) -> None:
        """Report a fatal failure (called at most once, in the actor's thread)."""
        log.error("%s crashed in %s: %r", self, where, exc)

    def stopped(self) -> None:
        """Run in the actor's thread when it stops normally, before its links hear of it."""

    def exit_signalled(self, exit: Exit) -> None:
        """A linked actor ended abnormally and this one does not trap exits: it is about to
        stop with the same reason (``exit.reason``). Tell whoever must know."""

    def at_end(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once when this actor ends, however it ends (stopped, crashed, or
        failed to start), before its links hear of it: where it closes what it owns."""
        self._at_end.append(hook)

    def unhandled(self, message: Any) -> None:
        """A message no case matched: logged, never silently dropped."""
        log.warning(
            "%s: unexpected message %s dropped", type(self).__name__, type(message).__name__
        )

    # -- Pykka plumbing -------------------------------------------------------------------
    def on_start(self) -> None:
        self.thread = threading.current_thread()
        _running.urn = self.actor_urn
        if self._tracker is not None:
            self._tracker.add(self.thread)
        try:
            self.started()
        except BaseException as exc:
            self._report("on_start", exc)
            raise ActorCrashed(f"{type(exc).__name__} in on_start: {exc}") from None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ExitSignal):
            self._die_of(message.exit)
            return None
        try:
            return self.handle(message)
        except Fatal as exc:
            self._report("ask", exc)
            self.stop()
            raise
        except Exception:
            raise
        except BaseException as exc:
            raise ActorCrashed(f"{type(exc).__name__}: {exc}") from None

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._report("tell", exception_value or RuntimeError("unknown failure"))

    def on_stop(self) -> None:
        try:
            self.stopped()
        finally:
            self._ended()
            signalled = self.endpoint.signalled
            default = STOPPED_UNSAID if signalled is None else signalled.reason
            links.exit(self.endpoint, self.exit_reason or default)

    def _die_of(self, exit: Exit) -> None:
        if self.exit_reason is None:  # it may have ended on its own just before
            self.exit_reason = exit.reason
        try:
            self.exit_signalled(exit)
        except Exception:
            log.exception("%s: exit signal handling failed", self)
        self.stop()

    def _report(self, where: str, exc: BaseException) -> None:
        if self._crash_reported:
            return
        self._crash_reported = True
        try:
            self.crashed(where, exc)
        except Exception:  # the report itself must not take the thread down
            log.exception("%s: crash report failed", self)
        finally:
            self._ended()
            detail = f"crashed in {where}: {type(exc).__name__}: {exc}"
            links.exit(self.endpoint, self.exit_reason or ExitReason(ExitKind.ERROR, "", detail))

    def _ended(self) -> None:
        hooks, self._at_end = self._at_end, []
        for hook in hooks:
            try:
                hook()
            except Exception:  # one failed close must not keep the others open
                log.exception("%s: an end hook failed", self)
