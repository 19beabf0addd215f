"""Random crash injection over many seeds, crashing agents and supervisor actors alike.

Checked after each run: no lost exit (the tree settles with every running child on a live
process), no duplicate (never two live processes for one child identity, replayed from the
kernel's Start/Exit events in bus order), restart intensity never exceeded by one supervisor
incarnation, no orphan after stop, and no thread left behind.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import Changes, Collector
from support_supervision import Brains, actor_ref, child

from rnix_actors import ChildSpec, Event, Restart, Strategy, SupervisorSpec, System
from rnix_actors.messages.supervision import TerminateChild

LIMITS = {"/soak": 40, "/soak/g1": 3, "/soak/g2": 4, "/soak/g2/g3": 2}


def tree(brains: Brains) -> SupervisorSpec:
    def kids(*names: str) -> tuple[ChildSpec, ...]:
        return tuple(
            child(n, brains.worker(n), Restart.PERMANENT if n.endswith("p") else Restart.TRANSIENT)
            for n in names
        )

    g3 = SupervisorSpec("g3", Strategy.ONE_FOR_ONE, kids("z1"), max_restarts=LIMITS["/soak/g2/g3"])
    g2 = SupervisorSpec(
        "g2",
        Strategy.REST_FOR_ONE,
        (*kids("y1", "y2p"), ChildSpec("g3", supervisor=g3, restart=Restart.PERMANENT)),
        max_restarts=LIMITS["/soak/g2"],
    )
    g1 = SupervisorSpec("g1", Strategy.ONE_FOR_ALL, kids("x1", "x2", "x3p"), max_restarts=3)
    return SupervisorSpec(
        "soak",
        Strategy.ONE_FOR_ONE,
        (
            *kids("a"),
            ChildSpec("g1", supervisor=g1),
            ChildSpec("g2", supervisor=g2, restart=Restart.PERMANENT),
            *kids("bp"),
        ),
        max_restarts=LIMITS["/soak"],
    )


def walk(view: Any, found: dict[str, list[Any]]) -> bool:
    """Collect agent children and supervisor paths; True if the subtree has settled."""
    settled = True
    for c in view.children:
        if c.kind == "supervisor":
            if c.status == "running":
                if c.supervisor is None or c.supervisor.status != "running":
                    settled = False
                else:
                    found["sups"].append(c.path)
                    settled = walk(c.supervisor, found) and settled
            elif c.status not in ("done", "failed", "stopped"):
                settled = False
        elif c.status == "running":
            if c.pid is None or c.state != "running":
                settled = False
            else:
                found["agents"].append(c.pid)
        elif c.status not in ("done", "failed", "stopped"):
            settled = False
    return settled


def survey(handle: Any) -> tuple[bool, dict[str, list[Any]]]:
    found: dict[str, list[Any]] = {"agents": [], "sups": []}
    if handle.status != "running":
        return True, found
    view = handle.view()
    return walk(view, found) and view.status == "running", found


def check_no_duplicates(events: list[Event]) -> None:
    identity = {
        e.args["child_pid"]: f"{e.args['path']}/{e.args['child']}"
        for e in events
        if e.syscall == "SupervisorChildStart" and "child_pid" in e.args
    }
    live: dict[str, set[int]] = {}
    for e in events:
        if e.pid in identity and e.syscall in ("Start", "Exit"):
            running = live.setdefault(identity[e.pid], set())
            if e.syscall == "Start":
                assert not running, f"{identity[e.pid]}: PID {e.pid} started beside {running}"
                running.add(e.pid)
            else:
                running.discard(e.pid)


def check_intensity(events: list[Event]) -> None:
    """Per supervisor incarnation, count the exits it answered with a restart (one restart
    for the intensity, however many children the strategy restarts for it)."""
    restarts: dict[str, int] = {}
    answered: dict[str, bool] = {}
    for e in events:
        if e.template != "supervisor":
            continue
        path = e.args["path"]
        if e.syscall == "SupervisorStart":
            restarts[path], answered[path] = 0, True  # a fresh incarnation, a fresh window
        elif e.syscall == "SupervisorChildExit":
            answered[path] = False
        elif e.syscall == "SupervisorRestart" and not answered[path]:
            answered[path] = True
            restarts[path] += 1
            assert restarts[path] <= LIMITS[path], f"{path} restarted more than its intensity"


@pytest.mark.parametrize("seed", range(16))
def test_random_crashes_of_agents_and_supervisors(project: Path, seed: int) -> None:
    rng = random.Random(seed)
    before = set(threading.enumerate())
    events = Collector()
    brains = Brains()
    with System(project) as system:
        changes = Changes(system)
        system.subscribe(events)
        handle = system.supervise(tree(brains))
        changes.until(lambda: survey(handle)[0], what="tree up")
        for _ in range(10):
            _, found = survey(handle)
            if handle.status != "running":
                break
            op = rng.choice(["sigkill", "sigkill", "crash", "sup_bug", "sup_stop"])
            if op in ("sigkill", "crash") and found["agents"]:
                pid = rng.choice(found["agents"])
                if op == "sigkill":
                    system.kill(pid, "SIGKILL")  # type: ignore[arg-type]
                else:
                    brains.crash_next.add(system.info(pid).template)
            elif found["sups"]:
                sup = actor_ref(system.supervisor(rng.choice(found["sups"])))
                if op == "sup_bug":
                    sup.tell(TerminateChild("no-such-child"))  # raises in a tell: a crash
                else:
                    sup.stop(block=False)  # a Pykka-level stop
            # No lost exit: whatever happened, the tree settles again.
            changes.until(lambda: survey(handle)[0], timeout=30, what=f"settled after {op}")
        handle.stop()
        assert handle.wait(30).status in ("stopped", "escalated")
        history = system.ps(all=True)
        assert history and all(p.finished for p in history), "orphan after stop"
        system.sync_events()
        check_no_duplicates(events.events)
        check_intensity(events.events)
    leaked = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    for thread in leaked:
        thread.join(5)
    assert not [t.name for t in leaked if t.is_alive()]
