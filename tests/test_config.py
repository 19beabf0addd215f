"""Configuration: shipped defaults, project overrides, and errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.config import Config, KernelConfig, deep_merge, load_config
from rnix_actors.errors import ConfigError
from rnix_actors.paths import shipped_conf_dir

SEED_IMMUNE = {
    "enabled": True,
    "warn_only": True,
    "deviation_threshold": 2.0,
    "min_samples": 5,
    "min_migration_similarity": 0.5,
    "threat_ttl_days": 30,
    "max_threats": 500,
}


def project(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".rnix" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_defaults() -> None:
    config = load_config(None)
    assert config.kernel == KernelConfig()
    assert config.immune == SEED_IMMUNE
    assert config.sources == (str(shipped_conf_dir() / "config.yaml"),)
    shipped = (shipped_conf_dir() / "config.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(shipped, 1) if text.strip().startswith("min_samples:"))
    assert config.origin("immune.min_samples").endswith(f"config.yaml:{line}")


def test_missing_project_file_is_fine(tmp_path: Path) -> None:
    config = load_config(tmp_path / ".rnix" / "config.yaml")
    assert config.kernel == KernelConfig()
    assert len(config.sources) == 1


def test_project_overrides_are_merged(tmp_path: Path) -> None:
    path = project(tmp_path, "kernel:\n  sigterm_grace: 2\nimmune:\n  warn_only: false\n")
    config = load_config(path)
    assert config.kernel == KernelConfig(sigterm_grace=2.0)
    assert config.immune == {**SEED_IMMUNE, "warn_only": False}
    assert config.sources[-1] == str(path)
    assert config.origin("immune.warn_only") == f"{path}:4"
    assert config.origin("kernel.shell_timeout").startswith(str(shipped_conf_dir()))


def test_empty_project_file_and_commented_sections(tmp_path: Path) -> None:
    assert load_config(project(tmp_path, "")).immune == SEED_IMMUNE
    assert load_config(project(tmp_path, "immune:\n  # warn_only: false\n")).immune == SEED_IMMUNE


def test_unknown_section_lists_allowed(tmp_path: Path) -> None:
    path = project(tmp_path, "kernel: {}\nimmun:\n  enabled: false\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == f"{path}:2"
    assert info.value.field == "immun"
    assert "did you mean 'immune'" in info.value.fix
    assert "allowed keys: kernel, immune" in info.value.fix


@pytest.mark.parametrize(
    ("text", "line", "field", "expected"),
    [
        ("kernel:\n  sigterm_grace: 0\n", 2, "kernel.sigterm_grace", "a number > 0"),
        ("kernel:\n  shell_timeout: -1\n", 2, "kernel.shell_timeout", "a number > 0"),
        ("kernel:\n  event_log: yes\n", 2, "kernel.event_log", "true or false"),
        ("kernel:\n  grace: 1\n", 2, "kernel.grace", "allowed keys: sigterm_grace"),
        ("kernel: [1]\n", 1, "kernel", "must be a mapping"),
        ("immune: on\n", 1, "immune", "must be a mapping"),
    ],
)
def test_invalid_values_name_the_project_file(
    tmp_path: Path, text: str, line: int, field: str, expected: str
) -> None:
    path = project(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == f"{path}:{line}"
    assert info.value.field == field
    assert expected in str(info.value)


def test_python_built_config_is_validated() -> None:
    assert Config().kernel.sigterm_grace == 10.0
    with pytest.raises(ValueError):
        KernelConfig(sigterm_grace=0)


_values = st.recursive(
    st.integers() | st.text(max_size=3),
    lambda inner: st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=6,
)
_maps = st.dictionaries(st.sampled_from("abcd"), _values, max_size=4)


@given(_maps, _maps)
def test_deep_merge_keeps_base_keys_and_prefers_over(
    base: dict[str, Any], over: dict[str, Any]
) -> None:
    merged = deep_merge(base, over)
    assert set(merged) == set(base) | set(over)
    for key, value in over.items():
        if not (isinstance(value, dict) and isinstance(base.get(key), dict)):
            assert merged[key] == value
    assert deep_merge(merged, over) == merged
