"""``rnix supervise`` (start supervision trees, in the daemon if one runs) and ``rnix sup``
(OTP's management calls on one supervisor, by path)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.cli.render import supervision_tree
from rnix_actors.errors import RnixError
from rnix_actors.ipc.client import Client
from rnix_actors.ipc.protocol import ApiError
from rnix_actors.supervision.views import ChildView, SupervisorView

DEFAULT_FILE = ".rnix/supervisors.yaml"


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--wait", "wait", is_flag=True, help="With a daemon: follow the trees to the end.")
@click.option("--json", "as_json", is_flag=True, help="Print the tree(s) as JSON.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True)
@click.pass_obj
def supervise(obj: Context, file: Path | None, wait: bool, as_json: bool, timeout: float) -> None:
    """Start the supervision trees of FILE (default .rnix/supervisors.yaml).

    With a daemon running, the trees start inside it and the command returns (``rnix tree``
    shows them, ``rnix sup`` manages them); without one, they run here until they finish."""
    client = obj.daemon()
    if client is not None:
        _in_daemon(client, obj, file, wait, as_json, timeout)
        return
    try:
        system = obj.system()
        specs = system.load_supervisors(file)
    except RnixError as exc:
        fail(str(exc), as_json)
    if not specs:
        fail(f"no supervisors declared in {file or DEFAULT_FILE}", as_json)
    with system:
        handles = [system.supervise(spec) for spec in specs]
        deadline = time.monotonic() + timeout
        for handle in handles:
            try:
                handle.wait(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        views = system.tree()
        live = system.ps()
    if as_json:
        emit_json({"supervisors": [v.to_dict() for v in views]})
    else:
        out(supervision_tree(views, live))
    sys.exit(0 if all(h.status == "completed" for h in handles) else 1)


def _in_daemon(
    client: Client, obj: Context, file: Path | None, wait: bool, as_json: bool, timeout: float
) -> None:
    path = file or obj.project / DEFAULT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: cannot read the file: {exc.strerror or exc}", as_json)
    try:
        with client:
            paths: list[str] = client.call("supervise", text=text, source=str(path))["supervisors"]
            views = _follow(client, paths, timeout) if wait else _views(client, paths)
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    if as_json:
        emit_json({"daemon": True, "supervisors": [v.to_dict() for v in views]})
    else:
        if not wait:
            out(f"started in the daemon: {', '.join(paths)} (rnix tree shows them)")
        out(supervision_tree(views, []))
    if wait:
        sys.exit(0 if all(v.status == "completed" for v in views) else 1)


def _views(client: Client, paths: list[str]) -> list[SupervisorView]:
    return [
        SupervisorView.from_dict(client.call("supervisor", path=p, op="view")["supervisor"])
        for p in paths
    ]


def _follow(client: Client, paths: list[str], timeout: float) -> list[SupervisorView]:
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    views = _views(client, paths)
    while any(v.status == "running" for v in views) and time.monotonic() < deadline:
        tick.wait(0.2)
        views = _views(client, paths)
    return views


OPS_WITH_CHILD = ("spec", "terminate", "restart", "delete")


@click.command()
@click.argument("path")
@click.argument(
    "op",
    required=False,
    default="view",
    type=click.Choice(["view", "children", "count", *OPS_WITH_CHILD, "stop"]),
)
@click.argument("child", required=False)
@click.option("--kill", is_flag=True, help="stop: SIGKILL at once instead of SIGTERM.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def sup(obj: Context, path: str, op: str, child: str | None, kill: bool, as_json: bool) -> None:
    """Manage the supervisor at PATH in the daemon (e.g. /review or /review/team).

    OP: view (default), children, count, spec CHILD, terminate CHILD, restart CHILD,
    delete CHILD, stop [--kill]."""
    if op in OPS_WITH_CHILD and not child:
        fail(f"sup {op} needs a CHILD name: rnix sup {path} {op} CHILD", as_json)
    client = obj.require_daemon(as_json, f"cannot manage supervisor {path}")
    params: dict[str, Any] = {"path": path, "op": op, "kill": kill}
    if child:
        params["child"] = child
    try:
        with client:
            result = client.call("supervisor", **params)
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    if as_json:
        emit_json({"ok": True, **result})
        return
    out(render_result(op, result))


def render_result(op: str, result: Mapping[str, Any]) -> str:
    """One management answer as text (shared with the shell's ``sup``)."""
    if op in ("view", "stop"):
        return SupervisorView.from_dict(result["supervisor"]).render()
    if op == "children":
        views = [
            ChildView(**{**c, "old_pids": tuple(c["old_pids"]), "supervisor": None})
            for c in result["children"]
        ]
        return (
            "\n".join(
                f"{c.name}  {c.kind}  {c.status}  "
                + (f"PID {c.pid} {c.state}" if c.pid is not None else "no process")
                + f"  restarts {c.restarts}"
                for c in views
            )
            or "no children"
        )
    if op == "count":
        counts = result["counts"]
        return "  ".join(
            f"{key} {counts[key]}" for key in ("specs", "active", "supervisors", "workers")
        )
    if op == "spec":
        return "\n".join(f"{key}: {value}" for key, value in result["spec"].items())
    if op == "terminate":
        was = "was running" if result["was_running"] else "was not running"
        return f"terminated {result['child']} ({was}); its spec stays"
    if op == "restart":
        pid = result["pid"]
        return f"restarted {result['child']}" + (f" as PID {pid}" if pid is not None else "")
    return f"deleted {result['child']}"
