"""OTP's supervisor management API and auto_shutdown, on real actors and processes."""

from __future__ import annotations

import pytest
from helpers import Changes, call, respond
from support_supervision import Brains, all_running, child

from rnix_actors import (
    AutoShutdown,
    ChildSpec,
    ConfigError,
    LLMRequest,
    LLMResponse,
    ProcessState,
    Restart,
    RnixError,
    Strategy,
    SupervisorSpec,
    System,
)


def test_which_and_count_children(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    team = SupervisorSpec("team", children=(child("t", brains.worker("t")),))
    handle = system.supervise(
        SupervisorSpec(
            "m", children=(child("a", brains.worker("a")), ChildSpec("team", supervisor=team))
        )
    )
    changes.until(lambda: all_running(handle, system.table), what="up")
    kids = handle.which_children()
    assert [(c.name, c.kind, c.status) for c in kids] == [
        ("a", "agent", "running"),
        ("team", "supervisor", "running"),
    ]
    assert kids[0].pid is not None and system.info(kids[0].pid).state is ProcessState.RUNNING
    assert handle.count_children() == {"specs": 2, "active": 2, "supervisors": 1, "workers": 1}
    assert handle.supervisor("team").count_children()["workers"] == 1
    assert system.supervisor("/m/team").path == "/m/team"
    with pytest.raises(RnixError, match="no supervisor at /m/nope"):
        system.supervisor("m/nope")
    handle.stop()


def test_terminate_restart_delete_and_get_childspec(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    spec_b = child("b", brains.worker("b"), Restart.PERMANENT)
    handle = system.supervise(
        SupervisorSpec("m", children=(child("a", brains.worker("a")), spec_b))
    )
    changes.until(lambda: all_running(handle, system.table), what="up")
    old = handle.which_children()[1].pid
    assert handle.get_childspec("b") == spec_b
    with pytest.raises(RnixError, match="running; terminate_child it first"):
        handle.delete_child("b")
    assert handle.terminate_child("b") is True
    assert system.info(old).state is ProcessState.DEAD  # type: ignore[arg-type]
    b = handle.which_children()[1]
    assert b.status == "stopped" and b.restarts == 0  # a permanent child, yet not restarted
    assert handle.count_children()["active"] == 1
    assert handle.terminate_child("b") is False  # already terminated
    new = handle.restart_child("b")
    assert new is not None and new != old
    assert system.info(new).state is ProcessState.RUNNING
    with pytest.raises(RnixError, match="is running"):
        handle.restart_child("b")
    handle.terminate_child("b")
    handle.delete_child("b")
    assert [c.name for c in handle.which_children()] == ["a"]
    with pytest.raises(RnixError, match="has no child 'b'"):
        handle.get_childspec("b")
    handle.stop()


def test_start_child_with_a_spec_on_a_static_supervisor(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    handle = system.supervise(SupervisorSpec("m", children=(child("a", brains.worker("a")),)))
    extra = child("extra", brains.worker("extra"))
    assert handle.start_child(extra) == "extra"
    changes.until(lambda: all_running(handle, system.table), what="extra up")
    assert [c.name for c in handle.which_children()] == ["a", "extra"]
    with pytest.raises(RnixError, match="already has a child 'extra'"):
        handle.start_child(extra)
    with pytest.raises(ConfigError, match="unknown agent 'ghost'"):
        handle.start_child(ChildSpec("ghost", agent="ghost"))
    with pytest.raises(RnixError, match="takes an intent"):
        pool = system.supervise(
            SupervisorSpec("pool", Strategy.SIMPLE_ONE_FOR_ONE, (child("job", brains.worker("j")),))
        )
        assert pool.start_child("task") == "job-1"
        pool.start_child(extra)
    brains.everyone.set()
    assert handle.wait(30).status == "completed"


def significant_tree(brains: Brains, mode: AutoShutdown) -> SupervisorSpec:
    """Children a and b significant, c not, under ``auto_shutdown: mode``."""
    return SupervisorSpec(
        "auto",
        children=(
            child("a", brains.worker("a"), significant=True),
            child("b", brains.worker("b"), significant=True),
            child("c", brains.worker("c")),
        ),
        auto_shutdown=mode,
    )


def test_any_significant_child_ends_the_supervisor(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    handle = system.supervise(significant_tree(brains, AutoShutdown.ANY_SIGNIFICANT))
    changes.until(lambda: all_running(handle, system.table), what="up")
    pids = [c.pid for c in handle.which_children()]
    brains.done("a")
    final = handle.wait(30)
    assert final.status == "completed" and final.reason.startswith("auto_shutdown")
    assert [c.status for c in final.children] == ["done", "stopped", "stopped"]
    assert all(system.info(p).state is ProcessState.DEAD for p in pids)  # type: ignore[arg-type]


def test_all_significant_children_must_end(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    handle = system.supervise(significant_tree(brains, AutoShutdown.ALL_SIGNIFICANT))
    changes.until(lambda: all_running(handle, system.table), what="up")
    brains.done("a")
    changes.until(lambda: handle.which_children()[0].status == "done", what="a done")
    assert handle.status == "running"
    brains.done("b")
    final = handle.wait(30)
    assert final.reason.startswith("auto_shutdown: all significant")
    assert [c.status for c in final.children] == ["done", "done", "stopped"]


def test_auto_shutdown_never_refuses_significant_children(system: System) -> None:
    brains = Brains()
    with pytest.raises(ConfigError, match="auto_shutdown"):
        system.supervise(
            SupervisorSpec("auto", children=(child("a", brains.worker("a"), significant=True),))
        )
    with pytest.raises(ConfigError, match="permanent child cannot be significant"):
        system.supervise(
            SupervisorSpec(
                "auto",
                children=(child("a", brains.worker("a"), Restart.PERMANENT, significant=True),),
                auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
            )
        )
    assert system.ps(all=True) == []


def test_terminating_a_significant_child_does_not_shut_down(system: System) -> None:
    changes = Changes(system)
    brains = Brains()
    handle = system.supervise(
        SupervisorSpec(
            "auto",
            children=(
                child("a", brains.worker("a"), significant=True),
                child("b", brains.worker("b")),
            ),
            auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
        )
    )
    changes.until(lambda: all_running(handle, system.table), what="up")
    handle.terminate_child("a")  # OTP: only a significant child ending by itself counts
    assert handle.status == "running" and handle.count_children()["active"] == 1
    handle.stop()


def counting(until: int):  # type: ignore[no-untyped-def]
    def brain(request: LLMRequest) -> LLMResponse | str:
        return f"done at {request.step}" if request.step >= until else respond(call("list_files"))

    return brain


def test_python_workers_get_the_stated_limits_and_the_spec_can_set_them(system: System) -> None:
    changes = Changes(system)
    handle = system.supervise(
        SupervisorSpec(
            "lim",
            children=(
                child("long", counting(60)),  # a chat template's 50 steps would fail it
                child("narrow", counting(10_000), context_slots=8, restart=Restart.TEMPORARY),
                child("short", counting(10_000), max_steps=3, restart=Restart.TEMPORARY),
            ),
        )
    )
    narrow = handle.which_children()[1].pid
    assert narrow is not None
    info = system.table.wait_for(narrow, lambda p: p.state is ProcessState.SUSPENDED, 30)
    assert info is not None and info.exit_reason == "context_full"
    changes.until(lambda: handle.which_children()[0].status == "done", what="long done")
    changes.until(lambda: handle.which_children()[2].status == "done", what="short ended")
    kids = handle.which_children()
    # The supervisor hears the exit from the child's link, which can come before the kernel
    # has recorded the result: read it once the table has the process settled.
    assert system.wait(kids[0].pid, timeout=30).result == "done at 60"  # type: ignore[arg-type]
    assert kids[2].last_exit == "max steps exceeded"
    handle.stop()
