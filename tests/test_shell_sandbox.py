"""Adversarial tests of the /dev/shell sandbox: each fence is probed as an agent would.

Every test runs real commands under the real bubblewrap; where it helps, the same probe is also
run with the sandbox off, to show that the probe would succeed without the fence.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import eventually, host_pids, marker
from test_shell_device import read_fifo, run

from rnix_actors.config import load_config
from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.sandbox import Bubblewrap
from rnix_actors.kernel.shell import ShellDevice
from rnix_actors.shellconf import DEFAULT_READ, ShellSettings
from rnix_actors.system import System

OFF = ShellSettings(sandbox=False)


@pytest.fixture
def outside() -> Iterator[Path]:
    """A host dir outside the work dir and outside /tmp (which the sandbox replaces anyway)."""
    path = Path("/var/tmp") / f"rnix-sandbox-test-{uuid.uuid4().hex}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_key_in_a_home_dir_is_not_readable(tmp_path: Path, outside: Path) -> None:
    key = outside / ".ssh" / "id_rsa"
    key.parent.mkdir()
    key.write_text("PRIVATE KEY MATERIAL\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(outside)}
    probe = "cat ~/.ssh/id_rsa"
    assert "PRIVATE KEY" in run(tmp_path, probe, ShellDevice(env=env, settings=OFF))
    out = run(tmp_path, probe, ShellDevice(env=env))
    assert "PRIVATE KEY" not in out
    assert "No such file" in out and out.endswith("exit_code: 1")


def test_the_host_processes_and_their_environments_are_hidden(tmp_path: Path) -> None:
    secret = f"sk-host-secret-{uuid.uuid4().hex}"
    host = subprocess.Popen(["sleep", "60"], env={"API_KEY": secret})
    try:
        probe = f"cat /proc/{host.pid}/environ; ls /proc"
        assert secret in run(tmp_path, probe, ShellDevice(settings=OFF))
        out = run(tmp_path, probe, ShellDevice())
        assert secret not in out
        assert "No such file" in out
        listed = {line for line in out.splitlines() if line.isdigit()}
        assert str(os.getpid()) not in listed and str(host.pid) not in listed
    finally:
        host.kill()
        host.wait()


def test_writes_outside_the_work_dir_are_refused(tmp_path: Path, outside: Path) -> None:
    target = outside / "planted"
    out = run(tmp_path, f"echo x > {target}; touch /usr/planted; echo x > inside.txt")
    assert not target.exists()
    assert not Path("/usr/planted").exists()
    assert "Directory nonexistent" in out and "Read-only file system" in out
    assert (tmp_path / "inside.txt").read_text() == "x\n"  # the work dir stays writable


def test_tmp_is_private(tmp_path: Path) -> None:
    name = f"rnix-private-{uuid.uuid4().hex}"
    out = run(tmp_path, f"echo x > /tmp/{name} && cat /tmp/{name}")
    assert out == "x\n"
    assert not Path("/tmp", name).exists()


def _loopback_server() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    return server


CONNECT = (
    'python3 -c \'import socket,sys; socket.create_connection(("127.0.0.1", {port}), 2); '
    'print("connected")\''
)


def test_a_loopback_connection_is_refused_with_the_network_off(tmp_path: Path) -> None:
    with _loopback_server() as server:
        port = server.getsockname()[1]
        out = run(tmp_path, CONNECT.format(port=port))
        assert "connected" not in out and "exit_code: 1" in out
        server.settimeout(0)
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing reached the host's listener


def test_network_true_lets_the_connection_through(tmp_path: Path) -> None:
    device = ShellDevice(settings=ShellSettings(network=True))
    with _loopback_server() as server:
        out = run(tmp_path, CONNECT.format(port=server.getsockname()[1]), device)
        assert out == "connected\n"
        conn, _ = server.accept()
        conn.close()


def test_a_setsid_grandchild_is_gone_after_the_timeout(tmp_path: Path) -> None:
    mark = marker()
    with pytest.raises(DeviceError) as info:
        run(tmp_path, f"setsid sh -c 'sleep {mark}' & sleep 30", timeout=1)
    assert info.value.code == ErrorCode.TIMEOUT
    assert eventually(lambda: not host_pids(mark))


def test_the_state_dir_is_neither_readable_nor_writable(tmp_path: Path) -> None:
    agents = tmp_path / ".rnix" / "agents"
    agents.mkdir(parents=True)
    (agents / "code-analyst.yaml").write_text("name: code-analyst\n")
    device = ShellDevice(hidden=[tmp_path / ".rnix"])
    out = run(
        tmp_path,
        "cat .rnix/agents/code-analyst.yaml; echo 'devices: [/dev/shell]' > .rnix/agents/x.yaml;"
        " echo 'immune: {enabled: false}' > .rnix/config.yaml; ls -A .rnix",
        device,
    )
    assert "name: code-analyst" not in out
    assert "Read-only" in out
    assert sorted(p.name for p in (tmp_path / ".rnix").iterdir()) == ["agents"]
    assert [p.name for p in agents.iterdir()] == ["code-analyst.yaml"]


def test_a_system_hides_its_state_dir_and_config_dir(tmp_path: Path) -> None:
    state = tmp_path / "elsewhere-state"
    system = System(tmp_path, state_dir=state)
    assert set(system.protected_dirs()) == {state.resolve(), tmp_path.resolve() / ".rnix"}


def test_an_unavailable_sandbox_refuses_with_how_to_fix_it(tmp_path: Path) -> None:
    device = ShellDevice(sandbox=Bubblewrap(binary="/nonexistent/bwrap"))
    with pytest.raises(DeviceError) as info:
        run(tmp_path, "touch ran", device)
    assert info.value.code == ErrorCode.INTERNAL
    assert "apt-get install bubblewrap" in info.value.message
    assert "sandbox: off" in info.value.message
    assert not (tmp_path / "ran").exists()


def test_sandbox_off_in_the_project_config_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".rnix").mkdir()
    (tmp_path / ".rnix" / "config.yaml").write_text("shell:\n  sandbox: off\n")
    with caplog.at_level(logging.WARNING):
        system = System(tmp_path)
    assert any("shell.sandbox is off" in r.getMessage() for r in caplog.records)
    _, device, _ = system.devices.lookup("/dev/shell")
    assert isinstance(device, ShellDevice) and device.settings.sandbox is False


def test_the_shipped_read_list_is_the_default() -> None:
    assert load_config().shell.read == DEFAULT_READ


KILLED_DAEMON = """
import sys
from pathlib import Path
from rnix_actors.kernel.devices import DeviceCall
from rnix_actors.kernel.shell import ShellDevice
work = Path(sys.argv[1])
ShellDevice().handle(DeviceCall(1, "/dev/shell", "", "exec",
    {"command": f"setsid sleep {sys.argv[2]} & echo up > ready.fifo; wait"}, work))
"""


def test_commands_die_with_a_killed_daemon(tmp_path: Path) -> None:
    mark = marker()
    os.mkfifo(tmp_path / "ready.fifo")
    daemon = subprocess.Popen([sys.executable, "-c", KILLED_DAEMON, str(tmp_path), mark])
    try:
        assert read_fifo(tmp_path / "ready.fifo") == "up"
        assert host_pids(mark)
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    assert eventually(lambda: not host_pids(mark))
