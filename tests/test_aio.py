"""The asyncio API on real event loops, real actors and threads (no mocks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import Collector, call, respond

from rnix_actors import (
    AgentTemplate,
    ChildSpec,
    DeviceCall,
    Event,
    Limits,
    LLMRequest,
    LLMResponse,
    NoSuchProcess,
    ProcessState,
    SpawnError,
    SupervisorSpec,
    SystemStopped,
    Unresponsive,
)
from rnix_actors.aio import AsyncSystem, EventsDropped


def run_loop(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` on a fresh loop and check that it left no thread and no task behind."""
    before = set(threading.enumerate())

    async def checked() -> None:
        await main()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(checked())
    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []


def template(name: str, driver: str, **limits: Any) -> AgentTemplate:
    return AgentTemplate(
        name, devices=("/dev/fs", "/dev/host"), driver=driver, limits=Limits(**limits)
    )


def test_a_hundred_concurrent_runs(project: Path) -> None:
    async def main() -> None:
        async with AsyncSystem(project, state="memory") as system:
            system.register_llm(
                "two-steps", lambda r: respond(call("list_files")) if r.step == 1 else "ok"
            )
            system.add_template(template("worker", "two-steps"))
            infos = await asyncio.gather(
                *(system.run("worker", f"task {i}", timeout=60) for i in range(100))
            )
            assert [i.exit_code for i in infos] == [0] * 100
            assert len({i.pid for i in infos}) == 100
            assert [i.intent for i in infos] == [f"task {i}" for i in range(100)]

    run_loop(main)


def test_async_brain_and_async_device_run_on_the_loop(project: Path) -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        seen: list[tuple[str, int]] = []
        lookups: asyncio.Queue[str] = asyncio.Queue()

        async def lookup(call_: DeviceCall) -> str:
            seen.append(("device", threading.get_ident()))
            await lookups.put(str(dict(call_.args)))  # loop objects work here
            await asyncio.sleep(0)
            return "customer 42 is active"

        async def brain(request: LLMRequest) -> LLMResponse | str:
            seen.append(("brain", threading.get_ident()))
            if request.step == 1:
                device = call("call_device", device="/dev/host/crm", input={"customer": 42})
                return respond(device)
            return f"{request.intent}: {request.messages[-1].content}"

        async with AsyncSystem(project, state="memory") as system:
            system.register_device("/dev/host/crm", lookup)
            system.register_llm("async-brain", brain)
            system.add_template(template("crm", "async-brain"))
            info = await system.run("crm", "is 42 active?", timeout=30)
            assert info.exit_code == 0, info.exit_reason
            assert info.result == "is 42 active?: customer 42 is active"
            assert "42" in lookups.get_nowait()
            assert seen == [("brain", loop_thread), ("device", loop_thread), ("brain", loop_thread)]

    run_loop(main)


def test_sigkill_and_step_timeout_cancel_async_handlers(project: Path) -> None:
    async def main() -> None:
        entered, cancelled = asyncio.Event(), asyncio.Event()
        never = asyncio.Event()

        async def stuck_device(call_: DeviceCall) -> str:
            entered.set()
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "unreachable"

        brain_cancelled = asyncio.Event()

        async def slow_brain(request: LLMRequest) -> str:
            try:
                await never.wait()
            except asyncio.CancelledError:
                brain_cancelled.set()
                raise
            return "unreachable"

        async with AsyncSystem(project, state="memory") as system:
            system.register_device("/dev/host/stuck", stuck_device)
            system.register_llm(
                "caller", lambda r: respond(call("call_device", device="/dev/host/stuck"))
            )
            system.register_llm("slow", slow_brain)
            system.add_template(template("caller", "caller"))
            system.add_template(template("slow", "slow", step_timeout=0.2))
            pid = await system.spawn("caller", "call it")
            await asyncio.wait_for(entered.wait(), 30)
            await system.kill(pid, "SIGKILL")
            info = await system.wait(pid, timeout=30)
            assert info.exit_code == 1 and "SIGKILL" in info.exit_reason
            await asyncio.wait_for(cancelled.wait(), 30)

            info = await system.run("slow", "think", timeout=30)
            assert info.exit_reason.startswith("step_timeout"), info.exit_reason
            await asyncio.wait_for(brain_cancelled.wait(), 30)

    run_loop(main)


def test_events_under_a_slow_consumer_stay_bounded_and_say_what_was_dropped(
    project: Path,
) -> None:
    async def main() -> None:
        async with AsyncSystem(project, state="memory") as system:
            system.register_llm(
                "lister", lambda r: respond(call("list_files")) if r.step < 8 else "done"
            )
            system.add_template(template("lister", "lister"))
            everything = Collector()
            await system._call(system.system.subscribe, everything)
            stream = system.events(maxsize=5)
            info = await system.run("lister", "list", timeout=30)
            await system._call(system.system.sync_events)
            assert stream.pending() == 5  # the consumer has not read: the queue stayed bounded
            total = len(everything.of(info.pid))
            assert total > 5
            first = await anext(stream)
            assert first == EventsDropped(total - 5)
            rest = [await anext(stream) for _ in range(5)]
            assert rest == everything.of(info.pid)[-5:]  # the newest stay, in order
            assert stream.dropped == total - 5
            await stream.aclose()
            assert [item async for item in stream] == []

    run_loop(main)


def test_events_filters_and_a_consumer_that_keeps_up(project: Path) -> None:
    async def main() -> None:
        async with AsyncSystem(project, state="memory") as system:
            system.register_llm("quick", lambda r: "done")
            system.add_template(template("quick", "quick"))
            async with system.events(["Exit"]) as exits:
                pids = [await system.spawn("quick", f"t{i}") for i in range(10)]
                got: list[Event | EventsDropped] = []
                async for item in exits:
                    got.append(item)
                    if len(got) == 10:
                        break
            assert all(isinstance(e, Event) and e.syscall == "Exit" for e in got)
            assert sorted(e.pid for e in got if isinstance(e, Event)) == pids
            assert exits.dropped == 0

    run_loop(main)


def test_cancelling_a_waiting_task_leaves_the_process_running_unless_asked(
    project: Path,
) -> None:
    async def main() -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def held(request: LLMRequest) -> str:
            started.set()
            await release.wait()
            return "released"

        async with AsyncSystem(project, state="memory") as system:
            system.register_llm("held", held)
            system.add_template(template("held", "held"))

            task = asyncio.create_task(system.run("held", "wait for me"))
            await asyncio.wait_for(started.wait(), 30)
            (proc,) = await system.ps()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert system.info(proc.pid).state is ProcessState.RUNNING
            release.set()
            assert (await system.wait(proc.pid, timeout=30)).result == "released"

            release.clear()
            started.clear()
            pid = await system.spawn("held", "kill me on cancel")
            await asyncio.wait_for(started.wait(), 30)
            waiter = asyncio.create_task(system.wait(pid, kill_on_cancel=True))
            await asyncio.sleep(0)  # one turn: the task runs up to its first await (the wait)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            info = await system.wait(pid, timeout=30)
            assert info.exit_code == 1 and "from cancel" in info.exit_reason

            started.clear()
            runner = asyncio.create_task(system.run("held", "and me", kill_on_cancel="SIGINT"))
            await asyncio.wait_for(started.wait(), 30)
            (live,) = await system.ps()
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner
            info = await system.wait(live.pid, timeout=30)
            assert info.exit_code == 1, info.exit_reason

            with pytest.raises(TimeoutError, match="still running"):
                started.clear()
                pid = await system.spawn("held", "slow")
                await system.wait(pid, timeout=0.05)
            assert system.info(pid).state is ProcessState.RUNNING
            release.set()
            with pytest.raises(NoSuchProcess):
                await system.wait(10_000)

    run_loop(main)


def test_shutdown_with_tasks_pending(project: Path) -> None:
    async def main() -> None:
        never, all_in = asyncio.Event(), asyncio.Event()
        inside: list[int] = []

        async def forever(request: LLMRequest) -> str:
            inside.append(request.pid)
            if len(inside) == 4:  # three runs and the supervised child
                all_in.set()
            await never.wait()
            return "never"

        system = AsyncSystem(project, state="memory")
        async with system:
            system.register_llm("forever", forever)
            system.add_template(template("forever", "forever"))
            started = asyncio.Event()
            runs = [asyncio.create_task(system.run("forever", f"r{i}")) for i in range(3)]
            spec = SupervisorSpec("svc", children=(ChildSpec("w", agent=forever, intent="x"),))
            handle = await system.supervise(spec)
            tree = asyncio.create_task(handle.wait())
            stream = system.events()

            async def consume() -> list[int]:
                started.set()
                return [e.pid async for e in stream if isinstance(e, Event) and e.syscall == "Exit"]

            consumer = asyncio.create_task(consume())
            await started.wait()
            await asyncio.wait_for(all_in.wait(), 30)
        infos = await asyncio.gather(*runs)
        assert all(i.exit_code == 1 and "system stop" in i.exit_reason for i in infos)
        assert (await tree).status in ("stopped", "escalated")
        exits = await consumer  # the stream saw the stop's Exit events, then ended
        assert {i.pid for i in infos} <= set(exits) and len(exits) == 4
        for late in (system.spawn("forever", "late"), system.ps()):
            with pytest.raises(SystemStopped):
                await late
        with pytest.raises(SystemStopped):
            system.events()

    run_loop(main)


def test_supervised_async_brains(project: Path) -> None:
    async def main() -> None:
        attempts: list[int] = []

        async def flaky(request: LLMRequest) -> str:
            attempts.append(request.pid)
            if len(attempts) == 1:
                raise RuntimeError("first try fails")
            return "second try works"

        async with AsyncSystem(project, state="memory") as system:
            spec = SupervisorSpec("jobs", children=(ChildSpec("job", agent=flaky, intent="go"),))
            handle = await system.supervise(spec)
            final = await handle.wait(timeout=30)
            assert final.status == "completed"
            assert len(set(attempts)) == 2  # a restart, with a new PID
            assert (await handle.view()).status == "completed"

    run_loop(main)


def test_works_under_anyio_on_asyncio(project: Path) -> None:
    async def main() -> None:
        async with AsyncSystem(project, state="memory") as system:

            async def brain(request: LLMRequest) -> str:
                await anyio.sleep(0)
                return "via anyio"

            system.register_llm("anyio-brain", brain)
            system.add_template(template("a", "anyio-brain"))
            async with anyio.create_task_group() as group:
                results: list[str] = []

                async def one(i: int) -> None:
                    results.append((await system.run("a", f"t{i}", timeout=30)).result)

                for i in range(5):
                    group.start_soon(one, i)
            assert results == ["via anyio"] * 5

    anyio.run(main, backend="asyncio")


def test_an_async_brain_without_a_running_loop_fails_the_process_cleanly(project: Path) -> None:
    async def brain(request: LLMRequest) -> str:
        return "never called"

    system = AsyncSystem(project, state="memory")
    system.register_llm("orphan", brain)  # registered, but the AsyncSystem never starts
    system.add_template(template("orphan", "orphan"))
    with system.system as sync:  # the same System driven from threads, no loop
        info = sync.run("orphan", "x", timeout=30)
    assert info.exit_code == 1 and "event loop is not running" in info.exit_reason


def test_the_thread_api_refuses_async_handlers_with_the_fix(project: Path) -> None:
    async def brain(request: LLMRequest) -> str:
        return "x"

    async def device(call_: DeviceCall) -> str:
        return "x"

    from rnix_actors import System

    plain = System(project, state="memory")
    with pytest.raises(TypeError, match=r"AsyncSystem\.register_llm"):
        plain.register_llm("b", brain)
    with pytest.raises(TypeError, match=r"AsyncSystem\.register_device"):
        plain.register_device("/dev/host/x", device)


def test_run_reports_spawn_errors_and_timeouts_like_the_thread_api(project: Path) -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def held(request: LLMRequest) -> str:
            await release.wait()
            return "late"

        async with AsyncSystem(project, state="memory") as system:
            system.register_llm("held", held)
            system.add_template(template("held", "held"))
            with pytest.raises(SpawnError, match="driver 'nope'"):
                await system.run("held", "x", driver="nope")
            with pytest.raises(SpawnError, match="unknown agent 'ghost'"):
                await system.run("ghost", "x")
            with pytest.raises(TimeoutError, match=r"PID \d+ still running after 0.05s"):
                await system.run("held", "slow", timeout=0.05)
            (proc,) = await system.ps()
            assert proc.state is ProcessState.RUNNING  # a timeout does not kill it
            release.set()
            assert (await system.wait(proc.pid, timeout=30)).result == "late"

    run_loop(main)


def test_a_stream_sees_the_start_of_a_process_spawned_after_it(project: Path) -> None:
    async def main() -> None:
        async with AsyncSystem(project, state="memory") as system:
            system.register_llm("quick", lambda r: "done")
            system.add_template(template("quick", "quick"))
            for _ in range(20):  # the subscription is in the bus's inbox before the spawn
                stream = system.events(["Start"])
                pid = await system.spawn("quick", "x")
                first = await asyncio.wait_for(anext(stream), 30)
                assert isinstance(first, Event) and first.pid == pid
                await stream.aclose()

    run_loop(main)


def test_a_kernel_that_does_not_answer_is_unresponsive_here_too(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        entered, go = threading.Event(), threading.Event()

        class SlowToPrepare:
            name = "slow"

            def complete(self, request: LLMRequest, cancel: object) -> LLMResponse:
                return LLMResponse(content="done")

            def prepare(self, model: str) -> None:  # the kernel's thread, during a spawn
                entered.set()
                go.wait(10)

            def release(self, pid: int) -> None:
                pass

        async with AsyncSystem(project, state="memory") as system:
            system.system.register_driver(SlowToPrepare())  # type: ignore[arg-type]
            system.register_llm("quick", lambda r: "done")
            system.add_template(template("quick", "quick"))
            stuck = asyncio.create_task(system.spawn("quick", "x", driver="slow"))
            assert await asyncio.to_thread(entered.wait, 10)
            monkeypatch.setattr("rnix_actors.aio.system.ASK_TIMEOUT", 0.2)
            try:
                with pytest.raises(Unresponsive, match="kernel did not answer"):
                    await system.spawn("quick", "y")
                with pytest.raises(Unresponsive):
                    await system.run("quick", "z")
            finally:
                go.set()
            assert await stuck > 0

    run_loop(main)


def test_pause_and_resume(project: Path) -> None:
    async def main() -> None:
        inside, gate = asyncio.Event(), asyncio.Event()

        async def stepper(request: LLMRequest) -> LLMResponse | str:
            if request.step == 1:
                inside.set()
                await gate.wait()
                return respond(call("list_files"))
            return "resumed and done"

        async with AsyncSystem(project, state="memory") as system:
            system.register_llm("stepper", stepper)
            system.add_template(template("stepper", "stepper"))
            pid = await system.spawn("stepper", "x")
            await asyncio.wait_for(inside.wait(), 30)
            await system.pause(pid)
            gate.set()  # step 1 ends; the process suspends before step 2
            paused = await system.wait(pid, timeout=30)
            assert paused.state is ProcessState.SUSPENDED
            await system.resume(pid)
            done = await system.wait(pid, timeout=30)
            assert (done.state, done.result) == (ProcessState.DEAD, "resumed and done")

    run_loop(main)


def test_without_pykkas_envelope_the_executor_path_does_the_same(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnix_actors.aio import asks

    monkeypatch.setattr(asks, "HAVE_ENVELOPE", False)  # as with a Pykka that moved it

    async def main() -> None:
        async with AsyncSystem(project, state="memory") as system:
            system.register_llm("quick", lambda r: "done")
            system.add_template(template("quick", "quick"))
            infos = await asyncio.gather(
                *(system.run("quick", f"t{i}", timeout=30) for i in range(10))
            )
            assert [i.exit_code for i in infos] == [0] * 10
            pid = await system.spawn("quick", "x")
            assert (await system.wait(pid, timeout=30)).exit_code == 0
            assert isinstance(await system.kill(pid, "SIGTERM"), str)  # exited: a no-op
            with pytest.raises(SpawnError):
                await system.run("quick", "x", driver="nope")

    run_loop(main)
