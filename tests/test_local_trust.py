"""Local trust: private state files, the socket's dir, the client's check of the server, and
the work dirs a spawn may name."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import agent, call, respond, scripted

from rnix_actors import System
from rnix_actors.errors import SpawnError
from rnix_actors.ipc.client import Client, UntrustedDaemon
from rnix_actors.ipc.server import prepare_socket_path
from rnix_actors.privatefs import NotPrivate, owned_private_dir

NOBODY = 65534


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_state_files_are_private_under_umask_022(project: Path, umask_022: None) -> None:
    state = project / ".rnix"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)  # an existing, world-readable state dir is tightened too
    with System(project) as system:
        agent(system, "w", scripted([respond(call("write_file", path="a", content="x")), "done"]))
        assert system.run("w", "write", timeout=30).exit_code == 0
        system.sync_events()
        found = modes(state)  # while running: the WAL and its index exist
    assert {"rnix.db", "rnix.db-wal", "rnix.db-shm"} <= set(found)
    assert any(name.endswith("events.jsonl") for name in found)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (state / name).is_dir() else 0o600)
    }
    assert wrong == {}


def test_the_socket_dir_must_be_ours(tmp_path: Path) -> None:
    foreign = tmp_path / "shared"
    foreign.mkdir()
    os.chown(foreign, NOBODY, NOBODY)
    with pytest.raises(NotPrivate, match="belongs to uid 65534"):
        owned_private_dir(foreign)
    with pytest.raises(NotPrivate):
        prepare_socket_path(foreign / "rnix.sock")
    assert not (foreign / "rnix.sock").exists()
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o777)
    os.chmod(wide, 0o777)
    prepare_socket_path(wide / "rnix.sock")  # ours: tightened, then accepted
    assert stat.S_IMODE(wide.stat().st_mode) == 0o700


FORGED = """
import socket, sys
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(1)
print("ready", flush=True)
conn, _ = listener.accept()
conn.recv(4096)
conn.sendall(b'{"id": 1, "ok": true, "result": {"processes": []}}\\n')
conn.close()
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A dir another user (nobody) can reach and own: pytest's tmp dirs are root's alone."""
    top = Path(tempfile.mkdtemp(prefix="rnix-forged-", dir="/var/tmp"))
    os.chmod(top, 0o755)
    shared = top / "shared"
    shared.mkdir()
    os.chown(shared, NOBODY, NOBODY)
    yield shared
    shutil.rmtree(top, ignore_errors=True)


def test_a_forged_server_of_another_user_is_refused(shared_dir: Path) -> None:
    path = shared_dir / "rnix.sock"
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    forged = subprocess.Popen(
        [python, "-c", FORGED, str(path)], user=NOBODY, stdout=subprocess.PIPE, text=True
    )
    try:
        assert forged.stdout is not None and forged.stdout.readline() == "ready\n"
        with pytest.raises(UntrustedDaemon, match=r"runs as uid 65534, not as you"):
            Client.connect(path)
    finally:
        forged.kill()
        forged.wait()
        assert forged.stdout is not None
        forged.stdout.close()


def test_a_spawn_work_dir_must_be_inside_the_project(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with System(project) as system:
        for bad, why in [
            ("/", "may not be /"),
            (outside, "outside the project"),
            (project / ".rnix", "inside the rnix state or config dir"),
        ]:
            with pytest.raises(SpawnError, match=why):
                system.spawn("code-analyst", "x", workdir=bad)
        assert system.ps(all=True) == []
        (project / "sub").mkdir()
        assert system.wait(system.spawn("doc-writer", "x", workdir=project / "sub"), 30)


def test_allowed_workdirs_admit_a_dir_outside_the_project(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (project / ".rnix").mkdir(exist_ok=True)
    (project / ".rnix" / "config.yaml").write_text(f"kernel:\n  allowed_workdirs: [{outside}]\n")
    with System(project) as system:
        info = system.wait(system.spawn("doc-writer", "x", workdir=outside), 30)
        assert info.exit_code == 0
