"""The process log writes process rows off the kernel's thread (real SQLite, real actors)."""

from __future__ import annotations

import time
from pathlib import Path

import attrs
from helpers import agent, scripted

from rnix_actors import System
from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.kernel.processlog import ProcessLog
from rnix_actors.messages.processlog import Sync
from rnix_actors.store.db import Store


def row(pid: int, state: ProcessState) -> ProcessInfo:
    return ProcessInfo(pid, f"u-{pid}", 0, "t", "go", state, 0, (), time.time())


def test_the_newest_row_of_each_pid_is_in_the_store_after_sync(tmp_path: Path) -> None:
    store = Store(tmp_path / "rnix.db")
    log = ProcessLog.start(store.open_for("process log"))  # the log owns and closes it
    try:
        for pid in (1, 2, 3):
            log.tell(row(pid, ProcessState.RUNNING))
        log.tell(attrs.evolve(row(2, ProcessState.DEAD), exit_code=0, exit_reason="completed"))
        log.ask(Sync(), timeout=5)
        states = {p.pid: p.state for p in store.list_processes()}
        assert states == {1: ProcessState.RUNNING, 2: ProcessState.DEAD, 3: ProcessState.RUNNING}
        log.tell(row(4, ProcessState.RUNNING))
    finally:
        log.stop(timeout=5)  # stopping writes what is pending
    assert {p.pid for p in store.list_processes()} == {1, 2, 3, 4}
    store.close()


def test_every_finished_process_is_recorded_when_the_system_stops(project: Path) -> None:
    with System(project) as system:
        agent(system, "w", scripted(["done"]))
        pids = [system.spawn("w", f"task {i}") for i in range(20)]
        for pid in pids:
            system.wait(pid, timeout=10)
        # Reading history right away sees every exit (ps(all=True) waits for the log).
        assert {p.pid for p in system.ps(all=True) if p.state is ProcessState.DEAD} >= set(pids)
    store = Store(project / ".rnix" / "rnix.db")
    rows = {p.pid: p for p in store.list_processes()}
    store.close()
    assert all(rows[pid].state is ProcessState.DEAD and rows[pid].exit_code == 0 for pid in pids)
