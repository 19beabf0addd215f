"""The shell's read-only commands: ``ps``, ``inspect``, ``logs``, ``agents``, ``tree``.

Each is a plain function of the API, the echo callback and the command's words; it returns
True on success and raises `UsageError` (or the API's `ApiError`) otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from rnix_actors.cli.render import event_line, inspect_text, process_table, process_tree
from rnix_actors.cli.shell.help import HELP, UsageError, pid_arg
from rnix_actors.cli.supervise_cmd import OPS_WITH_CHILD, render_result
from rnix_actors.cli.text import wrap
from rnix_actors.ipc.local import Api
from rnix_actors.ipc.protocol import event_from_wire, process_from_wire
from rnix_actors.supervision.views import SupervisorView

Echo = Callable[[str], None]


def ps_command(api: Api, echo: Echo, args: list[str]) -> bool:
    flags = set(args)
    if not flags <= {"--all", "-a", "-q", "--quiet", "--wide", "--no-trunc"}:
        raise UsageError(f"usage: {HELP['ps'].usage}")
    wire = api.call("ps", all=bool(flags & {"--all", "-a"}))["processes"]
    procs = [process_from_wire(p) for p in wire]
    if flags & {"-q", "--quiet"}:
        echo("\n".join(str(p.pid) for p in procs))
    else:
        wide = bool(flags & {"--wide", "--no-trunc"})
        echo(process_table(procs, wide=wide) if procs else "No active processes.")
    return True


def inspect_command(api: Api, echo: Echo, args: list[str]) -> bool:
    usage = HELP["inspect"].usage
    verbose = "-v" in args
    rest = [a for a in args if a != "-v"]
    if len(rest) != 1:
        raise UsageError(f"usage: {usage}")
    detail = api.call("inspect", pid=pid_arg(rest[0], usage))
    echo(inspect_text(detail, verbose))
    return True


def logs_command(api: Api, echo: Echo, args: list[str]) -> bool:
    usage = HELP["logs"].usage
    verbose, tail, rest = False, None, []
    items = iter(args)
    for arg in items:
        if arg == "-v":
            verbose = True
        elif arg in ("-n", "--tail"):
            value = next(items, "")
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"-n needs a positive number\nusage: {usage}")
            tail = int(value)
        else:
            rest.append(arg)
    if len(rest) != 1:
        raise UsageError(f"usage: {usage}")
    data = api.call("events", pid=pid_arg(rest[0], usage), tail=tail)
    for wire in data["events"]:
        line = event_line(event_from_wire(wire), verbose)
        if line:
            echo(line)
    return True


def agents_command(api: Api, echo: Echo, args: list[str]) -> bool:
    if args:
        raise UsageError(f"usage: {HELP['agents'].usage}")
    for t in api.call("templates")["templates"]:
        skills = ", ".join(t["skills"]) or "no skills"
        devices = ", ".join(t["devices"]) or "no devices"
        echo(wrap(f"{t['name']} ({t['driver']}): {skills}; {devices}", hang="    "))
    return True


def tree_command(api: Api, echo: Echo, args: list[str]) -> bool:
    if args:
        raise UsageError(f"usage: {HELP['tree'].usage}")
    data = api.call("tree")
    for sup in data["supervisors"]:
        echo(SupervisorView.from_dict(sup).render())
    echo(process_tree([process_from_wire(p) for p in data["processes"]]))
    return True


SUP_OPS = ("view", "children", "count", "spec", "terminate", "restart", "delete", "stop")


def sup_command(api: Api, echo: Echo, args: list[str]) -> bool:
    usage = f"usage: {HELP['sup'].usage}"
    kill = "--kill" in args
    rest = [a for a in args if a != "--kill"]
    if not rest or len(rest) > 3:
        raise UsageError(usage)
    path, op = rest[0], rest[1] if len(rest) > 1 else "view"
    if op not in SUP_OPS or (op in OPS_WITH_CHILD) != (len(rest) == 3):
        raise UsageError(usage)
    params: dict[str, object] = {"path": path, "op": op, "kill": kill}
    if len(rest) == 3:
        params["child"] = rest[2]
    echo(render_result(op, api.call("supervisor", **params)))
    return True
