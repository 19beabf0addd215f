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

from rnix_actors import AgentTemplate, ProcessState, System

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
    made.add_node(**NODE)
    made.wait_for_nodes()
    ray.init(address=made.address, include_dashboard=False, log_to_driver=False)
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
    gate.write_text("go")
    assert all(rsystem.wait(p, timeout=60).exit_code == 0 for p in pids)
