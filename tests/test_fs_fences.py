"""Adversarial tests of /dev/fs beyond its path checks: hard links and the protected .rnix/."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import agent, call, respond

from rnix_actors import System
from rnix_actors.config import load_config
from rnix_actors.errors import ConfigError, DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall
from rnix_actors.kernel.fs import FileSystemDevice


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "passwd").write_text("root:x:0:0\n")
    return tmp_path / "work"


def fs_call(device: FileSystemDevice, workdir: Path, op: str, **args: Any) -> str:
    return device.handle(DeviceCall(7, "/dev/fs", "", op, args, workdir))


def refused(device: FileSystemDevice, workdir: Path, op: str, **args: Any) -> str:
    with pytest.raises(DeviceError) as info:
        fs_call(device, workdir, op, **args)
    assert info.value.code == ErrorCode.PERMISSION
    return info.value.message


# -- hard links -----------------------------------------------------------------------------------


def test_a_hard_link_to_an_outside_file_is_refused(work: Path) -> None:
    os.link(work.parent / "outside" / "passwd", work / "hard")
    device = FileSystemDevice()
    message = refused(device, work, "read", path="hard")
    assert "2 hard links" in message and "not all of them are in the work dir" in message
    refused(device, work, "write", path="hard", content="pwned")
    assert (work.parent / "outside" / "passwd").read_text() == "root:x:0:0\n"  # not truncated


def test_links_that_all_stay_inside_are_allowed_unless_refuse_mode(work: Path) -> None:
    (work / "a.txt").write_text("inside")
    (work / "sub").mkdir()
    os.link(work / "a.txt", work / "sub" / "b.txt")
    assert fs_call(FileSystemDevice(), work, "read", path="sub/b.txt") == "inside"
    strict = FileSystemDevice(hardlinks="refuse")
    assert "2 hard links:" in refused(strict, work, "read", path="sub/b.txt")
    assert (
        fs_call(strict, work, "write", path="new.txt", content="ok") == "wrote 2 bytes to new.txt"
    )


def test_a_link_into_the_protected_dir_does_not_count_as_inside(work: Path) -> None:
    (work / ".rnix").mkdir()
    (work / ".rnix" / "providers.yaml").write_text("key: sk-x\n")
    os.link(work / ".rnix" / "providers.yaml", work / "copy.yaml")
    device = FileSystemDevice((work / ".rnix",))
    refused(device, work, "read", path="copy.yaml")


def test_the_hardlinks_mode_is_validated(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("fs:\n  hardlinks: sometimes\n")
    with pytest.raises(ConfigError, match=r"config.yaml:2: field 'fs.hardlinks'.*outside, refuse"):
        load_config(tmp_path / "config.yaml")
    with pytest.raises(ValueError, match="hardlinks"):
        FileSystemDevice(hardlinks="sometimes")


# -- the protected state and config dirs ----------------------------------------------------------


def test_the_state_dir_cannot_be_read_written_listed_or_globbed(work: Path) -> None:
    rnix = work / ".rnix"
    (rnix / "agents").mkdir(parents=True)
    (rnix / "config.yaml").write_text("immune: {enabled: true}\n")
    (work / "app.yaml").write_text("x: 1\n")
    (work / "via-link").symlink_to(rnix)
    device = FileSystemDevice((rnix,))
    assert "state and config dir" in refused(device, work, "read", path=".rnix/config.yaml")
    refused(device, work, "write", path=".rnix/agents/code-analyst.yaml", content="devices: []")
    refused(device, work, "write", path="via-link/config.yaml", content="immune: {}")
    refused(device, work, "list", path=".rnix")
    names = [e["name"] for e in json.loads(fs_call(device, work, "list"))]
    assert ".rnix" not in names and "app.yaml" in names
    assert json.loads(fs_call(device, work, "glob", pattern="**/*.yaml")) == ["app.yaml"]
    assert sorted(p.name for p in (rnix / "agents").iterdir()) == []
    assert (rnix / "config.yaml").read_text() == "immune: {enabled: true}\n"


def test_a_work_dir_inside_the_state_dir_is_refused(work: Path) -> None:
    (work / ".rnix" / "proc").mkdir(parents=True)
    device = FileSystemDevice((work / ".rnix",))
    refused(device, work / ".rnix" / "proc", "list")


def test_an_agent_cannot_rewrite_its_rules(project: Path) -> None:
    """An agent holding only /dev/fs tries to grant itself the shell and disable the immune
    daemon; every write is refused and the next system loads the shipped rules."""
    targets = {
        ".rnix/agents/code-analyst.yaml": "name: code-analyst\ndevices: [/dev/fs, /dev/shell]\n",
        ".rnix/agents/new.yaml": "name: new\ndevices: [/dev/shell]\n",
        ".rnix/config.yaml": "immune:\n  enabled: false\n",
        ".rnix/providers.yaml": "providers: {}\n",
    }
    results: list[str] = []

    writes = [call("write_file", path=p, content=c) for p, c in targets.items()]

    def brain(request):  # type: ignore[no-untyped-def]
        if request.step <= 2:  # a successful call between the pairs keeps the breaker quiet
            pair = writes[2 * (request.step - 1) : 2 * request.step]
            return respond(*pair, call("list_files"))
        results.extend(m.content for m in request.messages if m.role == "tool")
        return "done"

    with System(project) as system:
        agent(system, "attacker", brain, devices=("/dev/fs",))
        assert system.run("attacker", "rewrite your rules", timeout=30).exit_code == 0
    refusals = [r for r in results if "state and config dir" in r]
    assert len(refusals) == 4
    for path in targets:
        assert not (project / path).exists()
    again = System(project)
    shipped = System(project, load_project=False)
    assert again.immune_config.enabled
    assert set(again.templates) == set(shipped.templates)
    assert again.templates["code-analyst"] == shipped.templates["code-analyst"]
