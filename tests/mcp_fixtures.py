"""Projects whose ``.rnix/mcp.yaml`` mounts the real test server (``tests/mcp_server.py``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from rnix_actors import LLMRequest, LLMResponse, ProcessInfo, System, ToolCall

SERVER = Path(__file__).with_name("mcp_server.py")
TOKEN = "tok-7f3a9c1e-notes-secret"
HEADER_TOKEN = "hdr-51d0b2aa-tracker-secret"


def write_mcp_yaml(project: Path, servers: dict[str, Any]) -> None:
    rnix = project / ".rnix"
    rnix.mkdir(exist_ok=True)
    (rnix / "mcp.yaml").write_text(yaml.safe_dump({"version": "1", "servers": servers}))


def stdio_server(markers: Path, **extra: Any) -> dict[str, Any]:
    """The test server over stdio; ``NOTES_TOKEN`` and ``MARKER_DIR`` come from variables."""
    return {
        "command": sys.executable,
        "args": [str(SERVER)],
        "env": {"NOTES_TOKEN": "RNIX_TEST_NOTES_TOKEN", "MARKER_DIR": "RNIX_TEST_MARKERS"},
        "timeout": 20,
        **extra,
    }


@contextmanager
def server_env(markers: Path) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("RNIX_TEST_NOTES_TOKEN", "RNIX_TEST_MARKERS")}
    os.environ["RNIX_TEST_NOTES_TOKEN"] = TOKEN
    os.environ["RNIX_TEST_MARKERS"] = str(markers)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def tc(name: str, /, **args: Any) -> ToolCall:
    return ToolCall(f"{name}-{time.monotonic_ns()}", name, args)


def device_call(device: str, /, **args: Any) -> ToolCall:
    return tc("call_device", device=device, input=args)


Brain = Callable[[LLMRequest], LLMResponse | str]


class Recorder:
    """A python-driver brain that plays ``steps`` and keeps every request it was given."""

    def __init__(self, *steps: LLMResponse | str) -> None:
        self.steps = steps
        self.requests: list[LLMRequest] = []

    def __call__(self, request: LLMRequest) -> LLMResponse | str:
        self.requests.append(request)
        return self.steps[min(request.step, len(self.steps)) - 1]

    def tool_results(self) -> list[str]:
        last = self.requests[-1]
        return [m.content for m in last.messages if m.role == "tool"]


def results(system: System, info: ProcessInfo) -> ProcessInfo:
    assert info.exit_code == 0, info.exit_reason
    return info


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll an outside process's observable state (a file, a pid) until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        threading.Event().wait(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def http_server(env: dict[str, str] | None = None, port: int = 0) -> Iterator[str]:
    """The test server over streamable HTTP on loopback (``port``, or a free one); yields its
    URL and stops the server on exit."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", str(port)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _accepts(port), what=f"HTTP server on port {port}")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
