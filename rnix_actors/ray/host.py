"""`AgentHost`: one Ray actor per node, hosting many agent processes as threads.

Inside, a process is the same `AgentProcess` Pykka actor as on the local backend, with this
host's own device layer, drivers and immune guard; what it would tell the kernel or the event
bus goes into the host's outbox, which the head drains (`drain`, a long poll). The head
sends one ordered stream of items (`deliver`): spawns, signals, mail, replies to the asks of
agents, new immune snapshots. The host decides nothing the kernel owns: PIDs, devices, depth
and spawn rights all come from the head.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

import attrs
import pykka

from rnix_actors.drivers.base import Driver
from rnix_actors.drivers.http import build_drivers
from rnix_actors.drivers.replay import ReplayDriver
from rnix_actors.errors import RnixError, SpawnError
from rnix_actors.immune.guard import ImmuneGuard, Shared
from rnix_actors.kernel import links
from rnix_actors.kernel.agent import AgentProcess
from rnix_actors.kernel.base import ThreadTracker
from rnix_actors.kernel.checkpointing import Checkpointer, Identity
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.kernel.fs import FileSystemDevice
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.llmdev import LLMDevice
from rnix_actors.kernel.process import Signal
from rnix_actors.kernel.procfs import ProcDevice
from rnix_actors.kernel.resumption import seek_driver
from rnix_actors.kernel.shell import ShellDevice
from rnix_actors.kernel.spec import ProcessControl, ProcessSpec
from rnix_actors.kernel.threads import AgentThreads
from rnix_actors.messages.guards import Guard
from rnix_actors.messages.kernel import ProcessExited
from rnix_actors.messages.links import Exit, ExitKind, ExitReason
from rnix_actors.messages.process import Pause, Reaped, Resume, Terminate
from rnix_actors.ray.outbox import Outbox
from rnix_actors.ray.standins import ASK_TIMEOUT, HeadBus, HeadCheckpoints, HeadKernel, Watcher
from rnix_actors.ray.wire import (
    Anomaly,
    Ask,
    Down,
    Drained,
    HostSetup,
    HostStatus,
    LinkExit,
    NewSnapshot,
    ProcQuery,
    Reply,
    Spawn,
    SpawnShip,
    Tell,
    ToKernel,
)

log = logging.getLogger(__name__)


@attrs.define
class _Hosted:
    ref: pykka.ActorRef[AgentProcess]
    control: ProcessControl
    endpoint: Endpoint
    driver: Driver


class AgentHost:
    """The Ray actor (made one by `rnix_actors.ray.backend`); every method is thread-safe."""

    def __init__(self, setup: HostSetup) -> None:
        self.setup = setup
        self.incarnation = uuid.uuid4().hex
        self.outbox = Outbox()
        self.tracker = ThreadTracker()
        self.threads = AgentThreads(name=f"Host-{setup.label}")
        self.kernel = HeadKernel(self)
        self.bus = HeadBus(self.outbox)
        self.live: dict[int, _Hosted] = {}
        # The live processes, the pending asks and the immune state per template: Ray runs
        # this actor's methods on several threads at once (max_concurrency), and agents call
        # ask_head, ended and to_kernel from theirs.
        self.lock = threading.Lock()
        self.asks: dict[int, Future[Any]] = {}
        self.next_ask = 0
        self.immune: dict[str, Shared] = {}
        self.guards: dict[str, Guard] = {}
        self.watcher = Endpoint(f"host {setup.label}")
        self.watcher.ref = Watcher(self)  # type: ignore[assignment]
        self.replay = ReplayDriver()
        self.drivers: dict[str, Driver] = {self.replay.name: self.replay}
        for driver in build_drivers(setup.providers):
            self.drivers[driver.name] = driver
        self.devices = self._device_layer(setup)

    def _device_layer(self, setup: HostSetup) -> DeviceRegistry:
        config, protected = setup.config, setup.protected
        devices = DeviceRegistry()
        devices.register("/dev/fs", FileSystemDevice(protected, config.fs.hardlinks))
        shell = ShellDevice(
            config.kernel.shell_timeout, settings=config.shell, hidden=[*map(_path, protected)]
        )
        devices.register("/dev/shell", shell)
        devices.register("/proc", ProcDevice(self._proc_status))
        devices.register("/dev/llm", LLMDevice(lambda: self.drivers))
        return devices

    # -- the head's calls ------------------------------------------------------------------
    def status(self) -> HostStatus:
        import ray

        with self.lock:
            live = len(self.live)
        return HostStatus(
            self.incarnation, ray.get_runtime_context().get_node_id(), os.getpid(), live,
            _rss_kib(),
        )  # fmt: skip

    def drain(self, timeout: float) -> Drained:
        items = tuple(self.outbox.take(timeout, self._figures))
        return Drained(self.incarnation, items, os.getpid())

    def deliver(self, incarnation: str, items: list[Any]) -> list[Any]:
        """Apply ``items`` in order; one answer per item (None, or an error's text for a
        spawn). Items for another incarnation of this host are refused whole."""
        if incarnation != self.incarnation:
            return [f"host restarted (incarnation {self.incarnation})"] * len(items)
        return [self._apply(item) for item in items]

    def shutdown(self, timeout: float) -> int:
        """Kill every process, stop their actors and join their threads; returns how many
        threads are still stuck in a call that ignores cancellation."""
        with self.lock:
            hosted = list(self.live.values())
        for proc in hosted:
            proc.control.cancel.cancel("host shutdown")
            with contextlib.suppress(pykka.ActorDeadError):
                proc.ref.tell(Reaped())
        end = time.monotonic() + timeout
        for proc in hosted:
            proc.endpoint.wait(max(0.0, end - time.monotonic()))
        self.threads.close(max(0.0, end - time.monotonic()))
        return len(self.tracker.join(max(0.0, end - time.monotonic())))

    # -- items -----------------------------------------------------------------------------
    def _apply(self, item: Any) -> Any:
        try:
            match item:
                case Spawn(ship=ship):
                    self._spawn(ship)
                case Tell():
                    self._tell(item)
                case Reply(request=request, ok=ok, value=value):
                    self._reply(request, ok, value)
                case LinkExit(pid=pid, label=label, reason=reason):
                    self._link_exit(pid, label, reason)
                case NewSnapshot(key=key, snapshot=snapshot):
                    with self.lock:
                        shared = self.immune.get(key)
                    if shared is not None:
                        shared.snapshot = snapshot
                case _:
                    log.warning("host: unexpected item %s dropped", type(item).__name__)
        except Exception as exc:
            if isinstance(item, Spawn):
                return f"{type(exc).__name__}: {exc}"
            log.exception("host: %s failed", type(item).__name__)
        return None

    def _spawn(self, ship: SpawnShip) -> None:
        driver = self._driver(ship)
        for path, data in ship.devices:
            device = unpickled(data, f"device {path}")
            self.devices.unregister(path)
            self.devices.register(path, device)
        guards = tuple(self._guard(g) for g in ship.guards)
        if ship.resume is not None:
            seek_driver(driver, ship.resume)
        endpoint = Endpoint(f"PID {ship.pid} ({ship.template.name})", ship.pid)
        control = ProcessControl()
        spec = ProcessSpec(
            pid=ship.pid, uuid=ship.uuid, ppid=ship.ppid, depth=ship.depth,
            template=ship.template, intent=ship.intent, allowed=ship.allowed,
            denied=ship.denied, workdir=ship.workdir, max_steps=ship.max_steps,
            model=ship.model, driver=driver, devices=self.devices, guards=guards,
            kernel=self.kernel, bus=self.bus, control=control, tracker=self.tracker,
            threads=self.threads, endpoint=endpoint, resume=ship.resume,
            checkpointer=self._checkpointer(ship, driver),
        )  # fmt: skip
        links.monitor(self.watcher, endpoint)  # before it runs: its Down cannot be missed
        with self.lock:
            if ship.pid in self.live:
                raise SpawnError(f"PID {ship.pid} already runs on this host")
            ref = AgentProcess.start(spec)
            self.live[ship.pid] = _Hosted(ref, control, endpoint, driver)

    def _checkpointer(self, ship: SpawnShip, driver: Driver) -> Checkpointer | None:
        """The process's checkpoints go on where the head's left off, committed by the
        head's store (`HeadCheckpoints`)."""
        ck = ship.checkpoint
        if ck is None:
            return None
        identity = Identity(**ck.identity)
        position = getattr(driver, "position", None) if ck.position else None
        store: Any = HeadCheckpoints(self)
        return Checkpointer(store, ship.pid, identity, position, ck.seq, ck.written)

    def _driver(self, ship: SpawnShip) -> Driver:
        for key, script in ship.replay_scripts:
            self.replay.add_script(key, script)
        if ship.driver is not None:
            driver = unpickled(ship.driver, f"driver '{ship.driver_name}'")
            self.drivers = {**self.drivers, ship.driver_name: driver}
        driver = self.drivers.get(ship.driver_name)
        if driver is None:
            raise SpawnError(f"driver '{ship.driver_name}' is not available on this host")
        driver.prepare(ship.model)
        return driver

    def _guard(self, ship: Any) -> Guard:
        if not ship.immune:
            guard = None if ship.guard is None else unpickled(ship.guard, "a guard")
            with self.lock:
                if guard is not None:
                    self.guards[ship.key] = guard
                return self.guards[ship.key]  # a KeyError refuses the spawn: never unguarded
        key = ship.key
        with self.lock:
            shared = self.immune.get(key)
            if shared is None:
                shared = self.immune[key] = Shared(ship.snapshot)
                check = ImmuneGuard(shared, lambda m: self.outbox.put(Anomaly(key, m))).check
                self.guards[key] = check
            elif ship.snapshot is not None:
                shared.snapshot = ship.snapshot
            return self.guards[key]

    def _tell(self, item: Tell) -> None:
        with self.lock:
            proc = self.live.get(item.pid)
        if proc is None:
            return
        control, message = proc.control, item.message
        # What the kernel sets on its side of a local process's control, set here before the
        # message queues: a pause or stop is seen at the next call even behind a busy inbox.
        if item.cancel:
            control.cancel.cancel(item.cancel)
        match message:
            case Pause(origin=origin):
                control.request_pause(origin)
            case Resume():
                control.pause.clear()
            case Terminate(signal=sig, origin=origin):
                if sig is Signal.SIGINT:
                    control.cancel.cancel(f"SIGINT from {origin}")
                control.request_stop(str(sig), origin)
        with contextlib.suppress(pykka.ActorDeadError):
            proc.ref.tell(message)

    def _link_exit(self, pid: int, label: str, reason: ExitReason) -> None:
        with self.lock:
            proc = self.live.get(pid)
        if proc is None:
            return
        # The head's side of the link, re-enacted here: a linked endpoint that dies.
        other = Endpoint(label)
        links.link(proc.endpoint, other)
        links.exit(other, reason)

    # -- what agents send the head ---------------------------------------------------------
    def to_kernel(self, message: object) -> None:
        records: tuple[tuple[str, Any], ...] = ()
        if isinstance(message, ProcessExited):
            taken = []
            with self.lock:  # a spawn on another thread may add a template's entry
                immune = tuple(self.immune.items())
            for key, shared in immune:
                record = shared.take(message.pid)
                if record is not None:
                    record.armed = None  # the head arms it against its own snapshot
                    taken.append((key, record))
            records = tuple(taken)
        self.outbox.put(ToKernel(message, records))

    def ask_head(self, message: object, timeout: float) -> Any:
        future: Future[Any] = Future()
        with self.lock:
            self.next_ask += 1
            request = self.next_ask
            self.asks[request] = future
        self.outbox.put(Ask(request, message))
        try:
            return future.result(timeout)
        except TimeoutError:
            raise pykka.Timeout(f"the head did not answer within {timeout}s") from None
        finally:
            with self.lock:
                self.asks.pop(request, None)

    def _reply(self, request: int, ok: bool, value: Any) -> None:
        with self.lock:
            future = self.asks.get(request)
        if future is None:
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value if isinstance(value, BaseException) else RnixError(value))

    def _proc_status(self, pid: int) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.ask_head(ProcQuery(pid), ASK_TIMEOUT)
        return found

    def ended(self, pid: int, reason: ExitReason) -> None:
        with self.lock:
            proc = self.live.pop(pid, None)
        if proc is not None:
            proc.driver.release(pid)
        self.outbox.put(Down(pid, reason))

    def _figures(self) -> list[tuple[Any, ...]]:
        with self.lock:
            hosted = list(self.live.items())
        return [
            (pid, f.steps, f.tokens, f.cost_usd, f.step_started_at, f.activity, f.context,
             f.breaker, f.version)
            for pid, proc in hosted
            if (f := proc.control.figures).version
        ]  # fmt: skip


def unpickled(data: bytes, what: str) -> Any:
    import pickle

    try:
        return pickle.loads(data)
    except Exception as exc:
        raise SpawnError(
            f"{what} cannot be loaded on this host ({type(exc).__name__}: {exc}); install "
            "what it imports on every node, or ship it with Ray's runtime_env"
        ) from None


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text)


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


__all__ = ["AgentHost", "Exit", "ExitKind"]
