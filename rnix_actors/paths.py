"""Where rnix-actors finds its shipped files.

``rnix_actors/conf`` holds the shipped defaults (config.yaml, agent templates, skills, replay
scripts); in a source checkout it is a symlink to the top-level ``conf/`` directory.
"""

from __future__ import annotations

from pathlib import Path


def shipped_conf_dir() -> Path:
    """The directory of the shipped defaults (``config.yaml``, ``agents/``, ``skills/``...)."""
    return Path(__file__).parent / "conf"
