"""The dashboard's server over real loopback sockets: token, cookie, Host and Origin checks,
actions, the live stream, the CLI through a daemon socket. (Browser tests are apart.)"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from helpers import agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, ProcessState, System
from rnix_actors.cli.main import cli
from rnix_actors.dashboard import Dashboard, DashboardError
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.server import DaemonServer
from rnix_actors.ipc.service import Service


@pytest.fixture
def gate(system: System) -> Iterator[threading.Event]:
    """A ``paced`` agent that takes a step every 0.05 s until the returned event is set."""
    release = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        if release.wait(0.05):
            return "released"
        return respond(call("list_files"))

    agent(system, "paced", brain, max_steps=100_000, context_slots=100_000)
    yield release
    release.set()


@pytest.fixture
def board(system: System) -> Iterator[Dashboard]:
    dashboard = system.serve_dashboard()
    yield dashboard
    dashboard.stop()


def request(
    board: Dashboard,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", board.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    return conn.getresponse()


def token_path(board: Dashboard, path: str = "/") -> str:
    return f"{path}?token={board.token}"


def test_the_url_is_loopback_with_a_random_token(system: System, board: Dashboard) -> None:
    url = urlsplit(board.url)
    assert (url.scheme, url.hostname, url.port) == ("http", "127.0.0.1", board.port)
    assert url.query == f"token={board.token}" and len(board.token) >= 32
    other = system.serve_dashboard()
    try:
        assert other.token != board.token and other.port != board.port
    finally:
        other.stop()


def test_the_server_listens_on_loopback_only(board: Dashboard) -> None:
    # The kernel's own table of listening sockets: 0100007F is 127.0.0.1.
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = [r.split()[1] for r in rows if r.split()[3] == "0A"]  # 0A: LISTEN
    ours = [addr for addr in local if int(addr.split(":")[1], 16) == board.port]
    assert ours == ["0100007F:" + f"{board.port:04X}"]
    assert not any(r.split()[1].endswith(f":{board.port:04X}") for r in Path("/proc/net/tcp6")
                   .read_text().splitlines()[1:] if r.split()[3] == "0A")  # fmt: skip


@pytest.mark.parametrize("path", ["/", "/immune", "/process/1", "/stream?page=/", "/nope"])
def test_requests_without_the_token_are_refused(board: Dashboard, path: str) -> None:
    response = request(board, path)
    assert response.status == 403
    assert b"rnix dashboard" in response.read()
    wrong = request(board, f"{path}{'&' if '?' in path else '?'}token={'x' * len(board.token)}")
    assert wrong.status == 403
    short = request(board, f"{path}{'&' if '?' in path else '?'}token=abc")
    assert short.status == 403


def test_a_foreign_host_header_is_refused_even_with_the_token(board: Dashboard) -> None:
    response = request(board, token_path(board), headers={"Host": "evil.example:80"})
    assert response.status == 403


def test_the_token_becomes_an_httponly_strict_cookie(board: Dashboard) -> None:
    first = request(board, token_path(board))
    assert first.status == 200
    cookie = first.getheader("Set-Cookie") or ""
    name = f"rnix_dashboard_{board.port}"
    assert cookie.startswith(f"{name}={board.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    csp = first.getheader("Content-Security-Policy") or ""
    assert "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp
    assert first.getheader("Referrer-Policy") == "no-referrer"
    again = request(board, "/topology", headers={"Cookie": f"{name}={board.token}"})
    assert again.status == 200 and again.getheader("Set-Cookie") is None


def action(board: Dashboard, body: object, **headers: str) -> http.client.HTTPResponse:
    data = json.dumps(body).encode()
    base = {"Content-Type": "application/json", "Content-Length": str(len(data))}
    return request(board, "/api/action", method="POST", headers={**base, **headers}, body=data)


def test_actions_need_the_token_header_not_just_the_cookie(
    system: System, board: Dashboard, gate: threading.Event
) -> None:
    pid = system.spawn("paced", "work")
    cookie = f"rnix_dashboard_{board.port}={board.token}"
    assert action(board, {"action": "pause", "pid": pid}, Cookie=cookie).status == 403
    evil = action(
        board, {"action": "pause", "pid": pid}, **{"X-Rnix-Token": board.token},
        Origin="http://evil.example",
    )  # fmt: skip
    assert evil.status == 403
    assert system.info(pid).state is ProcessState.RUNNING
    ok = action(board, {"action": "pause", "pid": pid}, **{"X-Rnix-Token": board.token})
    assert ok.status == 200
    assert json.loads(ok.read())["outcome"].startswith("pausing")
    info = system.wait(pid, timeout=10)
    assert info.state is ProcessState.SUSPENDED and info.exit_reason == "paused by user"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"action": "explode", "pid": 1}, 400),
        ({"action": "pause", "pid": "1"}, 400),
        ({"action": "pause", "pid": True}, 400),
        (["pause", 1], 400),
        ({"action": "kill", "pid": 999}, 404),
    ],
)
def test_bad_actions_are_refused_with_a_reason(board: Dashboard, body: object, status: int) -> None:
    response = action(board, body, **{"X-Rnix-Token": board.token})
    assert response.status == status
    assert json.loads(response.read())["ok"] is False


def test_untrusted_text_is_escaped(system: System, board: Dashboard, gate: threading.Event) -> None:
    pid = system.spawn("paced", '<script>alert("x")</script><img src=x onerror=alert(1)>')
    for path in ("/", f"/process/{pid}"):
        html = request(board, token_path(board, path)).read().decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def read_frame(response: http.client.HTTPResponse) -> str:
    """The next SSE frame (lines up to a blank line); comments included."""
    lines = []
    while True:
        line = response.readline().decode()
        if not line:
            return "".join(lines)
        if line == "\n":
            return "".join(lines)
        lines.append(line)


def test_the_stream_pushes_a_change_as_a_small_update(
    system: System, board: Dashboard, gate: threading.Event
) -> None:
    pid = system.spawn("paced", "work")
    cookie = {"Cookie": f"rnix_dashboard_{board.port}={board.token}"}
    version = board.app.hub.version
    stream = request(board, f"/stream?page=/&since={version}", headers=cookie)
    assert stream.status == 200
    assert stream.getheader("Content-Type", "").startswith("text/event-stream")
    system.pause(pid)
    assert system.wait(pid, timeout=10).state is ProcessState.SUSPENDED
    while True:
        frame = read_frame(stream)
        assert frame, "the stream ended"
        if frame.startswith("event: update"):
            data = json.loads(frame.split("data: ", 1)[1])
            row = data.get("procs", {}).get("set", {}).get(f"p-{pid}", "")
            if 'data-state="suspended"' in row:
                break
    assert set(data) <= {"procs", "summary"}  # only what changed travels
    stream.close()


def test_stop_ends_open_streams_and_joins_threads(system: System) -> None:
    board = system.serve_dashboard()
    before = threading.active_count()
    cookie = {"Cookie": f"rnix_dashboard_{board.port}={board.token}"}
    stream = request(board, f"/stream?page=/&since={board.app.hub.version}", headers=cookie)
    assert stream.status == 200 and board.streams == 1
    board.stop()
    assert stream.read() == b""  # the server closed it
    assert threading.active_count() < before
    with pytest.raises(OSError):
        request(board, token_path(board))


def test_a_taken_port_is_a_clear_error(system: System, board: Dashboard) -> None:
    with pytest.raises(DashboardError, match=f"port {board.port} on 127.0.0.1 is in use"):
        system.serve_dashboard(board.port)
    with pytest.raises(DashboardError, match="between 0 and 65535"):
        system.serve_dashboard(70000)


def test_stopping_the_system_stops_its_dashboards(project: Path) -> None:
    with System(project) as system:
        board = system.serve_dashboard()
        assert request(board, token_path(board)).status == 200
    assert not board.running
    with pytest.raises(OSError):
        request(board, token_path(board))


def invoke(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--project-dir", str(project), *args])
    return result.exit_code, result.output


def test_rnix_dashboard_asks_the_daemon(system: System, project: Path) -> None:
    path = socket_path(system.state_dir)
    with DaemonServer(path, Service(system, socket=path)):
        code, output = invoke(project, "dashboard")
        assert code == 0, output
        url = output.split("dashboard: ", 1)[1].split()[0]
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
        conn.request("GET", f"/?{parts.query}")
        assert conn.getresponse().status == 200
        code, again = invoke(project, "dashboard", "--json")
        data = json.loads(again)
        assert data["url"] == url and data["already_running"] is True
        code, output = invoke(project, "dashboard", "--port", "1")
        assert code == 1 and "already serves on port" in output
        code, output = invoke(project, "dashboard", "--stop")
        assert (code, output) == (0, "dashboard stopped\n")
        with pytest.raises(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
            conn.request("GET", f"/?{parts.query}")
            conn.getresponse()


def test_rnix_dashboard_without_a_daemon_says_how_to_start_one(project: Path) -> None:
    code, output = invoke(project, "dashboard")
    assert code == 1 and "rnix daemon start" in output


def test_a_stopped_system_answers_503_not_a_traceback(project: Path) -> None:
    from rnix_actors.dashboard import serve_dashboard

    system = System(project).start()
    board = serve_dashboard(system)  # not owned by the system: it outlives it
    try:
        assert request(board, token_path(board)).status == 200
        system.stop()
        response = request(board, token_path(board))
        assert response.status == 503
        assert b"not running" in response.read()
    finally:
        board.stop()
        system.stop()
