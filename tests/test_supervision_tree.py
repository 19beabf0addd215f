"""Supervision trees on real actors, agent processes and threads."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pykka
import pytest
from helpers import Changes, Collector, call, respond

from rnix_actors import (
    Backoff,
    ChildSpec,
    ConfigError,
    LLMRequest,
    LLMResponse,
    MigrationAnswer,
    MigrationOffer,
    ProcessState,
    Restart,
    Strategy,
    SupervisorSpec,
    System,
)


class Brains:
    """Python brains whose behaviour the test controls, shared by all incarnations."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.crashes: Counter[str] = Counter()
        self.crash_budget: dict[str, int] = {}

    def worker(self, tag: str) -> Any:
        """Runs until released; crashes on its first step while its crash budget lasts."""

        def brain(request: LLMRequest) -> LLMResponse | str:
            if request.step == 1 and self.crashes[tag] < self.crash_budget.get(tag, 0):
                self.crashes[tag] += 1
                raise RuntimeError(f"{tag} crashed")
            if self.release.is_set():
                return f"{tag} done"
            self.release.wait(0.1)  # pacing: 2 context slots per step, SIGTERM seen within 0.1s
            return respond(call("list_files"))

        return brain


def child(
    name: str, brain: Any, restart: Restart | None = Restart.TRANSIENT, **kw: Any
) -> ChildSpec:
    return ChildSpec(
        name,
        agent=brain,
        intent=f"{name} work",
        restart=restart,
        devices=("/dev/fs",),
        shutdown=kw.pop("shutdown", 1.0),
        max_steps=kw.pop("max_steps", 100_000),
        **kw,
    )


def pids(view: Any) -> dict[str, int | None]:
    return {c.name: c.pid for c in view.children}


def test_one_for_one_restarts_only_the_crashed_child(system: System) -> None:
    brains = Brains()
    brains.crash_budget["b"] = 1
    changes = Changes(system)
    handle = system.supervise(
        SupervisorSpec(
            "svc",
            Strategy.ONE_FOR_ONE,
            (
                child("a", brains.worker("a")),
                child("b", brains.worker("b")),
                child("c", brains.worker("c")),
            ),
        )
    )
    changes.until(
        lambda: (
            handle.view().children[1].restarts == 1 and handle.view().children[1].state == "running"
        ),
        what="b restarted once and running",
    )
    view = handle.view()
    assert [c.restarts for c in view.children] == [0, 1, 0]
    b = view.children[1]
    assert b.old_pids and b.pid not in b.old_pids
    assert system.info(b.old_pids[0]).exit_reason.startswith("llm error")
    assert all(
        system.info(c.pid).state is ProcessState.RUNNING for c in view.children if c.pid is not None
    )
    drawn = str(handle.view())
    assert drawn.splitlines()[0].startswith("/svc  one_for_one  running")
    assert f"b  agent {b.agent}  PID {b.pid}" in drawn
    with pytest.raises(TimeoutError):
        handle.wait(timeout=0.05)
    brains.release.set()
    final = handle.wait(timeout=30)
    assert handle.status == final.status == "completed"
    assert final.reason == handle.reason == "all children completed"
    assert [c.status for c in final.children] == ["done", "done", "done"]


def test_one_for_all_restarts_everyone_in_order(system: System) -> None:
    brains = Brains()
    events = Collector()
    system.subscribe(events)
    changes = Changes(system)
    handle = system.supervise(
        SupervisorSpec(
            "all",
            Strategy.ONE_FOR_ALL,
            (
                child("a", brains.worker("a")),
                child("b", brains.worker("b")),
                child("c", brains.worker("c")),
            ),
        )
    )
    changes.until(lambda: all(c.state == "running" for c in handle.view().children))
    first = pids(handle.view())
    system.kill(first["b"], "SIGKILL")  # type: ignore[arg-type]
    changes.until(
        lambda: all(c.restarts == 1 and c.state == "running" for c in handle.view().children)
    )
    second = pids(handle.view())
    assert all(second[n] != first[n] for n in "abc")
    system.sync_events()
    stops = [
        e
        for e in events.events
        if e.syscall == "Signal" and e.args.get("origin") == "supervisor /all"
    ]
    assert [e.pid for e in stops[:2]] == [first["c"], first["a"]]  # reverse start order
    starts = [e.args["child"] for e in events.events if e.syscall == "SupervisorChildStart"]
    assert starts == ["a", "b", "c", "a", "b", "c"]
    handle.stop()
    assert handle.status == "stopped"


def test_rest_for_one_restarts_the_crashed_and_later_children(system: System) -> None:
    brains = Brains()
    changes = Changes(system)
    handle = system.supervise(
        SupervisorSpec(
            "rest",
            Strategy.REST_FOR_ONE,
            (
                child("a", brains.worker("a")),
                child("b", brains.worker("b")),
                child("c", brains.worker("c")),
            ),
        )
    )
    changes.until(lambda: all(c.state == "running" for c in handle.view().children))
    first = pids(handle.view())
    system.kill(first["b"], "SIGKILL")  # type: ignore[arg-type]
    changes.until(
        lambda: (
            [c.restarts for c in handle.view().children] == [0, 1, 1]
            and all(c.state == "running" for c in handle.view().children)
        )
    )
    assert pids(handle.view())["a"] == first["a"]
    handle.stop(kill=True)


def test_transient_and_temporary_children(system: System) -> None:
    brains = Brains()
    brains.crash_budget = {"t": 1, "tmp": 1}
    brains.release.set()
    handle = system.supervise(
        SupervisorSpec(
            "types",
            Strategy.ONE_FOR_ONE,
            (
                child("t", brains.worker("t"), Restart.TRANSIENT),
                child("tmp", brains.worker("tmp"), Restart.TEMPORARY),
                child("ok", brains.worker("ok"), Restart.TRANSIENT),
            ),
        )
    )
    view = handle.wait(timeout=20)
    assert view.status == handle.status == "completed"
    assert brains.crashes == Counter({"t": 1, "tmp": 1})


def test_escalation_through_a_three_level_tree(system: System) -> None:
    brains = Brains()
    brains.crash_budget["leaf"] = 100
    events = Collector()
    system.subscribe(events)
    leaf = SupervisorSpec(
        "inner", Strategy.ONE_FOR_ONE, (child("leaf", brains.worker("leaf")),), max_restarts=1
    )
    middle = SupervisorSpec(
        "middle", Strategy.ONE_FOR_ONE, (ChildSpec("inner", supervisor=leaf),), max_restarts=1
    )
    top = SupervisorSpec(
        "top",
        Strategy.ONE_FOR_ONE,
        (ChildSpec("middle", supervisor=middle), child("bystander", brains.worker("bystander"))),
        max_restarts=1,
    )
    handle = system.supervise(top)
    assert handle.wait(timeout=20).status == handle.status == "escalated"
    assert "max_restarts_exceeded: child 'middle'" in handle.reason
    system.sync_events()
    escalations = [e.args["path"] for e in events.events if e.syscall == "SupervisorEscalate"]
    # Each level allows one restart: 2 middle runs x 2 inner runs x 2 leaf runs.
    assert escalations.count("/top/middle/inner") == 4
    assert escalations.count("/top/middle") == 2
    assert escalations[-1] == "/top"
    # The leaf failed (1 + 1 restart) per inner incarnation: 2 inner runs per middle run.
    assert brains.crashes["leaf"] == 2 * 2 * 2
    assert system.ps() == []  # everything stopped, the bystander too


def test_stale_exit_after_restart_restarts_nothing(system: System) -> None:
    brains = Brains()
    events = Collector()
    system.subscribe(events, ["SupervisorStaleExit", "SupervisorRestart"])
    changes = Changes(system)
    handle = system.supervise(
        SupervisorSpec(
            "stale",
            Strategy.ONE_FOR_ALL,
            (child("a", brains.worker("a")), child("b", brains.worker("b"))),
        )
    )
    changes.until(lambda: all(c.state == "running" for c in handle.view().children))
    first = pids(handle.view())
    system.kill(first["a"], "SIGKILL")  # b is stopped by the supervisor: its exit is stale
    changes.until(
        lambda: all(c.restarts == 1 and c.state == "running" for c in handle.view().children)
    )
    # b's own exit notice comes from its thread, possibly after the restarts: only once the
    # supervisor has handled it (it says so) can the test know no late restart follows.
    stale = events.wait_for(
        lambda e: e.syscall == "SupervisorStaleExit" and e.pid == first["b"], timeout=20
    )
    assert stale.args["kind"] == "signal" and stale.args["path"] == "/stale"
    view = handle.view()  # answered after the stale exit: nothing restarted since
    assert [c.restarts for c in view.children] == [1, 1]
    assert view.restarts == 2
    assert all(c.pid not in first.values() for c in view.children)
    system.sync_events()
    assert [e.args["child"] for e in events.events if e.syscall == "SupervisorRestart"] == [
        "a",
        "b",
    ]
    handle.stop()


def test_stopping_a_supervisor_stops_its_subtree_without_restarts(system: System) -> None:
    brains = Brains()
    team = SupervisorSpec(
        "team", children=(child("w1", brains.worker("w1")), child("w2", brains.worker("w2")))
    )
    changes = Changes(system)
    handle = system.supervise(
        SupervisorSpec(
            "root",
            children=(ChildSpec("team", supervisor=team), child("solo", brains.worker("solo"))),
        )
    )
    changes.until(lambda: len(system.ps()) == 3)
    live = [p.pid for p in system.ps()]
    handle.stop()
    assert handle.status == "stopped"
    assert system.ps() == []
    for pid in live:
        assert system.info(pid).exit_reason.startswith("terminated by SIGTERM from supervisor")


def test_shutdown_timeout_escalates_to_sigkill(system: System) -> None:
    stuck = threading.Event()
    unblock = threading.Event()

    def deaf(request: LLMRequest) -> str:
        stuck.set()
        unblock.wait(10)
        return "late"

    handle = system.supervise(SupervisorSpec("deaf", children=(child("d", deaf, shutdown=0.2),)))
    assert stuck.wait(10)
    pid = handle.view().children[0].pid
    handle.stop()
    unblock.set()
    assert system.info(pid).exit_reason == "killed by SIGKILL from supervisor /deaf"  # type: ignore[arg-type]


class FakePlanner(pykka.ThreadingActor):
    def __init__(self, answer: MigrationAnswer) -> None:
        super().__init__()
        self.answer = answer
        self.offers: list[MigrationOffer] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, MigrationOffer):
            self.offers.append(message)
            return self.answer
        return list(self.offers)


def test_the_failed_task_is_offered_to_the_planner_before_giving_up(system: System) -> None:
    brains = Brains()
    brains.crash_budget["flaky"] = 100
    planner = FakePlanner.start(MigrationAnswer("no_candidate", "no similar agent"))
    system.set_migration_planner(planner)
    handle = system.supervise(
        SupervisorSpec(
            "mig",
            children=(child("flaky", brains.worker("flaky")),),
            max_restarts=1,
        )
    )
    assert handle.wait(timeout=20).status == handle.status == "escalated"
    (offer,) = planner.ask("offers", timeout=5)
    assert (offer.supervisor, offer.child, offer.intent) == ("/mig", "flaky", "flaky work")
    assert offer.exit_reason.startswith("llm error")
    assert handle.reason.endswith("migration no_candidate: no similar agent")
    planner.stop()


def test_a_migrated_child_stays_supervised_under_the_same_identity(system: System) -> None:
    brains = Brains()
    brains.crash_budget["flaky"] = 100
    brains.release.set()
    system.register_llm("steady", lambda r: "substitute finished: " + r.messages[0].content)
    from rnix_actors import AgentTemplate

    system.add_template(AgentTemplate("steady", devices=("/dev/fs",), driver="steady"))
    planner = FakePlanner.start(
        MigrationAnswer("migrated", "similar enough", "steady", "[migrated] flaky work")
    )
    system.set_migration_planner(planner)
    events = Collector()
    system.subscribe(events)
    handle = system.supervise(
        SupervisorSpec(
            "mig",
            children=(child("flaky", brains.worker("flaky"), Restart.TRANSIENT),),
            max_restarts=1,
        )
    )
    assert handle.wait(timeout=20).status == handle.status == "completed"
    system.sync_events()
    migrated = [e for e in events.events if e.syscall == "SupervisorMigration"]
    assert migrated[0].args["substitute"] == "steady"
    done = [p for p in system.ps(all=True) if p.template == "steady"]
    assert done[0].result == "substitute finished: [migrated] flaky work"
    planner.stop()


def test_backoff_delays_restarts(system: System) -> None:
    brains = Brains()
    brains.crash_budget["outage"] = 2
    brains.release.set()
    events = Collector()
    system.subscribe(events)
    handle = system.supervise(
        SupervisorSpec(
            "bo",
            children=(child("outage", brains.worker("outage"), Restart.TRANSIENT),),
            max_restarts=5,
            backoff=Backoff(min=0.05, max=1.0, jitter=0.0),
        )
    )
    assert handle.wait(timeout=20).status == handle.status == "completed"
    system.sync_events()
    delays = [e.args["delay_s"] for e in events.events if e.syscall == "SupervisorBackoff"]
    assert delays == [0.05, 0.1]


def test_simple_one_for_one_starts_dynamic_children(system: System) -> None:
    brains = Brains()
    brains.release.set()
    changes = Changes(system)
    handle = system.supervise(
        SupervisorSpec(
            "pool",
            Strategy.SIMPLE_ONE_FOR_ONE,
            (child("job", brains.worker("job"), Restart.TRANSIENT),),
        )
    )
    names = [handle.start_child(f"task {i}") for i in range(3)]
    assert names == ["job-1", "job-2", "job-3"]
    changes.until(lambda: all(c.status == "done" for c in handle.view().children))
    assert handle.status == "running"  # a pool outlives its children
    handle.stop()


def test_yaml_specs_load_and_bad_specs_start_nothing(project: Path, system: System) -> None:
    rnix = project / ".rnix"
    rnix.mkdir(exist_ok=True)
    (rnix / "supervisors.yaml").write_text(
        "supervisors:\n"
        "  - name: review\n"
        "    strategy: rest_for_one\n"
        "    backoff: {min: 0.1, max: 2}\n"
        "    children:\n"
        "      - {name: analyst, agent: code-analyst, intent: review, restart: transient}\n"
        "      - name: team\n"
        "        supervisor:\n"
        "          children: [{name: docs, agent: doc-writer, intent: document}]\n"
    )
    (spec,) = system.load_supervisors()
    assert spec.strategy is Strategy.REST_FOR_ONE and spec.backoff == Backoff(0.1, 2.0)
    assert spec.children[1].supervisor is not None
    (rnix / "supervisors.yaml").write_text(
        "supervisors:\n  - name: bad\n    strategy: best_effort\n"
        "    children: [{name: a, agent: code-analyst}]\n"
    )
    with pytest.raises(ConfigError, match=r"supervisors.yaml:3.*strategy"):
        system.load_supervisors()
    (rnix / "supervisors.yaml").write_text(
        "supervisors:\n  - name: bad\n    children:\n      - {name: a, agent: ghost}\n"
    )
    with pytest.raises(ConfigError, match=r"children\[0\].agent.*unknown agent 'ghost'"):
        system.load_supervisors()
    assert system.tree() == [] and system.ps(all=True) == []


def test_shipped_example_tree_runs_offline(system: System) -> None:
    from rnix_actors.paths import shipped_conf_dir

    specs = system.load_supervisors(shipped_conf_dir() / "supervisors.yaml")
    handles = [system.supervise(s) for s in specs]
    assert [h.wait(timeout=30).status for h in handles] == ["completed"] * len(handles)
    assert all(p.exit_code == 0 for p in system.ps(all=True))


def test_soak_200_children_with_random_crashes(project: Path) -> None:
    import random

    rng = random.Random(7)
    lock = threading.Lock()
    planned = {f"w{i}": rng.choice([0, 0, 1, 2, 5]) for i in range(200)}
    crashes: Counter[str] = Counter()

    def worker(tag: str) -> Any:
        def brain(request: LLMRequest) -> LLMResponse | str:
            with lock:
                if request.step == 1 and crashes[tag] < planned[tag]:
                    crashes[tag] += 1
                    raise RuntimeError("injected")
            return "ok" if request.step > 2 else respond(call("list_files"))

        return brain

    before = set(threading.enumerate())
    with System(project) as system:
        groups = []
        for g in range(10):
            kids = tuple(
                child(f"w{i}", worker(f"w{i}"), Restart.TRANSIENT)
                for i in range(g * 20, g * 20 + 20)
            )
            groups.append(
                ChildSpec(
                    f"g{g}",
                    supervisor=SupervisorSpec(f"g{g}", Strategy.ONE_FOR_ONE, kids, max_restarts=30),
                )
            )
        handle = system.supervise(SupervisorSpec("soak", children=tuple(groups), max_restarts=10))
        final = handle.wait(timeout=60)
        assert final.status == handle.status == "completed", handle.reason
        history = system.ps(all=True)
        assert all(p.state is ProcessState.DEAD for p in history)
        for name, crash_count in planned.items():
            runs = sorted((p for p in history if p.template == name), key=lambda p: p.pid)
            # No lost exit: every injected crash is in the history, each followed by a restart.
            assert sum("injected" in p.exit_reason for p in runs) == crashes[name] == crash_count
            assert runs[-1].exit_code == 0  # every child ended with a completed run
            # Never duplicated: one incarnation of a child identity at a time.
            for before_run, after_run in itertools.pairwise(runs):
                assert before_run.ended_at is not None
                assert before_run.ended_at <= after_run.created_at
        view = handle.view()
        assert view.status == "completed" and view.restarts <= 10
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    for thread in leftover:
        thread.join(2)
    assert [t.name for t in leftover if t.is_alive()] == []
