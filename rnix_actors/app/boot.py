"""Starting and stopping one running system: the application and its first services.

`boot` opens the store, starts the `Application` supervisor and adds the event bus, the
process log and the kernel to it, in that order; the `System` facade then attaches the immune
daemon, topology and planner through `Running.launch`, so they join the same child list. `stop`
undoes it in reverse. Everything a running system holds lives in one `Running`, so the
facade keeps a single reference that is either a running system or None.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import attrs
import pykka

from rnix_actors.app.bus import BusRef
from rnix_actors.app.service import ServiceRef
from rnix_actors.app.supervisor import Application
from rnix_actors.config import Config
from rnix_actors.drivers.base import Driver
from rnix_actors.durable import Recovery, StateLock, recover
from rnix_actors.kernel.asking import ask
from rnix_actors.kernel.base import ThreadTracker
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.kernel.eventbus import EventBus
from rnix_actors.kernel.kernel import Kernel, KernelDeps
from rnix_actors.kernel.processlog import ProcessLog
from rnix_actors.kernel.resumption import Recovered
from rnix_actors.kernel.table import ProcessTable
from rnix_actors.kernel.threads import AgentThreads
from rnix_actors.kernel.treebounds import tree_limits
from rnix_actors.messages.application import AddService, ServiceSpec, StopApplication
from rnix_actors.messages.bus import Flush, Subscribe
from rnix_actors.messages.kernel import Shutdown
from rnix_actors.messages.links import ExitReason
from rnix_actors.state import KeepLogs, StatePlace
from rnix_actors.store.checkpoints import CheckpointStore
from rnix_actors.store.db import Store, with_own_connection
from rnix_actors.supervision.service import Supervision
from rnix_actors.templates import AgentTemplate, Skill

log = logging.getLogger(__name__)

ASK_TIMEOUT = 30.0


@attrs.frozen
class Boot:
    """What a system needs to run, from the `System` that is starting."""

    place: StatePlace
    config: Config
    keep: KeepLogs | None
    tracker: ThreadTracker
    table: ProcessTable
    devices: DeviceRegistry
    drivers: Callable[[str], Driver | None]
    templates: Callable[[str], AgentTemplate | None]
    skills: Callable[[], dict[str, Skill]]
    workdir: Path
    register_driver: Callable[[Driver], None]
    prepare_spawn: Callable[[AgentTemplate | str], None]  # in the spawner's thread
    prepare_restore: Callable[[int], None]  # in the supervisor's thread
    check_workdir: Callable[[Path | str], Path]
    launcher: Any  # where agent processes run: None (here) or the Ray backend
    on_failure: Callable[[str, ExitReason], None]


@attrs.define
class Running:
    """The parts of one running system (see the module docstring)."""

    boot: Boot
    store: Store
    app: pykka.ActorRef[Application]
    bus: BusRef
    process_log: ServiceRef
    kernel: ServiceRef
    threads: AgentThreads
    supervision: Supervision
    checkpoints: CheckpointStore | None = None
    state_lock: StateLock | None = None
    recovery: Recovery = attrs.field(factory=Recovery)
    stopping_keep: bool = False  # the stop under way is graceful: processes are kept
    after_kernel: list[Callable[[float], None]] = attrs.field(factory=list)

    def kernel_gone(self, timeout: float) -> None:
        """Once the kernel has ended: the ``after_kernel`` hooks run (Ray hosts stop, MCP
        sessions close), then its thread pool closes (waiting threads end now, busy ones
        after their process)."""
        hooks, self.after_kernel = self.after_kernel, []
        for hook in hooks:
            try:
                hook(timeout)
            except Exception:
                log.exception("a hook after the kernel's end failed")
        self.threads.close(timeout)

    def stop(self, timeout: float, keep: bool) -> None:
        """Stop the services in reverse start order, then close the store (the caller stopped
        the supervision trees first). Never raises for a service: one that does not stop in
        time is logged and abandoned."""
        self.stopping_keep = keep
        try:
            self.app.ask(StopApplication(timeout), timeout=4 * timeout + ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            log.warning("the application did not stop its services in time")
        _stop_actor(self.app, timeout)
        self.kernel_gone(timeout)  # done already, unless the kernel died before the stop
        for thread in self.boot.tracker.join(timeout / 2):
            log.warning("thread %s did not stop within %.1fs", thread.name, timeout)
        try:
            if self.checkpoints is not None:
                self.checkpoints.close(timeout / 2)
                self.checkpoints.store.close()
            self.store.close()
        finally:
            if self.state_lock is not None:
                self.state_lock.release()

    def launch(
        self,
        name: str,
        start: Callable[[], pykka.ActorRef[Any]],
        stop: Callable[[Any, float], None] | None = None,
        vital: bool = False,
        handle: ServiceRef | None = None,
    ) -> ServiceRef:
        """Start a service as the application's last child; returns its `ServiceRef`.
        Raises what ``start`` raises (nothing is left started)."""
        spec = ServiceSpec(name, start, stop or _stop_actor, vital=vital, handle=handle)
        ref: ServiceRef = ask(self.app, AddService(spec), ASK_TIMEOUT, "application")
        return ref


def boot(parts: Boot) -> Running:
    """Open the store and start the application with the bus, the process log and the kernel
    (see the module docstring). Raises what opening the store raises; nothing is left
    started."""
    parts.place.open()
    store = Store(parts.place.db_path)
    app = Application.start(parts.on_failure, parts.tracker)
    bus = BusRef()
    threads = AgentThreads()
    checkpoints: CheckpointStore | None = None
    try:
        checkpoints, lock, recovery = _open_checkpoints(parts, store)
        log_dir = parts.place.dir if parts.config.kernel.event_log else None
        fold = None if checkpoints is None else checkpoints.sync
        start_bus = lambda: bus.start_with(  # noqa: E731
            lambda subscribers: _start_bus(parts, log_dir, subscribers)
        )
        running = Running(parts, store, app, bus, ServiceRef("process log"), ServiceRef("kernel"),
                          threads, _no_supervision(), checkpoints, lock, recovery)  # fmt: skip
        running.launch("bus", start_bus, _stop_bus, handle=bus)
        running.process_log = running.launch(
            "process log",
            lambda: with_own_connection(
                store,
                "process log",
                lambda own: ProcessLog.start(own, parts.tracker, fold, parts.table.list()),
            ),
        )
        deps = _kernel_deps(parts, store, bus, running.process_log, threads, checkpoints)
        kernel = running.launch(
            "kernel", lambda: Kernel.start(deps), lambda ref, t: _stop_kernel(running, ref, t),
            vital=True,
        )  # fmt: skip
        running.kernel = kernel
        if recovery.suspended:
            kernel.ask(Recovered(recovery.suspended), timeout=ASK_TIMEOUT)
        running.supervision = Supervision(
            kernel, bus, parts.table, templates=parts.templates,
            register_driver=parts.register_driver, tracker=parts.tracker,
            prepare_spawn=parts.prepare_spawn,
            prepare_restore=parts.prepare_restore,
        )  # fmt: skip
    except BaseException:
        with contextlib.suppress(Exception):
            app.ask(StopApplication(), timeout=ASK_TIMEOUT)
        app.stop()
        threads.close()
        if checkpoints is not None:
            checkpoints.store.close()
        store.close()
        raise
    return running


def _no_supervision() -> Supervision:
    return Supervision(None, None, ProcessTable(), lambda name: None, lambda d: None, None)


def _start_bus(
    parts: Boot, log_dir: Path | None, subscribers: tuple[Subscribe, ...]
) -> pykka.ActorRef[EventBus]:
    return EventBus.start(log_dir, parts.tracker, parts.keep, subscribers)


def _kernel_deps(
    parts: Boot,
    store: Store,
    bus: ServiceRef,
    process_log: ServiceRef,
    threads: AgentThreads,
    checkpoints: CheckpointStore | None,
) -> KernelDeps:
    # A ServiceRef answers tell and ask as the ref of its current actor does: the kernel holds
    # the service, not one incarnation of it (see `rnix_actors.app.service`).
    return KernelDeps(
        store=store,
        table=parts.table,
        process_log=cast("pykka.ActorRef[ProcessLog]", process_log),
        bus=cast("pykka.ActorRef[EventBus]", bus),
        devices=parts.devices,
        drivers=parts.drivers,
        templates=parts.templates,
        skills=parts.skills,
        workdir=parts.workdir,
        sigterm_grace=parts.config.kernel.sigterm_grace,
        bounds=tree_limits(parts.config.kernel),
        tracker=parts.tracker,
        threads=threads,
        checkpoints=checkpoints,
        check_workdir=parts.check_workdir,
        launcher=parts.launcher,
    )


def _open_checkpoints(
    parts: Boot, store: Store
) -> tuple[CheckpointStore | None, StateLock | None, Recovery]:
    """The checkpoint tables (None when off); recovers a dead system's processes when this
    system is alone on its state dir."""
    if parts.place.dir is None or not parts.config.kernel.checkpoints:
        return None, None, Recovery()
    # The checkpoint writer's own connection: agents' threads and the journal's folder.
    own = store.open_for("checkpoints")
    try:
        checkpoints = CheckpointStore(own, parts.place.dir / "journal")
        lock = StateLock(parts.place.dir)
        recovery = recover(store, checkpoints) if lock.acquire() else Recovery()
        lock.share()
    except BaseException:
        own.close()
        raise
    return checkpoints, lock, recovery


def _stop_actor(ref: pykka.ActorRef[Any], timeout: float) -> None:
    with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
        ref.stop(timeout=timeout)


def _stop_bus(ref: pykka.ActorRef[Any], timeout: float) -> None:
    with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
        ref.ask(Flush(), timeout=timeout)
    _stop_actor(ref, timeout)


def _stop_kernel(running: Running, ref: pykka.ActorRef[Any], timeout: float) -> None:
    """Every process ends (killed, or checkpointed and left suspended for a graceful stop),
    then the kernel; agents still finishing a step may emit events, so the bus and the
    process log (later in the reverse order) stay until the agents' threads are joined."""
    keep = running.stopping_keep
    try:
        with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
            ref.ask(Shutdown("system", keep=keep), timeout=timeout)
    finally:
        _stop_actor(ref, timeout)
        running.kernel_gone(timeout)
        keep_running = (running.bus.current, running.process_log.current)
        found = (_thread_of(r, timeout) for r in keep_running if r is not None)
        threads = frozenset(t for t in found if t is not None)
        running.boot.tracker.join(timeout / 2, exclude=threads)


def _thread_of(ref: pykka.ActorRef[Any], timeout: float) -> threading.Thread | None:
    with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
        thread: threading.Thread | None = ref.proxy().thread.get(timeout=timeout)
        return thread
    return None
