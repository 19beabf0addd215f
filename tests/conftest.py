"""Shared fixtures: a real System in a temporary project, and a leak check for threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest
from hypothesis import HealthCheck, settings

from rnix_actors import System

# Tests never assert timings, and Hypothesis's deadline and too-slow health check
# are timings: on a shared CI machine a pause of the VM fails them. Properties still run in full.
settings.register_profile(
    "rnix", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("rnix")


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


LEAK_GRACE = 10.0  # seconds a thread of a finished test gets to end before it counts as leaked


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    """Every test cleans up after itself: actors stopped, and every thread it started gone."""
    before = set(threading.enumerate())
    yield
    pykka.ActorRegistry.stop_all(timeout=5)
    deadline = time.monotonic() + LEAK_GRACE
    leaked = []
    for thread in set(threading.enumerate()) - before:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            leaked.append(thread.name)
    assert not leaked, f"threads still running after the test: {sorted(leaked)}"
