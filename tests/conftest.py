"""Shared fixtures: a real System in a temporary project, and a leak check for threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest

from rnix_actors import System


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "README.md").write_text("# sample\n")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('hello')\n")
    return root


@pytest.fixture
def system(project: Path) -> Iterator[System]:
    with System(project) as sys_:
        yield sys_


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    pykka.ActorRegistry.stop_all(timeout=5)
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith(("AgentProcess", "Kernel", "EventBus")):
            thread.join(5)
