"""The immune system: behaviour baselines, anomaly detection, threat memory.

    from rnix_actors.immune import attach_immune, immune_config_from

    with System(project) as system:
        immune = attach_immune(system, immune_config_from(system.config), system.store)
        pid = system.spawn("code-analyst", "review")   # guards apply to later spawns
        print(immune.status_text())
        immune.stop()

`attach_immune` installs one guard (checks in each agent's thread, against an immutable
profile snapshot) and one event subscription (lifecycle events to the `ImmuneDaemon` actor,
which learns, remembers threats, keeps alerts and persists them). See ``docs/immune.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import attrs
import pykka

from rnix_actors.errors import SystemStopped
from rnix_actors.immune.config import ImmuneConfig, immune_config_from
from rnix_actors.immune.daemon import FORWARDED, ImmuneDaemon, settings_of
from rnix_actors.immune.guard import ImmuneGuard, Shared, Snapshot, tell_report
from rnix_actors.immune.host import Cancellable, ImmuneHost
from rnix_actors.immune.live import LiveView, live_view
from rnix_actors.immune.persistence import ImmuneStore
from rnix_actors.immune.sandboxview import SandboxView, live_sandbox_view
from rnix_actors.immune.status import ImmuneStatus
from rnix_actors.kernel.asking import unresponsive
from rnix_actors.kernel.base import Launch, launch_here
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.messages.events import Event
from rnix_actors.messages.guards import Guard
from rnix_actors.messages.immune import ClearAlerts, ForgetThreats, QueryStatus, ResumeProcess
from rnix_actors.store.db import Store, with_own_connection

ASK_TIMEOUT = 10.0

__all__ = [
    "Immune",
    "ImmuneConfig",
    "ImmuneHost",
    "ImmuneStatus",
    "LiveView",
    "attach_immune",
    "immune_config_from",
]


class Immune:
    """A thin handle on an attached immune system (or a disabled one). Thread-safe.

    Methods raise `SystemStopped` after `stop`, and `TimeoutError` if the daemon does not
    answer within 10 s.
    """

    def __init__(
        self,
        config: ImmuneConfig,
        host: ImmuneHost,
        daemon: pykka.ActorRef[ImmuneDaemon] | None = None,
        shared: Shared | None = None,
        subscription: Cancellable | None = None,
        guard: Guard | None = None,
        sandbox: Callable[[], SandboxView | None] | None = None,
    ) -> None:
        self.config = config
        self._sandbox = sandbox
        self._host = host
        self._daemon = daemon
        self._shared = shared
        self._subscription = subscription
        self._guard = guard
        self._stopped = False

    @property
    def mode(self) -> str:
        """``warn-only``, ``enforce`` or ``disabled``."""
        return self.config.mode

    def status(self) -> ImmuneStatus:
        """Mode, monitored processes, active alerts, suspended processes, threat memory."""
        if self._daemon is None and not self._stopped:
            status = ImmuneStatus.disabled()
        else:
            status = self._ask(QueryStatus())
        if self._sandbox is None:
            return status
        return attrs.evolve(status, sandbox=self._sandbox())

    def live(self, pid: int) -> LiveView | None:
        """The figures of running process ``pid`` so far against its template's baseline
        (without asking the daemon: never waits); None when disabled, stopped, or the
        process made no call the guard saw (or has finished)."""
        shared = self._shared
        if shared is None or self._stopped:
            return None
        return live_view(shared, pid)

    def status_text(self) -> str:
        """The status in the shape of ``rnix immune status``."""
        return self.status().text()

    def resume(self, pid: int, *, retry: bool = False) -> str:
        """Learn ``pid``'s run (its alerts are cleared; it enters the baseline when it
        completes) and resume it and its subtree. The call the guard refused is skipped (the
        agent goes on with the refusal as that call's result), or with ``retry`` run again,
        now allowed. Raises `NoSuchProcess` for an unknown pid."""
        if self._daemon is None:
            return self._host.resume(pid, origin="user", retry=retry)
        return str(self._ask(ResumeProcess(pid, retry)))

    def learn(self, pid: int) -> int:
        """``pid``'s run was normal: clear its alerts, forget the threat signatures they
        created, and learn the run into the baseline (now if it finished, else when it
        does). Returns how many alerts were active."""
        if self._daemon is None:
            return 0
        return int(self._ask(ClearAlerts(pid, learn=True)))

    def dismiss(self, pid: int) -> int:
        """Clear ``pid``'s alerts without learning its run (it stays out of the baseline) and
        without forgetting threat signatures. Returns how many alerts were active."""
        if self._daemon is None:
            return 0
        return int(self._ask(ClearAlerts(pid, learn=False)))

    def clear(self, pid: int) -> int:
        """The same as `learn` (the name of earlier versions)."""
        return self.learn(pid)

    def forget(self, name: str | None = None, *, all: bool = False) -> int:
        """Forget the threat signature ``name`` (or every one with ``all=True``); returns
        how many were forgotten. Raises `ValueError` when given neither."""
        if name is None and not all:
            raise ValueError("forget needs a signature name or all=True")
        if self._daemon is None:
            return 0
        return int(self._ask(ForgetThreats(name, all)))

    def stop(self) -> None:
        """Stop monitoring: unsubscribe, make the guard inert (running processes keep it)
        and uninstall it (new ones do not get it), stop the daemon. Idempotent."""
        daemon, self._daemon = self._daemon, None
        self._stopped = self._stopped or daemon is not None
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        if self._shared is not None:
            self._shared.snapshot = attrs.evolve(self._shared.snapshot, stopped=True)
        guard, self._guard = self._guard, None
        if guard is not None:
            # A system that is stopping has no kernel to ask, and no process to spawn.
            with contextlib.suppress(SystemStopped, pykka.ActorDeadError, pykka.Timeout):
                self._host.remove_guard(guard)
        if daemon is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                daemon.stop(timeout=ASK_TIMEOUT)

    def __enter__(self) -> Immune:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ask(self, message: object) -> Any:
        daemon = self._daemon
        if daemon is None:
            raise SystemStopped("the immune daemon is stopped")
        try:
            return daemon.ask(message, timeout=ASK_TIMEOUT)
        except pykka.ActorDeadError:
            raise SystemStopped("the immune daemon is not running") from None
        except pykka.Timeout:
            raise unresponsive("immune daemon", ASK_TIMEOUT) from None


def _forwarder(ref: pykka.ActorRef[ImmuneDaemon]) -> Callable[[Event], None]:
    """The event-bus subscriber: only lifecycle events travel to the daemon."""
    tell = ref.tell

    def forward(event: Event) -> None:
        if event.syscall in FORWARDED:
            with contextlib.suppress(pykka.ActorDeadError):
                tell(event)

    return forward


def attach_immune(
    host: ImmuneHost, config: ImmuneConfig, store: Store, launch: Launch = launch_here
) -> Immune:
    """Start monitoring ``host``; processes spawned from now on are checked.

    Disabled config: installs nothing and returns a handle whose status is empty. Raises
    `RuntimeError` if the store's immune schema is newer than this code and `sqlite3.Error`
    if the tables cannot be read; nothing is left started on failure.
    """
    sandbox = _sandbox_of(host)
    if not config.enabled:
        return Immune(config, host, sandbox=sandbox)
    shared = Shared(Snapshot(settings=settings_of(config), enforce=not config.warn_only))

    def start(own: Store) -> pykka.ActorRef[ImmuneDaemon]:
        db = ImmuneStore(own)  # each incarnation reloads profiles, threats and alerts
        return ImmuneDaemon.start(host, config, db, db.load(), shared)

    daemon = launch("immune", lambda: with_own_connection(store, "immune daemon", start))
    guard = ImmuneGuard(shared, tell_report(daemon)).check
    try:
        host.add_guard(guard)
        subscription = host.subscribe(_forwarder(daemon), FORWARDED)
    except BaseException:
        shared.snapshot = attrs.evolve(shared.snapshot, stopped=True)
        daemon.stop()
        raise
    return Immune(config, host, daemon, shared, subscription, guard, sandbox)


def _sandbox_of(host: ImmuneHost) -> Callable[[], SandboxView | None] | None:
    """How to read the host's shell sandbox for the status, if the host has devices and
    templates (`rnix_actors.System` has; a host without them shows no sandbox)."""
    devices = getattr(host, "devices", None)
    if not isinstance(devices, DeviceRegistry) or not hasattr(host, "templates"):
        return None

    def view() -> SandboxView | None:
        return live_sandbox_view(devices, list(getattr(host, "templates", {}).values()))

    return view
