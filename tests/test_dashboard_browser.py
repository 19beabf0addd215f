"""The dashboard in a real browser: headless Chromium driven over the DevTools protocol.

The scene (`dashboard_scene`) has a process the immune system suspended in enforce mode, a
supervision tree that restarted a child, a parent with a live child and collaboration edges
with a reinforced path. Each page is opened, its rendered DOM asserted on and a screenshot
saved in the test's tmp dir (and in ``$RNIX_DASHBOARD_SHOTS`` when set, for the docs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp import Browser, Page, missing
from dashboard_scene import Scene
from test_cli_daemon import daemon_project, rnix

from rnix_actors import ProcessState, System
from rnix_actors.dashboard import Dashboard

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))
__all__ = ["daemon_project"]  # a fixture, used by name


@pytest.fixture
def scene(system: System) -> Iterator[Scene]:
    built = Scene(system).build()
    yield built
    built.release.set()


@pytest.fixture
def board(system: System, scene: Scene) -> Iterator[Dashboard]:
    dashboard = system.serve_dashboard()
    yield dashboard
    dashboard.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    browser = Browser()
    tab = browser.page()
    yield tab
    tab.close()
    browser.close()


def shoot(page: Page, tmp_path: Path, name: str) -> None:
    shot = page.screenshot(tmp_path / f"{name}.png")
    assert shot.read_bytes().startswith(b"\x89PNG")
    target = os.environ.get("RNIX_DASHBOARD_SHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / f"{name}.png").write_bytes(shot.read_bytes())


ROW_PIDS = "[...document.querySelectorAll('#procs tr[data-pid]')].map(r => +r.dataset.pid)"


def url(board: Dashboard, path: str) -> str:
    return f"http://127.0.0.1:{board.port}{path}?token={board.token}"


def test_every_page_renders_what_the_api_says(
    system: System, scene: Scene, board: Dashboard, page: Page, tmp_path: Path
) -> None:
    page.goto(url(board, "/"))
    assert page.js("location.search") == ""  # the token left the address bar
    page.wait_for("document.getElementById('live').className === 'live-on'")
    live = {p.pid for p in system.ps()}
    rows = page.js(ROW_PIDS)
    assert set(rows) == live and scene.suspended_pid in live
    suspended = f"#p-{scene.suspended_pid}"
    assert page.js(f"document.querySelector('{suspended}').dataset.state") == "suspended"
    assert "unusual" in page.js(f"document.querySelector('{suspended} .alert').textContent")
    child = scene.wait_child()
    order = page.js(
        "[...document.querySelectorAll('#procs tr[data-pid]')].map(r => +r.dataset.pid)"
    )
    assert order.index(child.pid) == order.index(scene.lead_pid) + 1  # drawn under its parent
    lead_row = page.js(f"document.querySelector('#p-{scene.lead_pid}').textContent")
    assert "2 procs" in lead_row  # the rolled-up subtree
    shoot(page, tmp_path, "processes")

    page.goto(url(board, "/supervision"))
    nodes = page.js(
        "[...document.querySelectorAll('svg.sup-tree g.node')].map(g => g.dataset.path)"
    )
    assert nodes == ["/svc", "/svc/flaky", "/svc/steady"]
    flaky = page.js("document.querySelector('g.node[data-path=\"/svc/flaky\"]').textContent")
    assert "restarts 1" in flaky and "llm error" in flaky
    history = page.js("document.getElementById('sup-history').textContent")
    assert "Restart" in history and "flaky" in history
    shoot(page, tmp_path, "supervision")

    page.goto(url(board, "/topology"))
    edges = page.js(
        "[...document.querySelectorAll('#topology-graph g.edge')].map(g => [g.dataset.source,"
        " g.dataset.target, g.dataset.kind, +g.dataset.count, g.classList.contains('reinforced')])"
    )
    assert ["lead", "helper", "spawn", 3, False] in edges
    assert ["lead", "sleeper", "spawn", 1, False] in edges
    assert ["lead", "reviewer", "pipe", 5, True] in edges
    assert ["reviewer", "writer", "pipe", 5, True] in edges
    assert "lead → reviewer → writer" in page.js("document.getElementById('paths').textContent")
    shoot(page, tmp_path, "topology")

    page.goto(url(board, "/immune"))
    assert page.js("document.getElementById('immune-summary').textContent").startswith("enforce")
    alert_pids = page.js("[...document.querySelectorAll('tr.alert-row')].map(r => +r.dataset.pid)")
    assert alert_pids and set(alert_pids) == {scene.suspended_pid}
    metrics = page.js(
        "[...document.querySelectorAll('section.profile[data-template=worker] g.metric')]"
        ".map(g => g.dataset.metric)"
    )
    assert {"Exec /dev/shell", "/dev/shell", "tokens", "ms"} <= set(metrics)
    page.goto(url(board, f"/immune?run={scene.suspended_pid}"))
    outside = page.js(
        "document.querySelectorAll('section.profile[data-template=worker] "
        'g.metric[data-metric="Exec /dev/shell"] circle.run-out\').length'
    )
    assert outside >= 1  # the burst stands out against the learned range
    shoot(page, tmp_path, "immune")

    page.goto(url(board, f"/process/{scene.suspended_pid}"))
    marks = page.js(
        "[...document.querySelectorAll('svg.timeline rect.mark')].map(r => r.dataset.syscall)"
    )
    assert {"Start", "ReasonStep", "Exec", "Blocked", "Suspend"} <= set(marks)
    context = page.js("document.getElementById('context').textContent")
    assert "attack" in context and "Exec /dev/shell" in context
    assert "/dev/shell" in page.js("document.getElementById('devices').textContent")
    shoot(page, tmp_path, "process")


def test_a_live_update_arrives_without_a_reload(
    system: System, scene: Scene, board: Dashboard, page: Page
) -> None:
    page.goto(url(board, "/"))
    page.wait_for("document.getElementById('live').className === 'live-on'")
    page.js("window.sameDocument = 'yes'")
    pid = scene.sleeper_pid
    assert page.js(f"document.querySelector('#p-{pid}').dataset.state") == "running"
    system.pause(pid)
    assert system.wait(pid, timeout=10).state is ProcessState.SUSPENDED
    page.wait_for(f"document.querySelector('#p-{pid}').dataset.state === 'suspended'")
    assert page.js("window.sameDocument") == "yes"
    assert int(page.js("document.body.dataset.updates")) >= 1


def test_the_supervision_tree_updates_as_it_restarts(
    system: System, scene: Scene, board: Dashboard, page: Page
) -> None:
    page.goto(url(board, "/supervision"))
    page.wait_for("document.getElementById('live').className === 'live-on'")
    node = "document.querySelector('g.node[data-path=\"/svc/flaky\"]').textContent"
    assert "restarts 1" in page.js(node)
    scene.crash_again.set()
    page.wait_for(f"{node}.includes('restarts 2')")
    page.wait_for("document.getElementById('sup-history').textContent.includes('restart #2')")
    assert "flaky crashed again" in page.js(node)
    tree = scene.tree
    assert tree is not None and tree.view().children[0].restarts == 2


def test_the_pause_button_pauses_after_confirmation(
    system: System, scene: Scene, board: Dashboard, page: Page
) -> None:
    pid = scene.sleeper_pid
    page.goto(url(board, f"/process/{pid}"))
    page.js(f"document.querySelector('button[data-action=pause][data-pid=\"{pid}\"]').click()")
    assert page.dialogs == [f"Pause PID {pid} (sleeper) and its running subtree?"]
    info = system.wait(pid, timeout=10)
    assert info.state is ProcessState.SUSPENDED and info.exit_reason == "paused by user"
    page.wait_for("document.getElementById('flash').textContent.startsWith('pausing')")
    page.wait_for(f"document.querySelector('button[data-action=resume][data-pid=\"{pid}\"]')")


def test_a_page_without_the_token_is_refused_in_the_browser(board: Dashboard, page: Page) -> None:
    page.goto(f"http://127.0.0.1:{board.port}/")
    body = page.js("document.body.textContent")
    assert "forbidden" in body and "rnix dashboard" in body
    page.goto(f"http://127.0.0.1:{board.port}/?token=wrong")
    assert "forbidden" in page.js("document.body.textContent")
    status = page.js(
        "fetch('/api/action', {method: 'POST', body: JSON.stringify({action: 'kill', pid: 1})})"
        ".then(r => r.status)"
    )
    assert json.loads(str(status)) == 403


def test_the_real_daemon_serves_the_dashboard_to_a_browser(
    daemon_project: Path, page: Page, tmp_path: Path
) -> None:
    project = daemon_project
    assert rnix(project, "daemon", "start").returncode == 0
    ran = rnix(project, "run", "code-analyst", "review the parser", "--json")
    assert ran.returncode == 0, ran.stderr
    pid = json.loads(ran.stdout)["pid"]
    served = rnix(project, "dashboard", "--json")
    assert served.returncode == 0, served.stderr
    url = json.loads(served.stdout)["url"]
    assert url.startswith("http://127.0.0.1:")
    page.goto(url.replace("/?", f"/process/{pid}?"))
    assert page.js("document.querySelector('h1').textContent") == f"PID {pid} · code-analyst"
    marks = page.js("[...document.querySelectorAll('svg.timeline rect.mark')].length")
    assert marks > 3
    assert "review the parser" in page.js("document.getElementById('context').textContent")
    page.goto(url.split("?")[0])  # the cookie from the first visit is enough now
    assert page.js("document.getElementById('immune-summary') === null")
    assert "No live processes." in page.js("document.getElementById('procs').textContent")
    assert rnix(project, "dashboard", "--stop").stdout == "dashboard stopped\n"
