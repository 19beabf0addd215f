"""The ``immune:`` config: seed defaults, project overrides, errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnix_actors.config import load_config
from rnix_actors.errors import ConfigError
from rnix_actors.immune.config import ImmuneConfig, immune_config_from


def project_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".rnix" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_defaults_are_the_seeds() -> None:
    config = immune_config_from(load_config(None))
    assert config == ImmuneConfig()
    assert (config.enabled, config.warn_only, config.deviation_threshold) == (True, True, 2.0)
    assert (config.min_samples, config.min_migration_similarity) == (5, 0.5)
    assert (config.threat_ttl_days, config.max_threats) == (30, 500)
    assert config.mode == "warn-only"


def test_project_file_overrides_and_modes(tmp_path: Path) -> None:
    path = project_config(
        tmp_path, "immune:\n  warn_only: false\n  min_samples: 8\n  threat_ttl_days: 0\n"
    )
    config = immune_config_from(load_config(path))
    assert (config.mode, config.min_samples, config.threat_ttl_days) == ("enforce", 8, 0)
    off = immune_config_from(load_config(project_config(tmp_path, "immune:\n  enabled: false\n")))
    assert off.mode == "disabled"


@pytest.mark.parametrize(
    ("line", "field", "allowed"),
    [
        ("deviation_threshold: 0", "deviation_threshold", "a number > 0"),
        ("deviation_threshold: fast", "deviation_threshold", "a number > 0"),
        ("min_samples: 1", "min_samples", "an integer >= 2"),
        ("min_samples: 2.5", "min_samples", "an integer >= 2"),
        ("min_migration_similarity: 1.5", "min_migration_similarity", "a number from 0 to 1"),
        ("threat_ttl_days: -1", "threat_ttl_days", "an integer >= 0"),
        ("max_threats: true", "max_threats", "an integer >= 0"),
        ("warn_only: maybe", "warn_only", "true or false"),
    ],
)
def test_bad_values_name_file_line_field_and_range(
    tmp_path: Path, line: str, field: str, allowed: str
) -> None:
    path = project_config(tmp_path, f"kernel: {{}}\nimmune:\n  enabled: true\n  {line}\n")
    with pytest.raises(ConfigError) as info:
        immune_config_from(load_config(path))
    assert info.value.source == f"{path}:4"
    assert info.value.field == f"immune.{field}"
    assert allowed in str(info.value)


def test_unknown_keys_list_the_allowed_ones(tmp_path: Path) -> None:
    path = project_config(tmp_path, "immune:\n  auto_suspend: true\n")
    with pytest.raises(ConfigError) as info:
        immune_config_from(load_config(path))
    assert info.value.field == "immune.auto_suspend"
    assert info.value.source == f"{path}:2"
    assert "allowed keys: enabled, warn_only" in str(info.value)
