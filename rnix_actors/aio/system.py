"""`AsyncSystem`: the actor system for asyncio hosts (web services, bots, chat loops).

It wraps one `System` (the same kernel, actors and threads; no second implementation):

- calls that ask an actor (``spawn``, ``kill``, ``supervise``...) run on a small executor of
  its own, so the loop never waits for an actor's inbox;
- waiting (``wait``, ``run``, a supervisor's ``wait``) holds no thread: the process table or the
  supervisor calls back when the process settles, and the callback resolves a future on the
  loop;
- ``events()`` is an async iterator over a bounded queue (`EventStream`);
- ``async def`` brains and devices run on the loop (`rnix_actors.aio.bridge`).

Cancelling a task that awaits ``wait``/``run`` stops the waiting, not the process, unless
``kill_on_cancel`` says which signal to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import attrs

from rnix_actors.aio import asks
from rnix_actors.aio.bridge import AsyncPythonDriver, LoopBridge, async_device, is_async
from rnix_actors.aio.events import DEFAULT_MAXSIZE, EventStream
from rnix_actors.aio.running import SpawnWatch
from rnix_actors.aio.supervision import AsyncSupervisorHandle
from rnix_actors.errors import NoSuchProcess, RnixError, StillRunning, SystemStopped, Unresponsive
from rnix_actors.kernel.devices import DeviceCall, Effect
from rnix_actors.kernel.process import ProcessInfo, ProcessState, Signal
from rnix_actors.messages.kernel import SendSignal
from rnix_actors.messages.processlog import Sync
from rnix_actors.supervision.spec import ChildSpec, SupervisorSpec
from rnix_actors.system import System
from rnix_actors.templates import AgentTemplate, Skill

log = logging.getLogger(__name__)
T = TypeVar("T")
ASK_TIMEOUT = 30.0  # as the thread API: a kernel that does not answer is `Unresponsive`
SETTLED = (ProcessState.DEAD, ProcessState.SUSPENDED)
KillOnCancel = Signal | str | bool


class AsyncSystem:
    """``async with AsyncSystem(project_dir, **system_options) as system:`` (or wrap an
    existing, not yet started `System` with ``AsyncSystem(system=...)``).

    Bound to the loop it starts on; call its methods from that loop only. ``system`` is the
    wrapped `System`, for what needs no waiting (``templates``, ``immune.status()``, ...).
    """

    def __init__(
        self,
        project_dir: Path | str | None = None,
        *,
        system: System | None = None,
        workers: int = 4,
        **options: Any,
    ) -> None:
        if system is not None and (project_dir is not None or options):
            raise TypeError("pass either system= or the System's own arguments, not both")
        self.system = system if system is not None else System(project_dir, **options)
        self._bridge = LoopBridge()
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._streams: set[EventStream] = set()
        self._waiters: set[asyncio.Future[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> AsyncSystem:
        if self._executor is not None:
            return self
        loop = asyncio.get_running_loop()
        self._bridge.bind(loop)
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="rnix-aio")
        try:
            await self._call(self.system.start)
        except BaseException:
            await self._shutdown_executor()
            raise
        return self

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the system: kill live processes (their waiters get their final info), end
        every event stream (after the events of the stop), fail what still waits with
        `SystemStopped`, join every thread."""
        if self._executor is None:
            return
        try:
            await self._call(self.system.stop, timeout)
        finally:
            for stream in list(self._streams):  # after the stop: they see its Exit events
                stream.close_soon()
            for waiter in list(self._waiters):
                if not waiter.done():
                    waiter.set_exception(SystemStopped("the system stopped"))
            await self._shutdown_executor()
            self._bridge.unbind()

    async def _shutdown_executor(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            # Its threads are idle now; joining them off the loop keeps the loop responsive.
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)

    async def __aenter__(self) -> AsyncSystem:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        executor = self._executor
        if executor is None:
            raise SystemStopped("the AsyncSystem is not running; use 'async with AsyncSystem()'")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))

    def _future(self) -> asyncio.Future[Any]:
        if self._executor is None:
            raise SystemStopped("the AsyncSystem is not running; use 'async with AsyncSystem()'")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        future.add_done_callback(self._waiters.discard)
        return future

    # -- definitions (no waiting) ------------------------------------------------------------
    def add_template(self, template: AgentTemplate) -> None:
        self.system.add_template(template)

    def add_skill(self, skill: Skill) -> None:
        self.system.add_skill(skill)

    def register_llm(self, name: str, fn: Callable[..., Any]) -> None:
        """A python brain: ``fn(request)`` or ``async def fn(request)`` (run on this loop;
        it may await anything, and sees ``CancelledError`` when the process is killed)."""
        if is_async(fn):
            self.system.register_driver(AsyncPythonDriver(name, fn, self._bridge))
        else:
            self.system.register_llm(name, fn)

    def register_device(
        self,
        path: str,
        handler: Callable[[DeviceCall], Any],
        description: str = "",
        blocking: bool = True,
        effect: Effect = Effect.EXTERNAL,
    ) -> None:
        """A host device; an ``async def`` handler runs on this loop (see `register_llm`)."""
        if is_async(handler):
            handler, blocking = async_device(handler, self._bridge), True
        self.system.register_device(path, handler, description, blocking, effect)

    # -- processes ---------------------------------------------------------------------------
    async def spawn(self, agent: str | AgentTemplate, intent: str, **options: Any) -> int:
        """`System.spawn` (same options and errors); no thread waits for the kernel."""
        request = self.system.spawn_request(agent, intent, **options)
        kernel = self._kernel()
        fallback = functools.partial(self._call, self.system.spawn, agent, intent, **options)
        pid: int = await asks.ask(kernel, request, "kernel", ASK_TIMEOUT, fallback)
        await self._committed(pid)
        return pid

    async def _committed(self, pid: int) -> None:
        """`System.spawn`'s guarantee: the PID's row and first checkpoint are in the store
        before the PID is handed out."""
        run = self.system._run
        if run is None or not asks.HAVE_ENVELOPE:  # the fallback spawn already waited
            return
        try:
            process_log: Any = run.process_log  # a ServiceRef: as the kernel's, an actor ref
            sent = asks.send(process_log, Sync(), "process log")
            await asks.answer(sent, "process log", ASK_TIMEOUT)
        except (Unresponsive, SystemStopped):  # the process runs (a restarting log rewrites it)
            log.warning("PID %d started, but the process log did not confirm its row", pid)

    def _kernel(self) -> Any:
        if self._executor is None:
            raise SystemStopped("the AsyncSystem is not running; use 'async with AsyncSystem()'")
        return self.system._require()

    async def wait(
        self, pid: int, timeout: float | None = None, *, kill_on_cancel: KillOnCancel = False
    ) -> ProcessInfo:
        """The process's info once it exited or is suspended. Raises `NoSuchProcess`,
        `TimeoutError` (the process keeps running) and `SystemStopped`.

        Cancelling the awaiting task leaves the process running, unless ``kill_on_cancel``
        is a signal (``True`` = SIGKILL), which is sent before the cancellation goes on.
        """
        future = self._future()
        loop = future.get_loop()
        if self.system.table.get(pid) is None:
            future.cancel()
            raise NoSuchProcess(pid)

        def settled(info: ProcessInfo) -> None:  # the kernel's thread, or this one
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(_resolve, future, info)

        drop = self.system.table.when(pid, lambda p: p.state in SETTLED, settled)
        try:
            async with asyncio.timeout(timeout):
                info: ProcessInfo = await future
            return info
        except TimeoutError:
            raise StillRunning(f"PID {pid} still running after {timeout}s") from None
        except asyncio.CancelledError:
            await self._kill_on_cancel(pid, kill_on_cancel)
            raise
        finally:
            drop()

    async def run(
        self,
        agent: str | AgentTemplate,
        intent: str,
        timeout: float | None = None,
        *,
        kill_on_cancel: KillOnCancel = False,
        **options: Any,
    ) -> ProcessInfo:
        """Spawn and wait; ``timeout`` bounds both (`TimeoutError`: the process keeps
        running). A cancellation during the spawn lets the spawn finish; ``kill_on_cancel``
        then applies to it."""
        if not asks.HAVE_ENVELOPE:  # pragma: no cover
            pid = await self.spawn(agent, intent, **options)
            return await self.wait(pid, timeout, kill_on_cancel=kill_on_cancel)
        request = self.system.spawn_request(agent, intent, **options)
        kernel = self._kernel()
        done = self._future()
        watch = SpawnWatch(self.system.table, lambda p: p.state in SETTLED, done)
        asks.put(kernel, request, watch, "kernel")
        # A kernel that does not answer the spawn is `Unresponsive`, as in the thread API.
        late = done.get_loop().call_later(ASK_TIMEOUT, _unanswered, watch, done)
        try:
            async with asyncio.timeout(timeout):
                info: ProcessInfo = await done
            return info
        except Unresponsive:
            watch.stop_watching()
            raise
        except TimeoutError:
            watch.stop_watching()
            if watch.pid is None:
                raise TimeoutError(f"the spawn of {agent!r} got no answer in {timeout}s") from None
            raise TimeoutError(f"PID {watch.pid} still running after {timeout}s") from None
        except asyncio.CancelledError:
            watch.stop_watching()
            if kill_on_cancel is not False:
                if watch.pid is None:  # the spawn is on its way: quick (no step runs in it)
                    await self._call(watch.replied.wait, ASK_TIMEOUT)
                if watch.pid is not None:
                    await self._kill_on_cancel(watch.pid, kill_on_cancel)
            raise
        finally:
            late.cancel()

    async def _kill_on_cancel(self, pid: int, how: KillOnCancel) -> None:
        if how is False:
            return
        signal = Signal.SIGKILL if how is True else how
        try:  # shielded: a second cancellation must not leave the signal unsent
            await asyncio.shield(self.kill(pid, signal, "cancel"))
        except RnixError as exc:  # gone, or the system stopping: the cancellation goes on
            log.info("kill_on_cancel of PID %d: %s", pid, exc)

    async def kill(
        self, pid: int, signal: Signal | str = Signal.SIGTERM, origin: str = "user"
    ) -> str:
        """`System.kill`: what the kernel did; `NoSuchProcess` for an unknown PID."""
        sig = signal if isinstance(signal, Signal) else Signal.parse(signal)
        fallback = functools.partial(self._call, self.system.kill, pid, sig, origin)
        message = SendSignal(pid, sig, origin)
        return str(await asks.ask(self._kernel(), message, "kernel", ASK_TIMEOUT, fallback))

    async def pause(self, pid: int, origin: str = "user") -> str:
        return await self.kill(pid, Signal.SIGPAUSE, origin)

    async def resume(self, pid: int, origin: str = "user", retry: bool = False) -> str:
        """`System.resume`: SIGRESUME the subtree; ``retry`` runs again the call a guard
        refused when it suspended ``pid``."""
        fallback = functools.partial(self._call, self.system.resume, pid, origin, retry)
        message = SendSignal(pid, Signal.SIGRESUME, origin, retry)
        return str(await asks.ask(self._kernel(), message, "kernel", ASK_TIMEOUT, fallback))

    def info(self, pid: int) -> ProcessInfo:
        """The process's current info (a read of the table: no waiting)."""
        return self.system.info(pid)

    async def ps(self, all: bool = False) -> list[ProcessInfo]:
        """Live processes (a read of the table), or with ``all`` the history (off the loop:
        it waits for the process log and reads SQLite)."""
        if not all:
            self._kernel()  # SystemStopped when not running, as System.ps
            return self.system.ps()
        return await self._call(self.system.ps, all)

    # -- events and supervision --------------------------------------------------------------
    def events(
        self, syscalls: Iterable[str] | None = None, *, maxsize: int = DEFAULT_MAXSIZE
    ) -> EventStream:
        """Every event from now on (or those named in ``syscalls``), as an async iterator of
        `Event` and `EventsDropped` items; see `EventStream` for the slow-consumer policy."""
        if self._executor is None:
            raise SystemStopped("the AsyncSystem is not running; use 'async with AsyncSystem()'")
        names = None if syscalls is None else tuple(syscalls)
        stream = EventStream(
            asyncio.get_running_loop(),
            maxsize,
            lambda callback: self.system.subscribe(callback, names, wait=False),
            self._streams.discard,
        )
        self._streams.add(stream)
        return stream

    async def sync_events(self) -> None:
        """Return once every event published before the call reached the subscribers (the
        queues of the event streams, too) and the logs."""
        await self._call(self.system.sync_events)

    async def supervise(self, spec: SupervisorSpec) -> AsyncSupervisorHandle:
        """`System.supervise`; children may have ``async def`` brains."""
        spec = self._with_async_brains(spec, f"/{spec.name}")
        handle = await self._call(self.system.supervise, spec)
        return AsyncSupervisorHandle(handle, self._call, self._future)

    def _with_async_brains(self, spec: SupervisorSpec, path: str) -> SupervisorSpec:
        children = tuple(self._child(child, path) for child in spec.children)
        return attrs.evolve(spec, children=children)

    def _child(self, child: ChildSpec, path: str) -> ChildSpec:
        if child.supervisor is not None:
            nested = self._with_async_brains(child.supervisor, f"{path}/{child.name}")
            return attrs.evolve(child, supervisor=nested)
        if not is_async(child.agent):
            return child
        name = re.sub(r"[^A-Za-z0-9._-]", ".", f"aio{path}.{child.name}").strip(".")
        self.system.register_driver(AsyncPythonDriver(name, child.agent, self._bridge))  # type: ignore[arg-type]
        template = AgentTemplate(name=child.name, devices=child.devices or (), driver=name)
        return attrs.evolve(child, agent=template)


def _unanswered(watch: SpawnWatch, done: asyncio.Future[Any]) -> None:
    if not watch.replied.is_set() and not done.done():
        done.set_exception(asks.unresponsive("kernel", ASK_TIMEOUT))


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)
