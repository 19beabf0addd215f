"""Load skills and agent templates from YAML directories.

A configuration directory (the shipped ``conf/``, a project's ``.rnix/``) may hold
``skills/*.yaml`` and ``agents/*.yaml``. Directories are read in order and later ones override
earlier ones by name, so a project can replace a shipped template; two files defining the same
name inside one directory are an error, because which one wins would depend on file names.
Missing directories are skipped.

Everything is validated here, before any process starts: a bad file raises `ConfigError` naming
the file, line, field and fix, and nothing is half-loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rnix_actors.errors import ConfigError
from rnix_actors.kernel.devices import normalize_device_path
from rnix_actors.shellconf import shell_settings_from_fields
from rnix_actors.templates import AgentTemplate, Limits, Skill
from rnix_actors.yamlsrc import YamlMap, from_python, load_yaml

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*")
NAME_HINT = (
    "use lowercase letters, digits and '-', starting with a letter or digit, e.g. code-analyst"
)
# A driver name becomes one segment of /dev/llm/<driver>.
DRIVER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
DRIVER_HINT = "use letters, digits, '.', '_' and '-', e.g. replay or openai"

SKILL_KEYS = ("name", "description", "devices")
TEMPLATE_KEYS = (
    "name",
    "description",
    "skills",
    "devices",
    "driver",
    "model",
    "instructions",
    "limits",
    "shell",
    "placement",
)
LIMIT_KEYS = (
    "max_steps",
    "max_tokens",
    "step_timeout",
    "context_slots",
    "max_descendants",
    "max_tree_tokens",
    "max_tree_cost",
)
MIN_CONTEXT_SLOTS = 4

_Item = TypeVar("_Item", Skill, AgentTemplate)


def load_skills(dirs: Sequence[Path]) -> dict[str, Skill]:
    """Skills from ``<dir>/skills/*.yaml`` for each dir in order (later dirs win by name)."""
    return _load_all(dirs, "skills", "skill", lambda fields, path: skill_from_fields(fields))


def load_templates(dirs: Sequence[Path], skills: Mapping[str, Skill]) -> dict[str, AgentTemplate]:
    """Agent templates from ``<dir>/agents/*.yaml`` (later dirs win by name).

    Every skill a template names must be in ``skills``; a replay ``model`` is resolved against
    the template file's directory and must exist.
    """

    def build(fields: YamlMap, path: Path) -> AgentTemplate:
        return template_from_fields(fields, skills, path.parent)

    return _load_all(dirs, "agents", "agent template", build)


def template_from_mapping(
    data: Mapping[str, Any],
    source: str,
    skills: Mapping[str, Skill],
    base_dir: Path | None = None,
) -> AgentTemplate:
    """Build a template from a plain mapping with the same checks as a YAML file.

    ``source`` names where the data came from in errors. With ``base_dir`` a replay ``model`` is
    a script path resolved against it and must exist; without it ``model`` is kept as given, so
    it may name a script registered with `ReplayDriver.add_script`.
    """
    return template_from_fields(from_python(data, source), skills, base_dir)


def skill_from_fields(fields: YamlMap) -> Skill:
    """Build a `Skill` from a parsed mapping (``source`` is the file name)."""
    fields.check_keys(SKILL_KEYS, required=("name",))
    return Skill(
        name=fields.get_str("name", required=True, pattern=NAME_PATTERN, hint=NAME_HINT),
        description=fields.get_str("description"),
        devices=fields.get_str_list("devices", item=normalize_device_path),
        source=fields.file,
    )


def template_from_fields(
    fields: YamlMap, skills: Mapping[str, Skill], base_dir: Path | None
) -> AgentTemplate:
    """Build an `AgentTemplate` from a parsed mapping (see `template_from_mapping`)."""
    fields.check_keys(TEMPLATE_KEYS, required=("name",))
    name = fields.get_str("name", required=True, pattern=NAME_PATTERN, hint=NAME_HINT)
    driver = fields.get_str("driver", "replay", pattern=DRIVER_PATTERN, hint=DRIVER_HINT)
    return AgentTemplate(
        name=name,
        description=fields.get_str("description"),
        skills=_skill_names(fields, skills),
        devices=fields.get_str_list("devices", item=normalize_device_path),
        driver=driver,
        model=_model(fields, driver, base_dir),
        instructions=fields.get_str("instructions"),
        limits=limits_from_fields(fields.get_map("limits")),
        source=fields.file,
        shell=shell_settings_from_fields(fields.get_map("shell")) if fields.has("shell") else None,
        placement=fields.get_str_list("placement"),
    )


def limits_from_fields(fields: YamlMap) -> Limits:
    """Read a ``limits:`` mapping; absent keys keep the `Limits` defaults."""
    fields.check_keys(LIMIT_KEYS)
    default = Limits()
    return Limits(
        max_steps=fields.get_int("max_steps", default.max_steps, minimum=0),
        max_tokens=fields.get_int("max_tokens", default.max_tokens, minimum=0),
        step_timeout=fields.get_float("step_timeout", default.step_timeout, minimum=0.0),
        context_slots=fields.get_int(
            "context_slots", default.context_slots, minimum=MIN_CONTEXT_SLOTS
        ),
        max_descendants=fields.get_int("max_descendants", default.max_descendants, minimum=0),
        max_tree_tokens=fields.get_int("max_tree_tokens", default.max_tree_tokens, minimum=0),
        max_tree_cost=fields.get_float("max_tree_cost", default.max_tree_cost, minimum=0.0),
    )


def _skill_names(fields: YamlMap, skills: Mapping[str, Skill]) -> tuple[str, ...]:
    def known(name: str) -> str:
        if name not in skills:
            listed = ", ".join(sorted(skills)) or "none are defined"
            raise ValueError(
                f"unknown skill '{name}' (known skills: {listed}); "
                "define it in skills/<name>.yaml or remove it"
            )
        return name

    return fields.get_str_list("skills", item=known)


def _model(fields: YamlMap, driver: str, base_dir: Path | None) -> str:
    model = fields.get_str("model")
    if driver != "replay":
        return model
    if not model:
        fix = "set model: to the path of a replay script, e.g. ../replay/<name>.yaml"
        raise fields.error("model", "is required when driver is 'replay'", fix)
    if base_dir is None:
        return model
    path = (base_dir / Path(model).expanduser()).resolve()
    if not path.is_file():
        fix = f"the path is relative to {base_dir}; fix it or create the script"
        raise fields.error("model", f"replay script {path} not found", fix)
    return str(path)


def _load_all(
    dirs: Sequence[Path],
    subdir: str,
    what: str,
    build: Callable[[YamlMap, Path], _Item],
) -> dict[str, _Item]:
    merged: dict[str, _Item] = {}
    for directory in dirs:
        merged.update(_load_dir(Path(directory) / subdir, what, build))
    return merged


def _load_dir(
    directory: Path, what: str, build: Callable[[YamlMap, Path], _Item]
) -> dict[str, _Item]:
    if not directory.is_dir():
        return {}
    found: dict[str, _Item] = {}
    for path in _yaml_files(directory):
        fields = load_yaml(path)
        item = build(fields, path)
        first = found.get(item.name)
        if first is not None:
            problem = f"{what} '{item.name}' is defined twice in {directory}"
            fix = f"it is also defined in {first.source}; rename or remove one of them"
            raise ConfigError(fields.source("name"), "name", problem, fix)
        found[item.name] = item
    return found


def _yaml_files(directory: Path) -> list[Path]:
    # Dot files are editor lock/backup files, not definitions.
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix in (".yaml", ".yml") and not path.name.startswith(".")
    )
