"""Checkpoints, graceful stop and resume in one host process (real SQLite files, real threads).

The kill -9 cases (a daemon killed at a random moment) are in test_durability_crash.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Collector, eventually

from rnix_actors import ProcessState, System
from rnix_actors.aio import AsyncSystem
from rnix_actors.drivers.base import ToolCall
from rnix_actors.drivers.replay import ReplayResponse, ReplayScript
from rnix_actors.kernel.devices import DeviceCall, Effect
from rnix_actors.store.checkpoints import CheckpointError
from rnix_actors.templates import AgentTemplate, Limits

STEPS = 5
TIMEOUT = 20.0


def work_input(n: int) -> dict[str, object]:
    return {"device": "/dev/work", "input": {"n": n}}


def work_script(steps: int = STEPS) -> ReplayScript:
    """Step i calls /dev/work with {"n": i}; then a final answer."""
    responses = [
        ReplayResponse(
            tool_calls=(ToolCall("", "call_device", {"device": "/dev/work", "input": {"n": i}}),)
        )
        for i in range(1, steps + 1)
    ]
    return ReplayScript((*responses, ReplayResponse(content="all done")))


class Work:
    """A host device that records each call and can hold call number ``hold_at``."""

    def __init__(self, hold_at: int | None = None) -> None:
        self.calls: list[tuple[int, int]] = []
        self.hold_at = hold_at
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, call: DeviceCall) -> str:
        n = int(call.args["n"])
        self.calls.append((call.pid, n))
        if n == self.hold_at:
            self.held.set()
            if not self.release.wait(TIMEOUT):
                return "timed out"
        return f"did {n}"


def make_system(
    root: Path, work: Work, devices: tuple[str, ...] = ("/dev/work", "/dev/fs")
) -> System:
    system = System(root, state_dir=root / "state", load_project=False)
    system.replay.add_script("work", work_script())
    system.register_device("/dev/work", work, effect=Effect.WRITE)
    system.add_template(
        AgentTemplate(name="worker", devices=devices, driver="replay", model="work",
                      limits=Limits(max_steps=20))
    )  # fmt: skip
    return system.start()


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def suspended_then_stopped(root: Path, at_call: int) -> int:
    """A worker paused while its call ``at_call`` runs, then a graceful stop: the PID of the
    suspended process the state dir keeps."""
    work = Work(hold_at=at_call)
    system = make_system(root, work)
    try:
        pid = system.spawn("worker", "count")
        assert work.held.wait(TIMEOUT)
        system.pause(pid)
        work.release.set()
        assert system.wait(pid, TIMEOUT).state is ProcessState.SUSPENDED
    finally:
        work.release.set()
        system.stop(checkpoint=True)
    return pid


def edit_store(root: Path, sql: str, *params: object) -> None:
    """Change the stopped system's store behind its back (as a corrupted disk would)."""
    db = sqlite3.connect(root / "state" / "rnix.db")
    with db:
        db.execute(sql, params)
    db.close()


def test_each_step_writes_one_checkpoint_with_the_calls_of_the_step_in_flight(root: Path) -> None:
    work = Work()
    system = make_system(root, work)
    try:
        info = system.run("worker", "count to five", timeout=TIMEOUT)
        assert info.exit_code == 0 and info.result == "all done"
        rows = system.checkpoints(info.pid)
        # Checkpoint 0 (the intent), then one per step with tool calls (the final answer
        # needs none).
        assert [(r.step, r.kind) for r in rows] == [(0, "start")] + [
            (n, "step") for n in range(1, STEPS + 1)
        ]
        assert all(r.bytes > 0 for r in rows)
        assert rows[-1].messages == 1 + 2 * (STEPS - 1) + 1  # intent, pairs, last call
        assert system._run is not None and system._run.checkpoints is not None
        found = system._run.checkpoints.latest(info.pid)
        (in_flight,) = found.state["in_flight"]
        assert in_flight["name"] == "call_device"
        last = found.messages[-1]
        assert last["tool_calls"][0]["id"] == in_flight["id"]
        assert last["tool_calls"][0]["input"] == {"device": "/dev/work", "input": {"n": 5}}
        assert found.state["driver_position"] == STEPS
    finally:
        system.stop()


def test_graceful_stop_suspends_at_a_boundary_and_the_next_start_resumes(root: Path) -> None:
    work = Work(hold_at=3)
    system = make_system(root, work)
    try:
        signals = Collector()
        system.subscribe(signals, syscalls=["Signal"])
        pid = system.spawn("worker", "count to five")
        assert work.held.wait(TIMEOUT)
        stopper = threading.Thread(target=system.stop, kwargs={"checkpoint": True})
        stopper.start()
        # Once the stop's SIGPAUSE is sent, the pause is seen before the next tool call:
        # only then release the call in flight.
        signals.wait_for(lambda e: e.pid == pid and e.args.get("signal") == "SIGPAUSE")
        work.release.set()
        stopper.join(TIMEOUT)
        assert not stopper.is_alive()
    finally:
        work.release.set()
        system.stop()
    assert work.calls == [(pid, 1), (pid, 2), (pid, 3)]
    after = Work()
    system = make_system(root, after)
    try:
        info = system.info(pid)
        assert info.state is ProcessState.SUSPENDED and info.depth == 0
        assert pid in [p.pid for p in system.ps()]
        system.resume(pid)
        done = system.wait(pid, TIMEOUT)
        assert done.state is ProcessState.DEAD and done.exit_code == 0
        assert done.result == "all done" and done.steps == STEPS + 1
        # Step 3's call had run and was answered before the suspend: never run again.
        assert after.calls == [(pid, 4), (pid, 5)]
        assert done.uuid == info.uuid
    finally:
        system.stop()


def test_a_resumed_process_cannot_gain_a_device_and_starts_at_depth_0(root: Path) -> None:
    work = Work(hold_at=2)
    system = make_system(root, work, devices=("/dev/work", "/dev/fs"))
    try:
        narrow = system.spawn("worker", "count", devices=["/dev/work"])
        wide = system.spawn("worker", "count")
        assert eventually(lambda: sum(n == 2 for _, n in work.calls) == 2, TIMEOUT)
        system.pause(narrow)
        system.pause(wide)
        work.release.set()
        assert system.wait(narrow, TIMEOUT).state is ProcessState.SUSPENDED
        assert system.wait(wide, TIMEOUT).state is ProcessState.SUSPENDED
    finally:
        work.release.set()
        system.stop(checkpoint=True)
    # The template now offers more devices: the resumed process still holds only its own.
    system = make_system(root, Work(), devices=("/dev/work", "/dev/fs", "/dev/shell"))
    try:
        system.resume(narrow)
        info = system.info(narrow)
        assert info.allowed_devices == ("/dev/work",) and info.depth == 0 and info.ppid == 0
        assert system.wait(narrow, TIMEOUT).exit_code == 0
    finally:
        system.stop(checkpoint=True)
    # The template lost /dev/fs: the resumed process loses it too.
    system = make_system(root, Work(), devices=("/dev/work",))
    try:
        assert system.info(wide).state is ProcessState.SUSPENDED
        system.resume(wide)
        assert system.info(wide).allowed_devices == ("/dev/work",)
        assert system.wait(wide, TIMEOUT).exit_code == 0
        with pytest.raises(CheckpointError, match=f"cannot resume PID {narrow}: it is dead"):
            system.resume_from(narrow)
    finally:
        system.stop()


def test_a_corrupted_checkpoint_is_refused_naming_the_pid_and_nothing_starts(root: Path) -> None:
    pid = suspended_then_stopped(root, at_call=2)
    edit_store(root, "UPDATE checkpoints SET data = '{not json' WHERE pid = ?", pid)
    after = Work()
    system = make_system(root, after)
    try:
        with pytest.raises(CheckpointError, match=f"checkpoint of PID {pid} is corrupted"):
            system.resume(pid)
        assert system.info(pid).state is ProcessState.SUSPENDED  # still listed, not half-run
        assert after.calls == []
    finally:
        system.stop()


def test_a_checkpoint_of_another_format_is_refused(root: Path) -> None:
    pid = suspended_then_stopped(root, at_call=2)
    edit_store(root, "UPDATE checkpoints SET format = 99 WHERE pid = ?", pid)
    system = make_system(root, Work())
    try:
        with pytest.raises(CheckpointError, match=f"PID {pid} has format 99"):
            system.resume_from(pid)
    finally:
        system.stop()


def test_checkpoints_off_writes_none(root: Path) -> None:
    from rnix_actors.config import Config, KernelConfig

    system = System(root, state_dir=root / "state", load_project=False,
                    config=Config(kernel=KernelConfig(checkpoints=False)))  # fmt: skip
    system.replay.add_script("work", work_script())
    system.register_device("/dev/work", Work())
    system.add_template(AgentTemplate(name="worker", devices=("/dev/work",), model="work"))
    with system:
        info = system.run("worker", "count", timeout=TIMEOUT)
        assert info.exit_code == 0
        assert system.checkpoints(info.pid) == []
        with pytest.raises(CheckpointError, match="checkpoints are off"):
            system.resume_from(info.pid)


def test_an_immune_suspension_survives_a_restart_and_immune_resume_continues(root: Path) -> None:
    work = Work(hold_at=2)
    system = make_system(root, work)
    try:
        pid = system.spawn("worker", "count")
        assert work.held.wait(TIMEOUT)
        system.pause(pid, origin="immune")  # what enforce mode sends
        work.release.set()
        assert system.wait(pid, TIMEOUT).exit_reason == "paused by immune"
    finally:
        work.release.set()
        system.stop(checkpoint=True)
    after = Work()
    system = make_system(root, after)
    try:
        assert pid in system.immune.status().suspended
        system.immune.resume(pid)
        done = system.wait(pid, TIMEOUT)
        assert done.exit_code == 0 and done.result == "all done"
        assert after.calls == [(pid, 3), (pid, 4), (pid, 5)]
    finally:
        system.stop()


def test_kill_of_a_recovered_suspended_process_ends_it(root: Path) -> None:
    pid = suspended_then_stopped(root, at_call=1)
    system = make_system(root, Work())
    try:
        system.kill(pid)
        assert system.info(pid).state is ProcessState.DEAD
        with pytest.raises(CheckpointError, match="it is dead"):
            system.resume_from(pid)
    finally:
        system.stop()
    system = make_system(root, Work())
    try:
        assert [p.pid for p in system.ps()] == []
        assert system.ps(all=True)[0].state is ProcessState.DEAD
    finally:
        system.stop()


def _committed(db: Path, pid: int) -> None:
    """``pid``'s row and checkpoint 0 are in the store, read by another connection (as the
    next start after a crash would read them)."""
    reader = sqlite3.connect(db)
    try:
        row = reader.execute("SELECT state FROM processes WHERE pid = ?", (pid,))
        assert row.fetchone() is not None, f"PID {pid} handed out before its row"
        seq = reader.execute("SELECT seq FROM checkpoints WHERE pid = ?", (pid,))
        assert [r[0] for r in seq.fetchall()][:1] == [0]
    finally:
        reader.close()


@pytest.mark.parametrize("api", ["threads", "asyncio"])
def test_a_pid_spawn_returned_is_in_the_store_with_its_first_checkpoint(
    root: Path, api: str
) -> None:
    """What a caller holds must survive a kill -9 right after spawn returns: the row and
    checkpoint 0 are committed before the PID is handed out."""
    work = Work(hold_at=1)
    system = make_system(root, work)
    db = root / "state" / "rnix.db"

    def check_and_end(pid: int) -> None:
        _committed(db, pid)
        system.kill(pid, "SIGKILL")
        system.wait(pid, timeout=TIMEOUT)

    async def spawn_async() -> None:
        async with AsyncSystem(system=system) as aio:  # stops the system at the end
            for _ in range(5):
                check_and_end(await aio.spawn("worker", "work"))
            work.release.set()  # the killed processes' held calls end before the stop

    try:
        if api == "threads":
            for _ in range(5):
                check_and_end(system.spawn("worker", "work"))
        else:
            asyncio.run(spawn_async())
    finally:
        work.release.set()
        system.stop()
