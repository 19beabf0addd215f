"""Supervisors on links (real actors, agent processes and threads): crashed supervisors,
start failures, restart types, stop order, shutdown times."""

from __future__ import annotations

import math
import threading

import pytest
from helpers import Changes, Collector, call, respond
from support_supervision import Brains, actor_ref, all_running, child

from rnix_actors import (
    AgentTemplate,
    ChildSpec,
    LLMRequest,
    LLMResponse,
    ProcessState,
    Restart,
    Strategy,
    SupervisorSpec,
    System,
)
from rnix_actors.messages.supervision import TerminateChild


def team_tree(brains: Brains, **kw: object) -> SupervisorSpec:
    team = SupervisorSpec(
        "team",
        Strategy.ONE_FOR_ONE,
        (child("t1", brains.worker("t1")), child("t2", brains.worker("t2"))),
    )
    return SupervisorSpec(
        "root",
        Strategy.ONE_FOR_ONE,
        (child("solo", brains.worker("solo")), ChildSpec("team", supervisor=team, **kw)),  # type: ignore[arg-type]
    )


def team_pids(view: object) -> list[int]:
    team = next(c for c in view.children if c.name == "team")  # type: ignore[attr-defined]
    assert team.supervisor is not None
    return [c.pid for c in team.supervisor.children]


@pytest.mark.parametrize("how", ["exception", "pykka_stop"])
def test_a_crashed_nested_supervisor_takes_its_subtree_down_and_is_restarted(
    system: System, how: str
) -> None:
    changes = Changes(system)
    brains = Brains()
    handle = system.supervise(team_tree(brains))
    changes.until(lambda: all_running(handle, system.table), what="tree up")
    before = handle.view()
    old = team_pids(before)
    solo = before.children[0].pid
    team = actor_ref(handle.supervisor("team"))
    if how == "exception":
        team.tell(TerminateChild("no-such-child"))  # a tell that raises: a bug in the actor
    else:
        team.stop(block=False)
    changes.until(
        lambda: handle.view().children[1].restarts == 1 and all_running(handle, system.table),
        what="team restarted",
    )
    # Every process of the old subtree is dead (no orphan), the new ones are new, solo untouched.
    assert all(system.info(pid).state is ProcessState.DEAD for pid in old)
    assert set(team_pids(handle.view())).isdisjoint(old)
    assert handle.view().children[0].pid == solo and handle.view().children[0].restarts == 0
    assert "supervisor" in handle.view().children[1].last_exit
    brains.everyone.set()
    assert handle.wait(30).status == "completed"


def test_a_crashed_root_kills_every_process_and_reports_its_final_view(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    handle = system.supervise(team_tree(brains))
    changes.until(lambda: all_running(handle, system.table), what="tree up")
    pids = [handle.view().children[0].pid, *team_pids(handle.view())]
    actor_ref(handle).tell(TerminateChild("no-such-child"))
    final = handle.wait(30)
    assert final.status == "escalated" and "crashed" in final.reason
    assert all(system.info(pid).state is ProcessState.DEAD for pid in pids)  # type: ignore[arg-type]
    assert not [p for p in system.ps() if not p.finished]


@pytest.mark.parametrize(
    "strategy", [Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE]
)
def test_a_child_that_cannot_start_escalates_without_orphans(
    system: System, strategy: Strategy
) -> None:
    brains = Brains()
    events = Collector()
    system.subscribe(events)
    broken = AgentTemplate(name="broken", devices=("/dev/fs",), driver="no-such-driver")
    spec = SupervisorSpec(
        "fails",
        strategy,
        (
            child("a", brains.worker("a")),
            ChildSpec("bad", agent=broken, intent="never starts"),
            child("c", brains.worker("c")),
        ),
        max_restarts=3,
    )
    handle = system.supervise(spec)
    final = handle.wait(30)
    assert final.status == "escalated", final.reason
    assert "start failed" in final.reason and "no-such-driver" in final.reason
    system.sync_events()
    # No orphan: every process this tree ever started is dead.
    assert all(p.finished for p in system.ps(all=True))
    assert not [p for p in system.ps() if not p.finished]
    # No recursion, no runaway: the bad child was tried once plus max_restarts times.
    exits = [e for e in events.events if e.syscall == "SupervisorChildExit"]
    assert sum(1 for e in exits if e.args["child"] == "bad") == 4
    # One live incarnation per sibling at any time (kernel Start/Exit events, in bus order).
    names = {
        e.args["child_pid"]: e.args["child"]
        for e in events.events
        if e.syscall == "SupervisorChildStart" and "child_pid" in e.args
    }
    live: dict[str, int] = {}
    for e in events.events:
        if e.pid in names and e.syscall in ("Start", "Exit"):
            live[names[e.pid]] = live.get(names[e.pid], 0) + (1 if e.syscall == "Start" else -1)
            assert live[names[e.pid]] <= 1, f"two live copies of {names[e.pid]}"
    assert all(v == 0 for v in live.values())


def test_a_transient_child_ended_by_sigterm_is_not_restarted(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    handle = system.supervise(
        SupervisorSpec(
            "types",
            children=(
                child("t", brains.worker("t"), Restart.TRANSIENT),
                child("p", brains.worker("p"), Restart.PERMANENT),
                child("keep", brains.worker("keep")),
            ),
        )
    )
    changes.until(lambda: all_running(handle, system.table), what="up")
    t, p = handle.view().children[0].pid, handle.view().children[1].pid
    system.kill(t, "SIGTERM")  # type: ignore[arg-type]
    system.kill(p, "SIGTERM")  # type: ignore[arg-type]
    changes.until(
        lambda: (
            handle.view().children[0].status == "done"
            and handle.view().children[1].restarts == 1
            and handle.view().children[1].state == "running"
        ),
        what="t done, p restarted",
    )
    view = handle.view()
    assert view.children[0].restarts == 0 and "SIGTERM" in view.children[0].last_exit
    system.kill(view.children[2].pid, "SIGKILL")  # type: ignore[arg-type]
    changes.until(lambda: handle.view().children[2].restarts == 1, what="SIGKILL is abnormal")
    handle.stop()


def test_children_stop_in_reverse_start_order_across_kinds(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    events = Collector()
    system.subscribe(events)
    team = SupervisorSpec(
        "team", children=(child("t1", brains.worker("t1")), child("t2", brains.worker("t2")))
    )
    handle = system.supervise(
        SupervisorSpec(
            "mixed",
            children=(
                child("first", brains.worker("first")),
                ChildSpec("team", supervisor=team),
                child("last", brains.worker("last")),
            ),
        )
    )
    changes.until(lambda: all_running(handle, system.table), what="up")
    view = handle.view()
    first, last = view.children[0].pid, view.children[2].pid
    t1, t2 = team_pids_of(view)
    handle.stop()
    system.sync_events()
    order = [
        e.pid
        for e in events.events
        if e.syscall in ("Signal", "Exit") and e.pid in (first, last, t1, t2)
    ]
    kinds = [
        (e.syscall, e.pid)
        for e in events.events
        if e.syscall in ("Signal", "Exit") and e.pid in (first, last, t1, t2)
    ]
    assert order, kinds
    # last is signalled first; the team's agents (t2 before t1) are dead before first is signalled.
    signals = [pid for kind, pid in kinds if kind == "Signal"]
    assert signals == [last, t2, t1, first]
    exit_of = {pid: i for i, (kind, pid) in enumerate(kinds) if kind == "Exit"}
    signal_of = {pid: i for i, (kind, pid) in enumerate(kinds) if kind == "Signal"}
    assert exit_of[t1] < signal_of[first] and exit_of[t2] < signal_of[first]


def team_pids_of(view: object) -> tuple[int, int]:
    t1, t2 = team_pids(view)
    return t1, t2


def holding_brain(hold: threading.Event, entered: threading.Event | None = None):  # type: ignore[no-untyped-def]
    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            if entered is not None:
                entered.set()
            hold.wait(60)
            return respond(call("list_files"))
        return "done"

    return brain


def test_a_childs_shutdown_is_its_sigterm_grace_not_the_kernels(system: System) -> None:
    changes = Changes(system)
    events = Collector()
    system.subscribe(events)
    hold = threading.Event()
    handle = system.supervise(
        SupervisorSpec("grace", children=(child("slow", holding_brain(hold), shutdown=3.0),))
    )
    changes.until(lambda: handle.view().children[0].state == "running", what="up")
    pid = handle.view().children[0].pid
    stopper = threading.Thread(target=handle.stop)
    stopper.start()
    signal = events.wait_for(lambda e: e.pid == pid and e.syscall == "Signal")
    assert signal.args["signal"] == "SIGTERM" and signal.args["grace"] > 3.0
    hold.set()
    stopper.join(30)
    assert system.info(pid).exit_reason == "terminated by SIGTERM from supervisor /grace"  # type: ignore[arg-type]


def test_shutdown_infinity_waits_for_the_child(system: System) -> None:
    changes = Changes(system)
    events = Collector()
    system.subscribe(events)
    hold, entered = threading.Event(), threading.Event()
    brains = Brains()
    slow_spec = child("slow", holding_brain(hold, entered), shutdown=math.inf)
    team = SupervisorSpec("team", children=(slow_spec,))
    handle = system.supervise(
        SupervisorSpec(
            "inf",
            children=(child("a", brains.worker("a")), ChildSpec("team", supervisor=team)),
        )
    )
    assert handle.get_childspec("team").shutdown_time == math.inf  # a supervisor's default
    assert handle.get_childspec("a").shutdown_time == 5.0
    changes.until(lambda: all_running(handle, system.table), what="up")
    slow = team_pids(handle.view())[0]
    assert entered.wait(10)  # slow is inside its first step: SIGTERM waits for it
    stopper = threading.Thread(target=handle.stop)
    stopper.start()
    signal = events.wait_for(lambda e: e.pid == slow and e.syscall == "Signal")
    assert signal.args["grace"] == math.inf  # the kernel schedules no SIGKILL
    assert stopper.is_alive()  # the parent waits for the team, which waits for slow
    hold.set()  # until now the child blocks its step
    stopper.join(30)
    assert not stopper.is_alive()
    assert system.info(slow).exit_reason == "terminated by SIGTERM from supervisor /inf/team"
    assert handle.status == "stopped"


def test_a_storm_of_exits_restarts_every_child_once(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    names = [f"s{i}" for i in range(30)]
    handle = system.supervise(
        SupervisorSpec(
            "storm", children=tuple(child(n, brains.worker(n)) for n in names), max_restarts=30
        )
    )
    changes.until(lambda: all_running(handle, system.table), what="up")
    old = {c.name: c.pid for c in handle.which_children()}
    brains.crash_next.update(names)  # every child fails its next step, nearly at once
    changes.until(
        lambda: (
            all(c.restarts == 1 for c in handle.which_children())
            and all_running(handle, system.table)
        ),
        what="all restarted",
    )
    kids = handle.which_children()
    assert all(c.pid != old[c.name] and c.old_pids == (old[c.name],) for c in kids)
    assert all(system.info(p).state is ProcessState.DEAD for p in old.values())  # type: ignore[arg-type]
    assert handle.count_children()["active"] == 30
    handle.stop()
