"""``rnix supervise`` into a running daemon, ``rnix tree`` showing it, and ``rnix sup``
managing one supervisor by path (click's runner against a real socket in this process)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import Changes, agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, System
from rnix_actors.cli.main import cli
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.server import DaemonServer
from rnix_actors.ipc.service import Service

TREE = """\
supervisors:
  - name: crew
    strategy: one_for_one
    children:
      - {name: lead, agent: looper, intent: lead the work}
      - name: team
        supervisor:
          strategy: one_for_all
          children:
            - {name: w1, agent: looper, intent: help, shutdown: 2}
            - {name: w2, agent: looper, intent: help}
"""


def invoke(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--project-dir", str(project), *args])


@pytest.fixture
def served(system: System, project: Path) -> Iterator[tuple[System, threading.Event]]:
    release = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if release.is_set():
            return "done"
        release.wait(0.05)
        return respond(call("list_files"))

    agent(system, "looper", brain, max_steps=100_000)
    (project / ".rnix").mkdir(exist_ok=True)
    (project / ".rnix" / "supervisors.yaml").write_text(TREE)
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, socket=path)):
        yield system, release
        release.set()


def test_supervise_starts_trees_in_the_daemon_and_tree_shows_them(
    served: tuple[System, threading.Event], project: Path
) -> None:
    system, release = served
    changes = Changes(system)
    result = invoke(project, "supervise")
    assert result.exit_code == 0, result.output
    assert "started in the daemon: /crew" in result.stdout
    handle = system.supervisor("/crew")
    assert handle.status == "running"
    changes.until(lambda: len(handle.supervisor("team").which_children()) == 2, what="team")
    tree = json.loads(invoke(project, "tree", "--json").stdout)
    assert [s["path"] for s in tree["supervisors"]] == ["/crew"]
    text = invoke(project, "tree").stdout
    assert "/crew  one_for_one  running" in text and "team  supervisor one_for_all" in text
    again = invoke(project, "supervise")
    assert again.exit_code == 1 and "already running in the daemon: /crew" in again.output
    release.set()
    assert handle.wait(30).status == "completed"


def test_sup_runs_the_management_calls_by_path(
    served: tuple[System, threading.Event], project: Path
) -> None:
    system, _release = served
    changes = Changes(system)
    assert invoke(project, "supervise").exit_code == 0
    team = system.supervisor("/crew/team")
    changes.until(
        lambda: all(c.status == "running" and c.pid for c in team.which_children()), what="up"
    )
    count = json.loads(invoke(project, "sup", "/crew/team", "count", "--json").stdout)
    assert count["counts"] == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}
    spec = json.loads(invoke(project, "sup", "crew/team", "spec", "w1", "--json").stdout)
    assert spec["spec"]["shutdown"] == 2.0 and spec["spec"]["agent"] == "looper"
    crew = json.loads(invoke(project, "sup", "/crew", "spec", "team", "--json").stdout)
    assert crew["spec"]["shutdown"] == "infinity" and crew["spec"]["kind"] == "supervisor"
    out = invoke(project, "sup", "/crew/team", "terminate", "w2")
    assert out.exit_code == 0 and "terminated w2 (was running)" in out.stdout
    children = json.loads(invoke(project, "sup", "/crew/team", "children", "--json").stdout)
    assert [c["status"] for c in children["children"]] == ["running", "stopped"]
    restarted = invoke(project, "sup", "/crew/team", "restart", "w2")
    assert restarted.exit_code == 0 and "restarted w2 as PID" in restarted.stdout
    bad = invoke(project, "sup", "/crew/team", "delete", "w2")
    assert bad.exit_code == 1 and "terminate_child it first" in bad.output
    missing = invoke(project, "sup", "/crew/nope")
    assert missing.exit_code == 1 and "no supervisor at /crew/nope" in missing.output
    usage = invoke(project, "sup", "/crew/team", "terminate")
    assert usage.exit_code == 1 and "needs a CHILD name" in usage.output
    stopped = invoke(project, "sup", "/crew/team", "stop")
    assert stopped.exit_code == 0 and "/crew/team" in stopped.stdout
    assert team.status == "stopped"
    view = invoke(project, "sup", "/crew")
    assert view.exit_code == 0 and "team  supervisor" in view.stdout and "stopped" in view.stdout
    system.supervisor("/crew").stop()


def test_supervise_without_a_daemon_runs_the_trees_here(project: Path) -> None:
    (project / ".rnix").mkdir(exist_ok=True)
    (project / ".rnix" / "supervisors.yaml").write_text(
        "supervisors:\n  - name: solo\n    children:\n"
        "      - {name: w, agent: doc-writer, intent: document}\n"
    )
    result = invoke(project, "supervise", "--json")
    assert result.exit_code == 0, result.output
    (tree,) = json.loads(result.stdout)["supervisors"]
    assert tree["path"] == "/solo" and tree["status"] == "completed"


def test_the_shell_has_sup_and_draws_trees(system: System) -> None:
    changes = Changes(system)
    from rnix_actors import ChildSpec, SupervisorSpec
    from rnix_actors.cli.shell.commands import Shell
    from rnix_actors.ipc.local import LocalApi

    release = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if release.is_set():
            return "done"
        release.wait(0.05)
        return respond(call("list_files"))

    handle = system.supervise(
        SupervisorSpec("sh", children=(ChildSpec("w", agent=brain, intent="work"),))
    )
    changes.until(lambda: handle.which_children()[0].state == "running", what="up")
    lines: list[str] = []
    api = LocalApi(Service(system))
    try:
        shell = Shell(api, lines.append)
        assert shell.execute("sup /sh count")
        assert lines[-1] == "specs 1  active 1  supervisors 0  workers 1"
        assert shell.execute("tree")
        assert any(line.startswith("/sh  one_for_one  running") for line in lines)
        assert shell.execute("sup /sh terminate w")
        assert lines[-1] == "terminated w (was running); its spec stays"
        assert not shell.execute("sup /sh terminate")  # usage: the child is missing
        assert "usage: sup PATH" in "\n".join(lines)
        assert not shell.execute("sup /nope")
        assert "no supervisor at /nope" in lines[-1]
    finally:
        release.set()
        api.close()
        handle.stop()
