"""The backend choice in config and `System(backend=...)`; none of it needs Ray installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rnix_actors import System
from rnix_actors.config import load_config
from rnix_actors.errors import ConfigError
from rnix_actors.loader import template_from_mapping


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".rnix" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_default_backend_is_local_and_the_ray_section_has_defaults() -> None:
    config = load_config(None)
    assert config.kernel.backend == "local"
    assert config.ray.address == "" and config.ray.max_restarts == 3
    assert config.ray.lost_after == 30.0 and config.ray.namespace == ""


def test_a_project_chooses_ray_and_its_cluster(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        """
        kernel:
          backend: ray
        ray:
          address: "10.0.0.5:6379"
          max_restarts: 0
          lost_after: 5
        """,
    )
    config = load_config(path)
    assert config.kernel.backend == "ray"
    assert (config.ray.address, config.ray.max_restarts, config.ray.lost_after) == (
        "10.0.0.5:6379", 0, 5.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ("kernel:\n  backend: kubernetes\n", "kernel.backend", "write local"),
        ("ray:\n  adress: auto\n", "ray.adress", "did you mean 'address'"),
        ("ray:\n  max_restarts: -1\n", "ray.max_restarts", "whole number"),
        ("ray:\n  lost_after: 0\n", "ray.lost_after", ""),
    ],
)
def test_bad_backend_settings_name_the_file_the_field_and_the_fix(
    tmp_path: Path, text: str, field: str, fix: str
) -> None:
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and field in message and fix in message


def test_system_refuses_an_unknown_backend_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend must be 'local' or 'ray'"):
        System(tmp_path, state="memory", backend="threads")


def test_a_template_may_ask_for_a_placement(tmp_path: Path) -> None:
    template = template_from_mapping(
        {"name": "vision", "driver": "b", "placement": ["gpu", "zone=eu"]}, "t.yaml", {}
    )
    assert template.placement == ("gpu", "zone=eu")
    with pytest.raises(ConfigError, match="placement"):
        template_from_mapping({"name": "bad", "driver": "b", "placement": 3}, "t.yaml", {})


def test_the_local_backend_imports_nothing_of_ray(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from rnix_actors import System
        with System({str(tmp_path)!r}, state="memory") as system:
            system.register_llm("b", lambda request: "ok")
            from rnix_actors import AgentTemplate
            system.add_template(AgentTemplate("a", devices=("/dev/fs",), driver="b"))
            assert system.run("a", "x", timeout=30).exit_code == 0
            assert [n.name for n in system.nodes()] == ["local"]
        prefixes = ("ray.", "rnix_actors.ray")
        leaked = sorted(m for m in sys.modules if m == "ray" or m.startswith(prefixes))
        assert not leaked, leaked
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
