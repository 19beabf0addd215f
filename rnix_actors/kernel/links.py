"""Links and monitors between actors (Pykka has neither; this is Erlang's model).

Every `RnixActor` owns an `Endpoint`. `link(a, b)` is bidirectional: when one side ends with
a reason other than ``normal``, the other gets an exit signal. An actor that traps exits
receives it as an `Exit` message; any other actor ends with the same reason. `monitor(w, t)`
is one-way and never kills: the watcher gets a `Down` message when the target ends.

The notices are sent by the dying actor's own teardown (`exit`, called from its thread: see
`RnixActor`), straight to every linked and monitoring actor; nobody relays them. A link or
monitor made to an actor that is already dead delivers ``noproc`` at once, as in OTP, so no
exit can fall between "it started" and "I am watching it".

One module lock guards every link set: linking, unlinking and dying are short and rare next to
the messages actors exchange, and a single lock makes "link or be told it is dead" atomic
without a lock-ordering rule.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka

from rnix_actors.messages.links import Down, Exit, ExitClass, ExitKind, ExitReason, ExitSignal

log = logging.getLogger(__name__)

# Every Endpoint's link and monitor sets: changed by whichever actor's thread links, and
# by the dying actor's own thread (see the module doc for why one lock).
_lock = threading.Lock()
_refs = itertools.count(1)


class Endpoint:
    """One actor's side of its links and monitors.

    ``pid`` is set for agent processes. ``trap_exit`` turns exit signals into `Exit`
    messages. ``on_signal`` (optional, called on the *sender's* thread, so it must be
    thread-safe) lets an actor react at once to an exit signal that will end it, e.g. cancel
    the call it is blocked in. ``result`` is what the actor leaves behind for those it
    notifies (a supervisor's final view).
    """

    def __init__(self, label: str, pid: int | None = None) -> None:
        self.label = label
        self.pid = pid
        self.ref: pykka.ActorRef[Any] | None = None
        self.trap_exit = False
        self.on_signal: Callable[[Exit], None] | None = None
        self.result: Any = None
        self.alive = True
        self.reason: ExitReason | None = None
        self.signalled: Exit | None = None  # the exit signal that is ending this actor
        self._links: set[Endpoint] = set()
        self._watchers: dict[int, Endpoint] = {}  # monitor ref -> who watches me
        self._watching: dict[int, Endpoint] = {}  # monitor ref -> whom I watch
        self._dead = threading.Event()

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"dead ({self.reason})"
        return f"<Endpoint {self.label} {state}>"

    @property
    def links(self) -> frozenset[Endpoint]:
        with _lock:
            return frozenset(self._links)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until this actor has ended (True) or ``timeout`` passed (False)."""
        return self._dead.wait(timeout)

    # -- delivery (never under the lock: a tell may run arbitrary code) ----------------------
    def _post(self, message: object) -> None:
        ref = self.ref
        if ref is None:
            return
        with contextlib.suppress(pykka.ActorDeadError):  # ended meanwhile: its exit is on its way
            ref.tell(message)

    def _signal(self, exit: Exit) -> None:
        if self.trap_exit:
            self._post(exit)
            return
        if exit.reason.exit_class is ExitClass.NORMAL:
            return  # as in OTP: a normal exit does not take linked actors down
        with _lock:
            if not self.alive or self.signalled is not None:
                return
            self.signalled = exit
        hook = self.on_signal
        if hook is not None:
            try:
                hook(exit)
            except Exception:
                log.exception("%s: exit signal hook failed", self.label)
        self._post(ExitSignal(exit))


def link(a: Endpoint, b: Endpoint) -> None:
    """Link ``a`` and ``b``. If ``b`` is already dead, ``a`` gets an exit signal with reason
    ``noproc`` at once (an `Exit` message if it traps exits; otherwise it ends)."""
    if a is b:
        return
    with _lock:
        if a.alive and b.alive:
            a._links.add(b)
            b._links.add(a)
            return
        if not a.alive:
            return
        dead = b
    a._signal(_noproc(dead))


def unlink(a: Endpoint, b: Endpoint) -> None:
    with _lock:
        a._links.discard(b)
        b._links.discard(a)


def monitor(watcher: Endpoint, target: Endpoint) -> int:
    """``watcher`` gets ``Down(ref, target, reason)`` when ``target`` ends, or at once with
    ``noproc`` if it already has. Returns the ``ref``."""
    ref = next(_refs)
    with _lock:
        if target.alive:
            target._watchers[ref] = watcher
            watcher._watching[ref] = target
            return ref
    watcher._post(Down(ref, target, _noproc(target).reason, target.pid, target.result))
    return ref


def demonitor(watcher: Endpoint, ref: int) -> None:
    with _lock:
        target = watcher._watching.pop(ref, None)
        if target is not None:
            target._watchers.pop(ref, None)


def exit(endpoint: Endpoint, reason: ExitReason) -> bool:
    """``endpoint``'s actor has ended with ``reason``: signal its links and tell its
    monitors. The first call wins (later ones return False), so every path that ends an
    actor may call it."""
    with _lock:
        if not endpoint.alive:
            return False
        endpoint.alive = False
        endpoint.reason = reason
        linked, endpoint._links = endpoint._links, set()
        watchers, endpoint._watchers = endpoint._watchers, {}
        for other in linked:
            other._links.discard(endpoint)
        for ref, target in endpoint._watching.items():
            target._watchers.pop(ref, None)
        endpoint._watching = {}
        for ref, watcher in watchers.items():
            watcher._watching.pop(ref, None)
    notice = Exit(endpoint, reason, endpoint.pid, endpoint.result)
    for other in linked:
        other._signal(notice)
    for ref, watcher in watchers.items():
        watcher._post(Down(ref, endpoint, reason, endpoint.pid, endpoint.result))
    endpoint._dead.set()  # after the notices: whoever waited for it finds them queued
    return True


def _noproc(dead: Endpoint) -> Exit:
    detail = f"{dead.label} was not running" + (f" ({dead.reason})" if dead.reason else "")
    return Exit(dead, ExitReason(ExitKind.NOPROC, "", detail), dead.pid, dead.result)
