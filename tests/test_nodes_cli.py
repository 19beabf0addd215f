"""``rnix nodes`` and the node column of ps, top and inspect (the local backend; the Ray
backend's rows are checked on a real cluster in tests/test_ray.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rnix_actors import ProcessState, System
from rnix_actors.cli.main import cli
from rnix_actors.cli.render import inspect_text, nodes_table, process_table
from rnix_actors.cli.top_model import TopRow
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.server import DaemonServer
from rnix_actors.ipc.service import Service
from rnix_actors.kernel.process import ProcessInfo

CREATED = 1_800_000_000.0  # a fixed clock: the cells read it only for the elapsed time


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args])


@pytest.fixture
def served(system: System) -> Iterator[System]:
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, socket=path)):
        yield system


def info(pid: int, node: str = "") -> ProcessInfo:
    return ProcessInfo(
        pid=pid, uuid=f"u{pid}", ppid=0, template="worker", intent="x",
        state=ProcessState.RUNNING, depth=0, allowed_devices=("/dev/fs",),
        created_at=CREATED, node=node,
    )  # fmt: skip


def test_rnix_nodes_lists_the_local_machine_with_its_load(served: System, project: Path) -> None:
    result = invoke(project, "nodes")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "backend: local"
    assert lines[1].split()[:3] == ["HOST", "STATE", "PROCS"]
    assert lines[2].split()[:3] == ["local", "alive", "0"]
    assert lines[-1] == "1 of 1 alive, 0 processes"
    data = json.loads(invoke(project, "nodes", "--json").stdout)
    assert data["backend"] == "local" and data["nodes"][0]["name"] == "local"


def test_rnix_nodes_without_a_daemon_says_what_it_needs(project: Path) -> None:
    result = invoke(project, "nodes")
    assert result.exit_code == 1 and "rnix nodes lists a running system's hosts" in result.output


def test_ps_shows_a_node_column_only_when_processes_run_on_hosts() -> None:
    local = process_table([info(1)], wide=True)
    assert "NODE" not in local.splitlines()[0]
    remote = process_table([info(1, "rnix-host-ab-12345678"), info(2)], wide=True)
    header, first, second = remote.splitlines()[:3]
    assert header.split()[:5] == ["PID", "PPID", "STATE", "AGENT", "NODE"]
    assert first.split()[4] == "rnix-host-ab-12345678" and second.split()[4] == "-"


def test_top_and_inspect_show_the_node() -> None:
    row = TopRow(info(1, "rnix-host-ab-12345678"), 0, 1, 0, 0.0, "")
    assert row.cells(CREATED)[2] == "worker @12345678"
    assert TopRow(info(1), 0, 1, 0, 0.0, "").cells(CREATED)[2] == "worker"
    remote = inspect_text({"process": info(3, "rnix-host-ab-12345678").to_dict()})
    assert ["node:", "rnix-host-ab-12345678"] in [line.split() for line in remote.splitlines()]
    local = inspect_text({"process": info(3).to_dict()})
    assert not any(line.split()[:1] == ["node:"] for line in local.splitlines())


def test_nodes_table_counts_hosts_that_are_alive() -> None:
    nodes = [
        {"name": "h1", "state": "alive", "processes": 3, "resources": {"CPU": 1.0, "gpu": 1.0}},
        {"name": "h2", "state": "lost", "processes": 0, "resources": {"node:x": 1.0}},
    ]
    text = nodes_table(nodes)
    assert text.endswith("1 of 2 alive, 3 processes")
    assert "CPU 1, gpu 1" in text and "node:x" not in text
