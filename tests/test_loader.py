"""Loading skills and agent templates: shipped defaults, overrides, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.drivers.replay import parse_replay_script
from rnix_actors.errors import ConfigError
from rnix_actors.loader import NAME_PATTERN, load_skills, load_templates, template_from_mapping
from rnix_actors.paths import shipped_conf_dir
from rnix_actors.templates import Limits, Skill, effective_devices

SKILLS = {"reading": Skill("reading", devices=("/dev/fs",)), "shell": Skill("shell")}
SCRIPT = 'version: "1"\nresponses:\n  - content: done\n'


def make_dir(
    root: Path, skills: dict[str, str] | None = None, agents: dict[str, str] | None = None
) -> Path:
    for sub, files in (("skills", skills or {}), ("agents", agents or {})):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (root / sub / name).write_text(text, encoding="utf-8")
    (root / "replay").mkdir(exist_ok=True)
    (root / "replay" / "s.yaml").write_text(SCRIPT, encoding="utf-8")
    return root


def agent(name: str = "a", extra: str = "") -> str:
    return f"name: {name}\nmodel: ../replay/s.yaml\n{extra}"


def load_one(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    root = make_dir(tmp_path / "conf", agents={"a.yaml": text})
    with pytest.raises(ConfigError) as info:
        load_templates([root], SKILLS)
    return root / "agents" / "a.yaml", info.value


# --- the shipped defaults -------------------------------------------------------------------


def test_shipped_conf_loads() -> None:
    conf = shipped_conf_dir()
    skills = load_skills([conf])
    templates = load_templates([conf], skills)
    assert {"code-analyst", "security-scanner", "doc-writer"} <= set(templates)
    assert {
        "code-analysis",
        "static-review",
        "vulnerability-scan",
        "dependency-audit",
        "documentation",
        "summarise",
    } <= set(skills)
    for template in templates.values():
        assert template.driver == "replay"
        assert Path(template.model).is_absolute()
        script = parse_replay_script(Path(template.model))
        assert script.responses[-1].tool_calls[-1].name == "complete"
        assert template.instructions
        assert effective_devices(template, skills) <= {"/dev/fs", "/dev/shell"}
    assert skills["summarise"].devices == ()
    assert set(skills["vulnerability-scan"].devices) == {"/dev/fs", "/dev/shell"}


def test_shipped_replay_scripts_use_only_known_tools_and_no_reads() -> None:
    known = {"write_file", "list_files", "glob", "shell", "call_device", "spawn", "send"}
    for path in sorted((shipped_conf_dir() / "replay").glob("*.yaml")):
        script = parse_replay_script(path)
        for response in script.responses:
            assert response.input_tokens and response.output_tokens
            for call in response.tool_calls:
                assert call.name in known | {"complete"}, (path, call.name)


# --- loading and overriding -----------------------------------------------------------------


def test_skills_and_templates_load_from_files(tmp_path: Path) -> None:
    root = make_dir(
        tmp_path / "conf",
        skills={"r.yaml": "name: reading\ndescription: read\ndevices: [/dev/fs/]\n"},
        agents={
            "a.yaml": agent(
                "reader",
                "skills: [reading]\ndevices: [/dev/shell]\ninstructions: hi\n"
                "limits: {max_steps: 3, step_timeout: 1.5}\n",
            )
        },
    )
    skills = load_skills([root])
    assert skills["reading"] == Skill(
        "reading", "read", ("/dev/fs",), source=str(root / "skills" / "r.yaml")
    )
    template = load_templates([root], skills)["reader"]
    assert template.skills == ("reading",)
    assert template.devices == ("/dev/shell",)
    assert template.model == str((root / "replay" / "s.yaml").resolve())
    assert template.limits == Limits(max_steps=3, step_timeout=1.5)
    assert template.source == str(root / "agents" / "a.yaml")


def test_later_dirs_override_earlier_by_name(tmp_path: Path) -> None:
    shipped = make_dir(
        tmp_path / "shipped",
        skills={"s.yaml": "name: reading\ndevices: [/dev/fs]\n"},
        agents={"x.yaml": agent("x", "description: shipped\n"), "y.yaml": agent("y")},
    )
    project = make_dir(
        tmp_path / "project",
        skills={"s.yaml": "name: reading\ndevices: [/dev/shell]\n", "t.yaml": "name: extra\n"},
        agents={"x.yaml": agent("x", "description: project\nskills: [extra]\n")},
    )
    skills = load_skills([shipped, project])
    assert skills["reading"].devices == ("/dev/shell",)
    templates = load_templates([shipped, project], skills)
    assert templates["x"].description == "project"
    assert templates["x"].skills == ("extra",)
    assert templates["y"].source.startswith(str(shipped))


def test_missing_dirs_are_skipped(tmp_path: Path) -> None:
    assert load_skills([tmp_path / "nope", tmp_path]) == {}
    assert load_templates([tmp_path / "nope"], {}) == {}


def test_same_name_twice_in_one_dir_is_an_error(tmp_path: Path) -> None:
    root = make_dir(tmp_path / "conf", agents={"a.yaml": agent("x"), "b.yaml": agent("x")})
    with pytest.raises(ConfigError) as info:
        load_templates([root], SKILLS)
    err = info.value
    assert err.source == f"{root / 'agents' / 'b.yaml'}:1"
    assert err.field == "name"
    assert "defined twice" in err.problem
    assert str(root / "agents" / "a.yaml") in err.fix


# --- template errors ------------------------------------------------------------------------


def test_unknown_skill_lists_known_skills(tmp_path: Path) -> None:
    path, err = load_one(tmp_path, agent("a", "skills:\n  - reading\n  - writing\n"))
    assert err.source == f"{path}:5"
    assert err.field == "skills[1]"
    assert "unknown skill 'writing'" in err.problem
    assert "known skills: reading, shell" in err.problem


def test_bad_name_is_rejected(tmp_path: Path) -> None:
    path, err = load_one(tmp_path, agent("Bad_Name"))
    assert err.source == f"{path}:1"
    assert err.field == "name"
    assert "lowercase" in err.fix


def test_missing_name(tmp_path: Path) -> None:
    _, err = load_one(tmp_path, "model: ../replay/s.yaml\n")
    assert err.field == "name"
    assert "is required" in err.problem


def test_bad_device_path_names_the_item(tmp_path: Path) -> None:
    path, err = load_one(tmp_path, agent("a", "devices:\n  - /dev/fs\n  - dev/shell\n"))
    assert err.source == f"{path}:5"
    assert err.field == "devices[1]"
    assert "absolute" in err.problem


@pytest.mark.parametrize(
    ("limits", "field", "expected"),
    [
        ("max_steps: -1", "limits.max_steps", "an integer >= 0"),
        ("max_tokens: 1.5", "limits.max_tokens", "an integer >= 0"),
        ("step_timeout: -2", "limits.step_timeout", "a number >= 0"),
        ("context_slots: 3", "limits.context_slots", "an integer >= 4"),
        ("max_step: 3", "limits.max_step", "did you mean 'max_steps'"),
    ],
)
def test_limit_errors(tmp_path: Path, limits: str, field: str, expected: str) -> None:
    path, err = load_one(tmp_path, agent("a", f"limits:\n  {limits}\n"))
    assert err.source == f"{path}:4"
    assert err.field == field
    assert expected in str(err)


def test_unknown_template_key(tmp_path: Path) -> None:
    _, err = load_one(tmp_path, agent("a", "skils: [reading]\n"))
    assert err.field == "skils"
    assert "did you mean 'skills'" in err.fix
    assert "allowed keys: name, description, skills" in err.fix


def test_missing_replay_script(tmp_path: Path) -> None:
    path, err = load_one(tmp_path, "name: a\nmodel: ../replay/missing.yaml\n")
    assert err.source == f"{path}:2"
    assert err.field == "model"
    assert "missing.yaml not found" in err.problem
    assert "relative to" in err.fix


def test_replay_needs_a_model(tmp_path: Path) -> None:
    _, err = load_one(tmp_path, "name: a\n")
    assert err.field == "model"
    assert "replay" in err.problem


def test_other_drivers_keep_model_verbatim(tmp_path: Path) -> None:
    root = make_dir(tmp_path, agents={"a.yaml": "name: a\ndriver: openai\nmodel: gpt-x\n"})
    assert load_templates([root], {})["a"].model == "gpt-x"


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path, err = load_one(tmp_path, "name: a\nskills: [reading\n")
    assert err.source.startswith(f"{path}:")
    assert "invalid YAML" in err.problem


# --- Python callers -------------------------------------------------------------------------


def test_template_from_mapping() -> None:
    template = template_from_mapping(
        {"name": "host-agent", "skills": ["reading"], "model": "in-memory", "limits": Limits()},
        "<host>",
        SKILLS,
    )
    assert template.model == "in-memory"
    assert template.source == "<host>"
    assert template.limits == Limits()


def test_template_from_mapping_errors_name_the_source() -> None:
    with pytest.raises(ConfigError) as info:
        template_from_mapping({"name": "a", "model": "m", "limits": {"max_steps": "9"}}, "<h>", {})
    assert str(info.value).startswith("<h>: field 'limits.max_steps': must be an integer")


def test_template_from_mapping_with_base_dir(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SCRIPT)
    template = template_from_mapping({"name": "a", "model": "s.yaml"}, "<h>", {}, tmp_path)
    assert template.model == str((tmp_path / "s.yaml").resolve())


@given(st.text(max_size=20))
def test_names_follow_the_pattern(name: str) -> None:
    valid = re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) is not None
    assert (NAME_PATTERN.fullmatch(name) is not None) == valid
    try:
        template = template_from_mapping({"name": name, "model": "m"}, "<h>", {})
    except ConfigError as exc:
        assert not valid
        assert exc.field == "name"
    else:
        assert valid
        assert template.name == name
