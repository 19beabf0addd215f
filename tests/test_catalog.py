"""`Catalog`: templates and skills follow their files; a broken file changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnix_actors import AgentTemplate, ConfigError
from rnix_actors.catalog import Catalog


def _template(path: Path, description: str) -> None:
    path.write_text(f"name: {path.stem}\ndescription: {description}\ndriver: python-x\n")


def test_added_changed_and_removed_templates_are_picked_up(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    catalog = Catalog([tmp_path])
    assert catalog.templates == {}
    _template(agents / "alpha.yaml", "first")
    assert catalog.refresh().added == ("alpha",)
    _template(agents / "alpha.yaml", "second, a longer description")
    assert catalog.refresh().changed == ("alpha",)
    assert catalog.templates["alpha"].description == "second, a longer description"
    assert not catalog.refresh()  # nothing changed since
    catalog.add_template(AgentTemplate("from-python"))
    (agents / "alpha.yaml").unlink()
    changes = catalog.refresh()
    assert changes.removed == ("alpha",) and "from-python" in catalog.templates


def test_a_broken_file_keeps_the_catalog_whole(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    _template(agents / "alpha.yaml", "works")
    catalog = Catalog([tmp_path])
    (agents / "beta.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"beta\.yaml"):
        catalog.refresh()
    assert list(catalog.templates) == ["alpha"]


def test_max_age_skips_a_recent_look(tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    agents.mkdir()
    catalog = Catalog([tmp_path])
    _template(agents / "alpha.yaml", "new")
    assert not catalog.refresh(max_age=3600)  # looked at construction, an hour is not up
    assert catalog.refresh().added == ("alpha",)
