"""YAML bombs in every input kind are refused with file, line and field, before anything walks
them; a bomb spawned as a replay script is parsed off the kernel's thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import agent

from rnix_actors import AgentTemplate, System
from rnix_actors.compose import parse_workflow
from rnix_actors.config import load_config
from rnix_actors.drivers import replay
from rnix_actors.drivers.providers import load_providers
from rnix_actors.errors import ConfigError
from rnix_actors.loader import load_skills, load_templates
from rnix_actors.mcp.config import load_mcp_config
from rnix_actors.paths import shipped_conf_dir
from rnix_actors.supervision.yamlspec import load_supervisors
from rnix_actors.yamlsrc import MAX_YAML_BYTES, parse_yaml


def laughs(key: str, as_map: bool) -> str:
    """A billion laughs under ``key``: 9 levels of 10 aliases each (10^9 values expanded)."""
    lines = [f"{key}:"]
    if as_map:
        lines.append("  l0: &l0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol}")
        for n in range(1, 10):
            refs = ", ".join(f"k{i}: *l{n - 1}" for i in range(10))
            lines.append(f"  l{n}: &l{n} {{{refs}}}")
    else:
        lines.append("  - &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]")
        for n in range(1, 10):
            lines.append(f"  - &l{n} [{', '.join(f'*l{n - 1}' for _ in range(10))}]")
    return "\n".join(lines) + "\n"


BOMB = "aliases expand to more than"


@pytest.mark.parametrize("as_map", [False, True], ids=["sequence", "map"])
def test_bombs_in_each_input_kind_are_refused(tmp_path: Path, as_map: bool) -> None:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    never = lambda name: True  # noqa: E731
    cases = {
        "config.yaml": lambda: load_config(write("config.yaml", laughs("immune", as_map))),
        "agents/x.yaml": lambda: load_templates(
            [write("agents/x.yaml", "name: x\n" + laughs("skills", as_map)).parent.parent], {}
        ),
        "skills/s.yaml": lambda: load_skills(
            [write("skills/s.yaml", "name: s\n" + laughs("devices", as_map)).parent.parent]
        ),
        "providers.yaml": lambda: load_providers(
            shipped_conf_dir() / "providers.yaml",
            write("providers.yaml", laughs("providers", as_map)),
        ),
        "mcp.yaml": lambda: load_mcp_config(
            None, write("mcp.yaml", laughs("servers", as_map)), tmp_path
        ),
        "supervisors.yaml": lambda: load_supervisors(
            write("supervisors.yaml", laughs("supervisors", as_map)), never
        ),
        "compose": lambda: parse_workflow("name: w\n" + laughs("agents", as_map), never, "w.yaml"),
        "replay": lambda: System(tmp_path).replay.load(
            str(write("replay.yaml", 'version: "1"\n' + laughs("responses", as_map)))
        ),
    }
    for name, load in cases.items():
        with pytest.raises(ConfigError) as info:
            load()
        message = str(info.value)
        assert BOMB in message, (name, message)
        assert ":" in info.value.source and info.value.field, (name, message)  # file:LINE, field


def test_size_and_depth_are_bounded(tmp_path: Path) -> None:
    big = tmp_path / "config.yaml"
    big.write_text("# padding\n" * (MAX_YAML_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="bytes allowed"):
        load_config(big)
    with pytest.raises(ConfigError, match=r"x.yaml:1: field 'a\[0\].*nesting deeper than 64"):
        parse_yaml("a: " + "[" * 100 + "]" * 100, "x.yaml")


def test_a_replay_bomb_does_not_stall_other_spawns(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed_on: list[str] = []
    real_parse = replay.parse_replay_script

    def recording_parse(path: Path) -> replay.ReplayScript:
        parsed_on.append(threading.current_thread().name)
        return real_parse(path)

    monkeypatch.setattr(replay, "parse_replay_script", recording_parse)
    bomb = project / "bomb.yaml"
    bomb.write_text('version: "1"\n' + laughs("responses", as_map=False))
    with System(project) as system:
        agent(system, "quick", lambda r: "done", devices=("/dev/fs",))
        system.add_template(AgentTemplate("bomber", devices=("/dev/fs",), model=str(bomb)))
        done: list[int] = []
        stop = threading.Event()

        def keep_spawning() -> None:
            while not stop.is_set() and len(done) < 200:
                done.append(system.wait(system.spawn("quick", "go"), 30).exit_code)

        spawner = threading.Thread(target=keep_spawning)
        spawner.start()
        try:
            for _ in range(5):
                with pytest.raises(ConfigError, match=BOMB):
                    system.spawn("bomber", "explode")
        finally:
            stop.set()
            spawner.join(60)
        assert done and set(done) == {0}
        assert all(p.template == "quick" for p in system.ps(all=True))  # nothing half-started
    assert parsed_on == ["MainThread"]  # once, by the caller; never on the kernel's thread
