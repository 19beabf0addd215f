"""State options (dir / temp / memory), the event-log keep policy, and the API's edges that a
host application meets: stopped systems, Pykka errors, the depth-0 narrowing message."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import Collector, agent, call, respond, scripted
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors import (
    ChildSpec,
    ConfigError,
    KeepLogs,
    LLMRequest,
    LLMResponse,
    SpawnError,
    SupervisorSpec,
    System,
    SystemStopped,
    Unresponsive,
)
from rnix_actors.config import load_config
from rnix_actors.errors import SystemFailed
from rnix_actors.kernel.logkeep import LogKeeper, expired


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*")}


def one_step(system: System, name: str = "quick") -> None:
    agent(system, name, scripted([respond(call("list_files")), "done"]))


# -- state="memory" / "temp" ---------------------------------------------------------------
def test_memory_state_writes_no_file_anywhere(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RNIX_STATE_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # a temp file would land here
    before = tree(tmp_path)
    with System(project, state="memory") as system:
        one_step(system)
        infos = [system.run("quick", f"task {i}", timeout=30) for i in range(3)]
        assert [i.exit_code for i in infos] == [0, 0, 0]
        history = system.ps(all=True)  # SQLite in memory still answers
        assert [p.pid for p in history] == [i.pid for i in infos]
        assert system.state_dir is None
        with pytest.raises(SystemStopped, match="no event logs"):
            system.events_file(infos[0].pid)
    assert tree(tmp_path) == before
    assert not (project / ".rnix").exists()
    with pytest.raises(SystemStopped, match="no history"):
        system.ps(all=True)


def test_temp_state_is_a_fresh_directory_removed_by_stop(project: Path) -> None:
    with System(project, state="temp") as system:
        one_step(system)
        place = system.state_dir
        assert place is not None and place.is_dir() and project not in place.parents
        info = system.run("quick", "x", timeout=30)
        system.sync_events()
        assert system.events_file(info.pid).read_text().count("\n") > 3
    assert not place.exists()
    assert not (project / ".rnix").exists()


def test_memory_or_temp_refuses_a_state_dir(project: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="drop state_dir"):
        System(project, state="memory", state_dir=tmp_path / "s")
    with pytest.raises(ValueError, match="state must be one of"):
        System(project, state="disk")  # type: ignore[arg-type]


# -- keep policy ---------------------------------------------------------------------------
logs = st.lists(st.integers(min_value=0, max_value=500), max_size=30)


@given(sizes=logs, bound=st.integers(min_value=1, max_value=2000), age=st.integers(0, 40))
def test_expired_keeps_the_newest_within_both_bounds(
    sizes: list[int], bound: int, age: int
) -> None:
    closed = [(pid, float(pid), size) for pid, size in enumerate(sizes)]  # pid order = age order
    max_age = float(age) + 0.5
    now = float(len(sizes))
    gone = expired(closed, KeepLogs(max_bytes=bound, max_age=max_age), now, sum(sizes))
    kept = closed[len(gone) :]
    assert gone == [pid for pid, _, _ in closed[: len(gone)]]  # oldest first, no gaps
    assert sum(size for _, _, size in kept) <= bound
    assert all(at >= now - max_age for _, at, _ in kept)
    if gone:  # the last one removed was over one of the bounds
        _, at, _ = closed[len(gone) - 1]
        assert at < now - max_age or sum(s for _, _, s in closed[len(gone) - 1 :]) > bound


def test_keep_bounds_the_logs_of_a_running_system(project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with System(project, state_dir=state, keep=KeepLogs(max_bytes=6000)) as system:
        one_step(system)
        pids = [system.run("quick", f"task {i}", timeout=30).pid for i in range(12)]
        system.sync_events()
        kept = sorted(int(p.name) for p in (state / "proc").iterdir())
        total = sum(p.stat().st_size for p in (state / "proc").rglob("events.jsonl"))
    assert 0 < len(kept) < len(pids) and total <= 6000
    assert kept == pids[-len(kept) :]  # the newest stay


def test_keep_by_age_and_logs_left_by_earlier_runs(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid in (1, 2, 3):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "events.jsonl").write_text("{}\n" * pid)
    (proc / "notes").mkdir()  # not a PID: never touched
    now = [0.0]
    keeper = LogKeeper(proc, KeepLogs(max_age=100.0), clock=lambda: now[0])
    now[0] = (proc / "3" / "events.jsonl").stat().st_mtime + 50
    keeper.scan()
    assert sorted(p.name for p in proc.iterdir()) == ["1", "2", "3", "notes"]
    now[0] += 100
    (proc / "4").mkdir()
    (proc / "4" / "events.jsonl").write_text("{}\n")
    keeper.closed(4)
    assert sorted(p.name for p in proc.iterdir()) == ["4", "notes"]
    assert keeper.removed == 3


def test_keep_from_config_and_its_errors(project: Path) -> None:
    rnix = project / ".rnix"
    rnix.mkdir()
    (rnix / "config.yaml").write_text("kernel:\n  event_log_keep: {max_mb: 2, max_days: 0.5}\n")
    keep = load_config(rnix / "config.yaml").kernel.event_log_keep
    assert keep == KeepLogs(max_bytes=2_000_000, max_age=43_200.0)
    (rnix / "config.yaml").write_text("kernel:\n  event_log_keep: {max_mb: -1}\n")
    with pytest.raises(ConfigError, match=r"config.yaml.*kernel.event_log_keep.max_mb"):
        load_config(rnix / "config.yaml")
    (rnix / "config.yaml").write_text("kernel:\n  event_log_keep: {max_files: 3}\n")
    with pytest.raises(ConfigError, match="max_files"):
        load_config(rnix / "config.yaml")
    with pytest.raises(ValueError, match="max_bytes"):
        KeepLogs(max_bytes=0)


# -- a stopped system, Pykka's errors, messages --------------------------------------------
def test_a_stopped_system_refuses_live_calls_alike(project: Path, tmp_path: Path) -> None:
    system = System(project, state_dir=tmp_path / "s")
    with pytest.raises(SystemStopped):
        system.ps()
    with system:
        one_step(system)
        pid = system.run("quick", "x", timeout=30).pid
        assert system.ps() == []
    for live_call in (system.ps, lambda: system.spawn("quick", "y"), lambda: system.kill(pid)):
        with pytest.raises(SystemStopped):
            live_call()
    assert [p.pid for p in system.ps(all=True)] == [pid]  # history needs no running system


def test_a_dead_kernel_is_system_stopped_not_a_pykka_error(system: System) -> None:
    one_step(system)
    assert system._run is not None
    kernel = system._run.kernel.current
    assert kernel is not None
    kernel.stop()
    assert system._failed_event.wait(10)  # the application saw the kernel end
    with pytest.raises(SystemFailed, match="service kernel ended"):
        system.spawn("quick", "x")
    with pytest.raises(SystemStopped):
        system.kill(1)


def test_a_kernel_that_does_not_answer_is_unresponsive(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, go = threading.Event(), threading.Event()

    class SlowToPrepare:
        name = "slow"

        def complete(self, request: LLMRequest, cancel: object) -> LLMResponse:
            return LLMResponse(content="done")

        def prepare(self, model: str) -> None:  # runs in the kernel's thread during a spawn
            entered.set()
            go.wait(10)

        def release(self, pid: int) -> None:
            pass

    system.register_driver(SlowToPrepare())  # type: ignore[arg-type]
    one_step(system)
    stuck = threading.Thread(target=system.spawn, args=("quick", "x"), kwargs={"driver": "slow"})
    stuck.start()
    assert entered.wait(10)
    monkeypatch.setattr("rnix_actors.system.ASK_TIMEOUT", 0.2)
    try:
        with pytest.raises(Unresponsive, match=r"did not answer within 0\.2s") as caught:
            system.spawn("quick", "y")
        assert isinstance(caught.value, TimeoutError)
    finally:
        go.set()
        stuck.join(10)


def test_narrowing_to_nothing_at_depth_0_speaks_of_the_request(system: System) -> None:
    agent(system, "fs-only", scripted(["done"]), devices=("/dev/fs",))
    with pytest.raises(SpawnError) as caught:
        system.spawn("fs-only", "x", devices=["/dev/shell"])
    text = str(caught.value)
    assert "parent" not in text
    assert "devices=['/dev/shell']" in text and "['/dev/fs']" in text


def test_llm_request_carries_the_intent(system: System) -> None:
    seen: list[str] = []

    def brain(request: LLMRequest) -> str:
        seen.append(request.intent)
        return "ok"

    agent(system, "echo", brain)
    system.run("echo", "count the files", timeout=30)
    assert seen == ["count the files"]


def test_cancelled_subscription_gets_nothing_more(system: System) -> None:
    one_step(system)
    before, after = Collector(), Collector()
    sub = system.subscribe(before)
    system.subscribe(after)
    system.run("quick", "x", timeout=30)
    system.sync_events()
    sub.cancel()
    sub.cancel()  # twice: nothing
    seen = len(before.events)
    pid = system.run("quick", "y", timeout=30).pid
    system.sync_events()
    assert len(before.events) == seen and after.of(pid, "Exit")


def test_cancel_soon_from_the_callback_itself(system: System) -> None:
    one_step(system)
    seen: list[str] = []
    holder: list[object] = []

    def once(event: object) -> None:
        seen.append(str(getattr(event, "syscall", "")))
        holder[0].cancel_soon()  # type: ignore[attr-defined]

    holder.append(system.subscribe(once))
    system.run("quick", "x", timeout=30)
    system.sync_events()  # the bus took the Unsubscribe after the events already queued
    assert seen and seen[0] == "Start"
    count = len(seen)
    system.run("quick", "y", timeout=30)
    system.sync_events()
    assert len(seen) == count


def test_supervisor_handle_wait(system: System) -> None:
    release = threading.Event()

    def waits(request: LLMRequest) -> LLMResponse | str:
        return "done" if release.wait(0.05) else respond(call("list_files"))

    spec = SupervisorSpec("jobs", children=(ChildSpec("w", agent=waits, intent="work"),))
    handle = system.supervise(spec)
    with pytest.raises(TimeoutError, match="/jobs still running"):
        handle.wait(timeout=0.2)
    views: list[str] = []
    handle.add_done_callback(lambda view: views.append(view.status))
    release.set()
    final = handle.wait(timeout=30)
    assert final.status == "completed" and views == ["completed"]
    handle.add_done_callback(lambda view: views.append("late " + view.status))
    assert views == ["completed", "late completed"]


def test_stop_goes_on_when_a_service_does_not_stop_in_time(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import pykka

    system = System(project, state="memory").start()
    real = system._topology
    assert real is not None

    class Stuck:  # a service busy with a backlog: its stop times out (as Pykka says it)
        def stop(self) -> None:
            real.stop()
            raise pykka.Timeout("10.0 seconds")

    system._topology = Stuck()  # type: ignore[assignment]
    system.stop()
    assert not system.running
    assert "did not stop in time" in caplog.text
    with pytest.raises(SystemStopped):
        system.spawn("code-analyst", "x")
