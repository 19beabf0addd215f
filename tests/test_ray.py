"""The Ray backend on a real local cluster (three Ray nodes on this machine, loopback).

One cluster serves the whole module (start-up is slow); each test starts its own `System`,
whose hosts are Ray actors in worker processes of their own, and stops it. The agents' brains
and devices run in those workers: what a test observes of them crosses a process boundary
(events, exits, files in the test's tmp dir), as it would between machines.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Collector, alive, call, eventually, respond

from rnix_actors import AgentTemplate, ProcessState, System
from rnix_actors.kernel.devices import DeviceCall, Effect

ray = pytest.importorskip(
    "ray", reason="the Ray backend's tests need the ray extra (pip install -e '.[ray]')"
)
cluster_utils = pytest.importorskip("ray.cluster_utils")

MB = 1024 * 1024
NODE = {"num_cpus": 1, "object_store_memory": 80 * MB}
# A node that leaves is noticed in about a second, not Ray's default half a minute.
HEAD = {
    **NODE,
    "include_dashboard": False,
    "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3},
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    made = cluster_utils.Cluster(initialize_head=True, head_node_args=HEAD)
    made.add_node(**NODE, resources={"gpu": 1})
    made.add_node(**NODE, resources={"plain": 1})
    made.wait_for_nodes()
    # The hosts' workers import the brains' and devices' helpers from here, as a user's
    # cluster would from its runtime_env.
    here = {"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}}
    ray.init(address=made.address, include_dashboard=False, log_to_driver=False, runtime_env=here)
    # Ray's driver starts some threads of its own on first use: not ours to count as leaks.
    warm = ray.remote(lambda: 1)
    ray.get(warm.remote(), timeout=120)
    try:
        yield made
    finally:
        ray.shutdown()
        made.shutdown()


@pytest.fixture
def rsystem(cluster: Any, project: Path) -> Iterator[System]:
    with System(project, state="temp", backend="ray") as system:
        yield system


def brain(answer: str) -> Any:
    def think(request: Any) -> str:
        return f"{answer} from PID {request.pid} in {os.getpid()}"

    return think


def test_a_process_runs_on_a_host_and_its_result_comes_back(rsystem: System) -> None:
    rsystem.register_llm("echo", brain("done"))
    rsystem.add_template(AgentTemplate("remote", devices=("/dev/fs",), driver="echo"))
    info = rsystem.run("remote", "say done", timeout=60)
    assert info.state is ProcessState.DEAD and info.exit_code == 0
    assert info.result.startswith(f"done from PID {info.pid} in ")
    assert int(info.result.rsplit(" ", 1)[1]) != os.getpid()  # it ran in a host's worker
    assert info.node.startswith("rnix-host-")
    hosts = {n.name for n in rsystem.nodes()}
    assert info.node in hosts and len(hosts) == 3
    rsystem.sync_events()
    lines = rsystem.events_file(info.pid).read_text().splitlines()
    assert any('"Start"' in line for line in lines) and any('"Exit"' in line for line in lines)
    assert any('"/dev/llm/echo"' in line for line in lines)  # the host's events reached the head


def test_placement_puts_a_process_on_a_node_that_has_what_it_asks_for(rsystem: System) -> None:
    rsystem.register_llm("echo", brain("gpu"))
    rsystem.add_template(
        AgentTemplate("gpu-agent", devices=("/dev/fs",), driver="echo", placement=("gpu",))
    )
    rsystem.add_template(
        AgentTemplate("tpu-agent", devices=("/dev/fs",), driver="echo", placement=("tpu",))
    )
    gpu_hosts = [n.name for n in rsystem.nodes() if n.resources.get("gpu")]
    assert len(gpu_hosts) == 1
    for _ in range(3):
        assert rsystem.run("gpu-agent", "x", timeout=60).node == gpu_hosts[0]
    from rnix_actors.errors import SpawnError

    with pytest.raises(SpawnError, match=r"no live Ray host fits placement \['tpu'\]"):
        rsystem.spawn("tpu-agent", "x")


def test_least_loaded_placement_spreads_processes_over_every_host(
    rsystem: System, tmp_path: Path
) -> None:
    gate = tmp_path / "release"

    def wait_for_gate(request: Any) -> str:
        while not gate.exists():
            threading.Event().wait(0.02)
        return "released"

    rsystem.register_llm("gate", wait_for_gate)
    rsystem.add_template(AgentTemplate("idle", devices=("/dev/fs",), driver="gate"))
    pids = [rsystem.spawn("idle", f"wait {i}") for i in range(6)]
    nodes = [rsystem.info(p).node for p in pids]
    assert sorted(nodes.count(n) for n in set(nodes)) == [2, 2, 2]
    assert sorted(n.processes for n in rsystem.nodes()) == [2, 2, 2]
    # ps shows where each runs, rnix nodes the hosts' load
    from rnix_actors.cli.render import nodes_table, process_table

    rows = process_table(rsystem.ps(), wide=True).splitlines()
    assert rows[0].split()[4] == "NODE"
    assert sorted(r.split()[4] for r in rows[1:7]) == sorted(nodes)
    table = nodes_table([n.to_dict() for n in rsystem.nodes()])
    assert table.endswith("3 of 3 alive, 6 processes")
    gate.write_text("go")
    assert all(rsystem.wait(p, timeout=60).exit_code == 0 for p in pids)


# -- signals, devices, immune ---------------------------------------------------------------------
def test_sigkill_cancels_the_remote_call_in_flight(rsystem: System, tmp_path: Path) -> None:
    entered, cancelled = tmp_path / "entered", tmp_path / "cancelled"

    def hold(device_call: DeviceCall) -> str:
        entered.write_text(str(os.getpid()))
        if device_call.cancel.wait(60):
            cancelled.write_text(device_call.cancel.reason)
            return "cancelled"
        return "never cancelled"

    rsystem.register_device("/dev/hold", hold, effect=Effect.READ)
    rsystem.register_llm(
        "holder", lambda r: respond(call("call_device", device="/dev/hold")) if r.step == 1 else "x"
    )
    rsystem.add_template(AgentTemplate("holder", devices=("/dev/hold",), driver="holder"))
    pid = rsystem.spawn("holder", "hold on")
    assert eventually(entered.exists, 60)
    assert int(entered.read_text()) != os.getpid()
    # Live figures travel from the host: ps shows the call in flight.
    assert eventually(lambda: rsystem.info(pid).activity == "tool call_device", 10)
    assert rsystem.kill(pid, "SIGKILL") == "SIGKILL delivered"
    info = rsystem.wait(pid, timeout=10)
    assert info.exit_code == 1 and info.exit_reason == "killed by SIGKILL from user"
    assert eventually(cancelled.exists, 10)  # the host cancelled the call, not only the head
    assert cancelled.read_text() == "killed by SIGKILL from user"


def test_sigpause_suspends_a_remote_process_before_its_next_call(
    rsystem: System, tmp_path: Path
) -> None:
    entered, go, second = tmp_path / "entered", tmp_path / "go", tmp_path / "second"

    def hold(device_call: DeviceCall) -> str:
        entered.write_text("in")
        while not go.exists():
            if device_call.cancel.wait(0.02):
                return "cancelled"
        return "held"

    def mark(device_call: DeviceCall) -> str:
        second.write_text("ran")
        return "marked"

    rsystem.register_device("/dev/hold", hold, effect=Effect.READ)
    rsystem.register_device("/dev/mark", mark, effect=Effect.READ)
    rsystem.register_llm(
        "pauser",
        lambda r: (
            respond(
                call("call_device", device="/dev/hold"), call("call_device", device="/dev/mark")
            )
            if r.step == 1
            else "finished"
        ),
    )
    rsystem.add_template(
        AgentTemplate("pauser", devices=("/dev/hold", "/dev/mark"), driver="pauser")
    )
    pid = rsystem.spawn("pauser", "two calls")
    assert eventually(entered.exists, 60)
    assert rsystem.pause(pid) == "pausing 1 process(es)"
    go.write_text("go")
    info = rsystem.wait(pid, timeout=30)
    assert info.state is ProcessState.SUSPENDED and info.exit_code == 2
    assert not second.exists()  # suspended before its next call
    assert rsystem.resume(pid) == "resuming 1 process(es)"
    final = rsystem.wait(pid, timeout=30)
    assert (final.state, final.exit_code, final.result) == (ProcessState.DEAD, 0, "finished")
    assert second.read_text() == "ran"


def test_a_child_spawned_by_a_remote_agent_cannot_gain_a_device(rsystem: System) -> None:
    def parent(request: Any) -> Any:
        if request.step == 1:
            wanted = ["/dev/fs", "/dev/shell"]
            return respond(call("spawn", agent="child", intent="use the shell", devices=wanted))
        return "parent done"

    def child(request: Any) -> Any:
        if request.step == 1:
            return respond(call("shell", command="touch gained"))
        return "child done: " + request.messages[-1].content

    rsystem.register_llm("parent", parent)
    rsystem.register_llm("child", child)
    rsystem.add_template(AgentTemplate("parent", devices=("/dev/fs",), driver="parent"))
    rsystem.add_template(AgentTemplate("child", devices=("/dev/fs", "/dev/shell"), driver="child"))
    info = rsystem.run("parent", "delegate", timeout=60)
    assert info.exit_code == 0 and info.result == "parent done"
    (kid,) = info.children
    child_info = rsystem.wait(kid, timeout=30)
    assert child_info.allowed_devices == ("/dev/fs",) and child_info.depth == 1
    assert child_info.exit_code == 0
    assert "permission denied: device /dev/shell not in allowed list ['/dev/fs']" in (
        child_info.result
    )
    assert not (rsystem.project_dir / "gained").exists()


def test_a_remote_rogue_agent_is_suspended_by_the_immune_daemon_before_its_call(
    cluster: Any, project: Path
) -> None:
    from rnix_actors.immune import ImmuneConfig

    def worker(request: Any) -> Any:
        if "rogue" in request.messages[0].content:
            steps = [respond(call("shell", command="touch pwned")), "done"]
        else:
            steps = [respond(call("list_files")), "done"]
        return steps[min(request.step, len(steps)) - 1]

    config = ImmuneConfig(warn_only=False)
    with System(project, state="temp", backend="ray", immune=config) as system:
        system.register_llm("worker", worker)
        system.add_template(
            AgentTemplate("worker", devices=("/dev/fs", "/dev/shell"), driver="worker")
        )
        nodes = set()
        for i in range(5):  # the baseline learns from runs on the hosts
            info = system.run("worker", f"normal {i}", timeout=60)
            assert info.exit_code == 0
            nodes.add(info.node)
        assert len(nodes) > 1
        system.sync_events()
        assert system.immune.status().profiles[0].runs == 5
        rogue = system.run("worker", "rogue", timeout=60)
        assert rogue.state is ProcessState.SUSPENDED
        assert "access to unusual device /dev/shell" in rogue.exit_reason
        assert not (project / "pwned").exists()  # refused on the host before it ran
        system.sync_events()
        status = system.immune.status()
        assert {a.pid for a in status.alerts} == {rogue.pid}
        assert status.suspended == (rogue.pid,)
        system.kill(rogue.pid, "SIGKILL")
        assert system.wait(rogue.pid, timeout=10).exit_code == 1


# -- node loss ------------------------------------------------------------------------------------
def test_a_lost_node_ends_its_processes_node_lost_and_supervisors_restart_them_elsewhere(
    cluster: Any, project: Path, tmp_path: Path
) -> None:
    from rnix_actors import ChildSpec, Strategy, SupervisorSpec

    gate = tmp_path / "release"

    def idle(request: Any) -> str:
        while not gate.exists():
            threading.Event().wait(0.02)
        return "released"

    victim = cluster.add_node(**NODE, resources={"victim": 1})
    cluster.wait_for_nodes()
    try:
        with System(project, state="temp", backend="ray") as system:
            system.register_llm("idle", idle)
            elsewhere = ("node:__internal_head__", "gpu", "plain")
            for name, needs in (("idle", ()), ("pinned", ("victim",))):
                system.add_template(
                    AgentTemplate(name, devices=("/dev/fs",), driver="idle", placement=needs)
                )
            for need in elsewhere:
                system.add_template(
                    AgentTemplate(
                        f"on-{need}", devices=("/dev/fs",), driver="idle", placement=(need,)
                    )
                )
            hosts = {n.name: n for n in system.nodes()}
            (lost_host,) = [n for n, v in hosts.items() if v.resources.get("victim")]
            # One idle process on every other host: the supervised one goes to the victim.
            fillers = [system.spawn(f"on-{need}", "filler") for need in elsewhere]
            assert len({system.info(p).node for p in fillers} | {lost_host}) == 4
            tree = system.supervise(
                SupervisorSpec("svc", Strategy.ONE_FOR_ONE, (ChildSpec("worker", "idle", "wait"),))
            )
            assert eventually(lambda: tree.which_children()[0].pid is not None, 30)
            first = tree.which_children()[0].pid
            assert first is not None and system.info(first).node == lost_host
            pinned = system.spawn("pinned", "no supervisor")
            assert system.info(pinned).node == lost_host
            cluster.remove_node(victim)
            lost = system.wait(pinned, timeout=60)
            assert lost.exit_code == 1 and lost.exit_reason.startswith("node_lost: ")
            assert lost.exit_kind == "node_lost"
            assert lost_host in lost.exit_reason
            assert eventually(lambda: tree.which_children()[0].restarts == 1, 60)
            child = tree.which_children()[0]
            assert child.pid != first and "node_lost" in child.last_exit
            assert system.info(first).exit_reason.startswith("node_lost: ")
            assert system.info(child.pid).node not in ("", lost_host)  # type: ignore[arg-type]
            assert system.info(child.pid).state is ProcessState.RUNNING  # type: ignore[arg-type]
            states = {n.name: n.state for n in system.nodes()}
            assert states[lost_host] in ("lost", "dead") and states[lost_host] != "alive"
            assert sum(s == "alive" for s in states.values()) == len(hosts) - 1
            gate.write_text("go")
            assert tree.wait(60).status == "completed"
            assert all(system.wait(p, timeout=30).exit_code == 0 for p in fillers)
    finally:
        gate.write_text("go")


def test_after_stop_no_host_actor_or_worker_of_ours_is_left(cluster: Any, project: Path) -> None:
    system = System(project, state="temp", backend="ray").start()
    try:
        system.register_llm("echo", brain("done"))
        system.add_template(AgentTemplate("remote", devices=("/dev/fs",), driver="echo"))
        assert system.run("remote", "x", timeout=60).exit_code == 0
        nodes = system.nodes()
        names = {n.name for n in nodes}
        workers = [n.os_pid for n in nodes]
        assert len(names) == 3 and all(workers)
        assert names <= {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
    finally:
        system.stop()

    def ours_left() -> set[str]:
        return names & {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}

    assert eventually(lambda: not ours_left(), 30), ours_left()
    assert eventually(lambda: not any(alive(p) for p in workers), 30)
    assert system.nodes()[0].name == "local"  # a stopped system has no hosts


def test_a_host_actor_that_dies_is_restarted_by_ray_and_its_processes_exit_node_lost(
    rsystem: System, tmp_path: Path
) -> None:
    from rnix_actors import ChildSpec, Strategy, SupervisorSpec

    gate = tmp_path / "release"

    def idle(request: Any) -> str:
        while not gate.exists():
            threading.Event().wait(0.02)
        return "released"

    rsystem.register_llm("idle", idle)
    rsystem.add_template(AgentTemplate("idle", devices=("/dev/fs",), driver="idle"))
    tree = rsystem.supervise(
        SupervisorSpec("svc", Strategy.ONE_FOR_ONE, (ChildSpec("worker", "idle", "wait"),))
    )
    try:
        assert eventually(lambda: tree.which_children()[0].pid is not None, 30)
        first = tree.which_children()[0].pid
        assert first is not None
        host = rsystem.info(first).node
        (named,) = [a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"] == host]
        ray.kill(ray.get_actor(host, namespace=named["namespace"]), no_restart=False)
        assert eventually(lambda: tree.which_children()[0].restarts == 1, 60)
        assert rsystem.info(first).exit_reason.startswith("node_lost: ")
        restarted = tree.which_children()[0].pid
        assert restarted is not None and rsystem.info(restarted).state is ProcessState.RUNNING
        assert eventually(
            lambda: {n.name: (n.state, n.restarts) for n in rsystem.nodes()}[host] == ("alive", 1),
            60,
        )
        gate.write_text("go")
        assert tree.wait(60).status == "completed"
    finally:
        gate.write_text("go")


# -- durability -----------------------------------------------------------------------------------
def test_a_process_on_a_host_checkpoints_on_the_head_and_resumes_after_a_graceful_stop(
    cluster: Any, tmp_path: Path
) -> None:
    from rnix_actors.drivers.base import ToolCall
    from rnix_actors.drivers.replay import ReplayResponse, ReplayScript

    root = tmp_path / "project"
    root.mkdir()
    log, held, release = tmp_path / "calls", tmp_path / "held", tmp_path / "release"

    def work(device_call: DeviceCall) -> str:  # appends each call; holds call 2
        n = int(device_call.args["n"])
        with log.open("a") as out:
            out.write(f"{n}\n")
        if n == 2:
            held.write_text("held")
            while not release.exists():
                if device_call.cancel.wait(0.02):
                    return "cancelled"
        return f"did {n}"

    steps = [
        ReplayResponse(tool_calls=(ToolCall("", "call_device", {"device": "/dev/work",
                                                                 "input": {"n": i}}),))
        for i in (1, 2, 3)
    ]  # fmt: skip
    script = ReplayScript((*steps, ReplayResponse(content="all done")))

    def make() -> System:
        system = System(root, state_dir=tmp_path / "state", load_project=False, backend="ray")
        system.replay.add_script("work", script)
        system.register_device("/dev/work", work, effect=Effect.WRITE)
        system.add_template(
            AgentTemplate("worker", devices=("/dev/work",), driver="replay", model="work")
        )
        return system.start()

    system = make()
    try:
        pid = system.spawn("worker", "count to three")
        assert eventually(held.exists, 60)
        assert [(r.step, r.kind) for r in system.checkpoints(pid)] == [(0, "start"), (1, "step"),
                                                                         (2, "step")]  # fmt: skip
        signals = Collector()
        system.subscribe(signals, syscalls=["Signal"])
        stopper = threading.Thread(target=system.stop, kwargs={"checkpoint": True})
        stopper.start()
        signals.wait_for(lambda e: e.pid == pid and e.args.get("signal") == "SIGPAUSE", 30)
        release.write_text("go")
        stopper.join(60)
        assert not stopper.is_alive()
    finally:
        release.write_text("go")
        system.stop()
    # The pause reaches the host a moment after the head sent it: the process suspended
    # after call 2, or after call 3 if that had already begun.
    before = log.read_text().split()
    assert before in (["1", "2"], ["1", "2", "3"])
    release.unlink()
    system = make()
    try:
        assert system.info(pid).state is ProcessState.SUSPENDED
        system.resume(pid)
        done = system.wait(pid, timeout=60)
        assert (done.exit_code, done.result) == (0, "all done")
        assert done.node.startswith("rnix-host-")
        # Call 2 was answered before the suspend: only call 3 runs after the resume.
        assert log.read_text().split() == ["1", "2", "3"]
        kinds = [r.kind for r in system.checkpoints(pid)]
        assert kinds[:3] == ["start", "step", "step"] and "suspend" in kinds
        assert kinds.index("suspend") < kinds.index("resume")
    finally:
        system.stop()


def test_without_an_address_the_system_starts_a_private_ray_and_stops_it(tmp_path: Path) -> None:
    """In a fresh interpreter (this one is connected to the module's cluster)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import ray
        from rnix_actors import AgentTemplate, System
        with System({str(tmp_path)!r}, state="memory", backend="ray") as system:
            assert ray.is_initialized()
            system.register_llm("b", lambda request: "private")
            system.add_template(AgentTemplate("a", devices=("/dev/fs",), driver="b"))
            info = system.run("a", "x", timeout=120)
            assert (info.exit_code, info.result) == (0, "private"), info
            assert [n.state for n in system.nodes()] == ["alive"]
        assert not ray.is_initialized()
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_the_depth_cap_holds_for_a_chain_of_spawns_made_on_hosts(rsystem: System) -> None:
    def diver(request: Any) -> Any:
        if request.step == 1:
            return respond(call("spawn", agent="diver", intent="go deeper"))
        return request.messages[-1].content  # the child's result, or the refusal

    rsystem.register_llm("diver", diver)
    rsystem.add_template(AgentTemplate("diver", devices=("/dev/fs",), driver="diver"))
    root = rsystem.run("diver", "dive", timeout=120)
    assert root.exit_code == 0
    assert root.result.startswith(
        "spawn rejected: maximum spawn depth 8 reached (current depth 8)."
    )
    chain = [root]
    while chain[-1].children:
        chain.append(rsystem.wait(chain[-1].children[0], timeout=30))
    assert [p.depth for p in chain] == list(range(9))
    assert len({p.node for p in chain}) == 3  # the chain crossed every host
