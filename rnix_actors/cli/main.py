"""The ``rnix`` command line (click).

Commands reach the project's daemon when one runs (``rnix daemon start``); otherwise ``run``
embeds a system for the one agent, and read commands (``ps --all``, ``tree``, ``logs``) read
the store and event logs, saying where it matters that no daemon runs. Every read command
takes ``--json``. Exit codes: 0 ok, 1 failure (including an agent that did not complete),
2 usage error.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from rnix_actors import __version__
from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.cli.render import (
    event_line,
    process_table,
    process_tree,
    result_block,
    supervision_tree,
)
from rnix_actors.cli.text import terminal_width, wrap
from rnix_actors.errors import RnixError
from rnix_actors.ipc.local import Api
from rnix_actors.ipc.protocol import ApiError, event_from_wire, process_from_wire
from rnix_actors.ipc.service import api_error
from rnix_actors.supervision.views import SupervisorView

COMMAND_MODULES: tuple[tuple[str, str, str | None], ...] = (
    # (module, click object, parent group or None): one line per command module. A module
    # that is not there yet is skipped; one that fails to import becomes a command that says
    # why, so the rest of the CLI keeps working.
    ("rnix_actors.cli.proc_cmd", "kill", None),
    ("rnix_actors.cli.proc_cmd", "pause", None),
    ("rnix_actors.cli.proc_cmd", "resume", None),
    ("rnix_actors.cli.proc_cmd", "watch", None),
    ("rnix_actors.cli.proc_cmd", "logs", None),
    ("rnix_actors.cli.proc_cmd", "inspect", None),
    ("rnix_actors.cli.proc_cmd", "top", None),
    ("rnix_actors.cli.nodes_cmd", "nodes", None),
    ("rnix_actors.cli.daemon_cmd", "daemon", None),
    ("rnix_actors.cli.dashboard_cmd", "dashboard", None),
    ("rnix_actors.cli.shell.command", "shell", None),
    ("rnix_actors.cli.immune_cmd", "immune", None),
    ("rnix_actors.cli.compose_cmd", "compose", None),
    ("rnix_actors.cli.topology_cmd", "topology", None),
    ("rnix_actors.cli.topology_cmd", "similarity", "immune"),
    ("rnix_actors.cli.mcp_cmd", "mcp", None),
    ("rnix_actors.cli.topology_cmd", "migrations", None),
    ("rnix_actors.cli.admin_cmd", "agents", None),
    ("rnix_actors.cli.admin_cmd", "prune", None),
    ("rnix_actors.cli.durable_cmd", "checkpoints", None),
    ("rnix_actors.cli.admin_cmd", "completion", None),
    ("rnix_actors.cli.supervise_cmd", "supervise", None),
    ("rnix_actors.cli.supervise_cmd", "sup", None),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="rnix", message="%(prog)s %(version)s")
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Project directory (agents in .rnix/agents, config in .rnix/config.yaml). "
    "Default: the current directory.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="RNIX_STATE_DIR",
    help="Where the process store, event logs and daemon socket live. Default: <project>/.rnix.",
)
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, state_dir: Path | None) -> None:
    """rnix: LLM agents as supervised, immune-monitored processes."""
    ctx.obj = Context(project_dir, state_dir)


def follow_run(
    api: Api,
    params: dict[str, Any],
    as_json: bool,
    on_pid: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Spawn through ``api`` and print the process's events until it settles; returns the
    final process record. Raises `ApiError` (also when the stream ends without one)."""
    stream = api.stream("run", **params)
    pid = int(stream.result["pid"])
    if on_pid is not None:
        on_pid(pid)
    end: dict[str, Any] = {}
    for frame in stream:
        if frame["frame"] == "end":
            end = frame["data"] or {}
        elif not as_json:
            line = event_line(event_from_wire(frame["data"]))
            if line:
                out(line)
    process = end.get("process")
    if not isinstance(process, dict):
        raise ApiError("DISCONNECTED", f"lost PID {pid} before it ended ({end.get('reason')})")
    return process


@cli.command()
@click.argument("agent")
@click.argument("intent")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--max-steps", type=click.IntRange(min=0), help="Override the step limit.")
@click.option(
    "--workdir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Sandbox root for /dev/fs and /dev/shell (an existing directory). Default: the "
    "project dir.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds to wait for the agent (it is sent SIGTERM after that).",
)
@click.option("--provider", help="LLM provider (providers.yaml) instead of the template's.")
@click.option("--model", help="Model (or replay script) instead of the template's.")
@click.pass_obj
def run(
    obj: Context,
    agent: str,
    intent: str,
    as_json: bool,
    max_steps: int | None,
    workdir: Path | None,
    timeout: float,
    provider: str | None,
    model: str | None,
) -> None:
    """Run one AGENT on INTENT and print its result (in the daemon if one runs)."""
    if not intent.strip():
        raise click.BadParameter("the intent must not be empty", param_hint="INTENT")
    params: dict[str, Any] = {"agent": agent, "intent": intent, "max_steps": max_steps}
    params.update(provider=provider, model=model, origin="cli")
    if workdir is not None:
        params["workdir"] = str(workdir.resolve())
    started = time.monotonic()
    try:
        client = obj.daemon()
        if client is not None:
            with client:
                record = _run_with_timeout(client, params, as_json, timeout)
        else:
            with obj.embedded() as api:
                record = _run_with_timeout(api, params, as_json, timeout)
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    except RnixError as exc:
        error = api_error(exc)
        fail(error.message, as_json, error.code)
    info = process_from_wire(record)
    if as_json:
        keys = ("pid", "exit_code", "exit_reason", "result", "tokens_used", "steps")
        emit_json({key: record[key] for key in keys})
    else:
        out(result_block(info, time.monotonic() - started))
    sys.exit(0 if info.exit_code == 0 else 1)


def _run_with_timeout(
    api: Api, params: dict[str, Any], as_json: bool, timeout: float
) -> dict[str, Any]:
    """`follow_run` on a worker thread, so that this thread can react to the timeout and to
    Ctrl-C (SIGTERM to the process, which is then followed to its end; a second Ctrl-C
    leaves it running and exits 130)."""
    result: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    pids: list[int] = []
    done = threading.Event()

    def target() -> None:
        try:
            result.append(follow_run(api, params, as_json, pids.append))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def terminate(why: str, origin: str = "user") -> None:
        if pids:
            api.call("kill", pid=pids[0], signal="SIGTERM", origin=origin)
            out(f"[kernel] PID {pids[0]}: SIGTERM sent ({why})", err=True)

    threading.Thread(target=target, name="rnix-run", daemon=True).start()
    try:
        if not done.wait(timeout):
            terminate(f"timed out after {timeout:g}s", "timeout")
        done.wait()
    except KeyboardInterrupt:
        terminate("Ctrl-C")
        try:
            done.wait()
        except KeyboardInterrupt:
            out("interrupted again: not waiting for the process any more", err=True)
            sys.exit(130)
    if errors:
        raise errors[0]
    return result[0]


@cli.command()
@click.option("--all", "-a", "show_all", is_flag=True, help="Include finished processes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print only PIDs, one a line.")
@click.option(
    "--wide", "--no-trunc", "wide", is_flag=True, help="Never shorten a cell (wrap them all)."
)
@click.pass_obj
def ps(obj: Context, show_all: bool, as_json: bool, quiet: bool, wide: bool) -> None:
    """List processes: the daemon's, or without one the history in the state dir."""
    client = obj.daemon()
    try:
        if client is not None:
            with client:
                wire = client.call("ps", all=show_all)["processes"]
            procs = [process_from_wire(p) for p in wire]
        else:
            procs = obj.system().ps(all=True)
            if not show_all:
                procs = [p for p in procs if not p.finished]
    except (RnixError, ApiError) as exc:
        fail(str(exc), as_json)
    if as_json:
        emit_json({"daemon": client is not None, "processes": [p.to_dict() for p in procs]})
    elif quiet:
        for p in procs:
            out(str(p.pid))
    elif procs:
        out(process_table(procs, wide=wide))
    elif show_all:
        out("No processes.")
    elif client is None:
        out("No active processes. (no daemon is running; use --all for history)")
    else:
        out("No active processes.")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def tree(obj: Context, as_json: bool) -> None:
    """Show supervision trees (from the daemon) and the process tree (parents and the
    children they spawned); without a daemon, the recorded history only."""
    client = obj.daemon()
    views: list[SupervisorView] = []
    try:
        if client is not None:
            with client:
                data = client.call("tree")
            procs = [process_from_wire(p) for p in data["processes"]]
            supervisors: list[dict[str, Any]] = data["supervisors"]
            live = [process_from_wire(p) for p in data["live"]]
        else:
            procs, supervisors, live = obj.system().ps(all=True), [], []
    except (RnixError, ApiError) as exc:
        fail(str(exc), as_json)
    if as_json:
        emit_json(
            {
                "daemon": client is not None,
                "supervisors": supervisors,
                "processes": [p.to_dict() for p in procs],
            }
        )
        return
    if supervisors:
        views = [SupervisorView.from_dict(s) for s in supervisors]
        out(supervision_tree(views, [p for p in live if not _supervised(p.pid, supervisors)]))
        out()
    out(process_tree(procs))
    if client is None:
        out("(no daemon is running: history only)")


def _supervised(pid: int, supervisors: list[dict[str, Any]]) -> bool:
    for sup in supervisors:
        for child in sup.get("children", ()):
            if child.get("pid") == pid:
                return True
            if child.get("supervisor") and _supervised(pid, [child["supervisor"]]):
                return True
    return False


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def version(as_json: bool) -> None:
    """Print the version."""
    if as_json:
        emit_json({"name": "rnix-actors", "version": __version__})
    else:
        out(f"rnix-actors {__version__}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def demo(as_json: bool) -> None:
    """Run the offline demo on the embedded defaults (no network, no API key)."""
    from rnix_actors.cli.demo import run_demo

    summary: dict[str, Any] = run_demo(echo=None if as_json else _wrapped_out)
    if as_json:
        emit_json(summary)
    sys.exit(0 if summary["ok"] else 1)


def _wrapped_out(text: str) -> None:
    """Print ``text`` with every line longer than the terminal wrapped at word boundaries,
    its continuation indented under the line's own indentation."""
    width = terminal_width()
    for line in text.splitlines() or [""]:
        if len(line) <= width:
            out(line)
        else:
            indent = line[: len(line) - len(line.lstrip())]
            out(wrap(line.lstrip(), width, indent=indent, hang=indent + "    "))


def _broken(name: str, module: str, exc: BaseException) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def broken(args: tuple[str, ...]) -> None:
        fail(f"`rnix {name}` is unavailable: {module} failed to import ({exc})")

    broken.help = f"(unavailable: {module} failed to import)"
    return broken


def register_commands(group: click.Group) -> None:
    """Add every command of `COMMAND_MODULES` that exists."""
    for module_name, attribute, parent in COMMAND_MODULES:
        try:
            command = getattr(importlib.import_module(module_name), attribute)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                command = _broken(attribute, module_name, exc)
            else:
                continue  # not written yet
        except Exception as exc:
            command = _broken(attribute, module_name, exc)
        target = group if parent is None else group.commands.get(parent)
        if isinstance(target, click.Group):
            target.add_command(command)


register_commands(cli)


def main() -> None:
    cli(prog_name="rnix")
