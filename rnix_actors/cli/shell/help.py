"""The shell's commands as data: usage and one-line summaries, aliases, argument checks."""

from __future__ import annotations

import attrs

from rnix_actors.kernel.process import Signal


class UsageError(Exception):
    """Bad arguments; the shell prints the command's usage."""


@attrs.frozen
class CommandHelp:
    usage: str
    summary: str


HELP: dict[str, CommandHelp] = {
    "spawn": CommandHelp(
        'spawn AGENT "intent" [--max-steps N] [| spawn AGENT "intent" ...]',
        "start an agent; with |, each stage's result becomes the next stage's input",
    ),
    "ps": CommandHelp(
        "ps [--all] [-q] [--wide]",
        "list live processes (--all: every process ever run; -q: PIDs only)",
    ),
    "inspect": CommandHelp("inspect PID [-v]", "everything about PID: devices, budget, context"),
    "logs": CommandHelp("logs PID [-n N] [-v]", "the recorded events of PID"),
    "top": CommandHelp("top", "full-screen live view of the process tree (q quits)"),
    "agents": CommandHelp("agents", "the agent templates: skills, devices, driver"),
    "tree": CommandHelp("tree", "supervision trees and the process tree"),
    "sup": CommandHelp(
        "sup PATH [view|children|count|spec CHILD|terminate CHILD|restart CHILD|delete CHILD"
        "|stop [--kill]]",
        "manage one supervisor by path (e.g. sup /review children)",
    ),
    "kill": CommandHelp("kill PID [--signal NAME]", "send a signal (default SIGTERM)"),
    "pause": CommandHelp("pause PID", "suspend PID and its running subtree (SIGPAUSE)"),
    "resume": CommandHelp(
        "resume PID [--retry]",
        "resume PID and its subtree (SIGRESUME); --retry runs again the call a guard refused",
    ),
    "watch": CommandHelp(
        "watch [PID] [-v]", "live events (of PID until it exits, or of everything); Ctrl-C stops"
    ),
    "immune": CommandHelp(
        "immune status | immune resume PID | immune forget NAME|--all | immune similarity [AGENT]",
        "immune monitoring: mode, alerts, threat memory",
    ),
    "mcp": CommandHelp(
        "mcp list | mcp call SERVER TOOL [JSON]",
        "MCP servers (/dev/mcp/<server>) and their tools; call one tool",
    ),
    "help": CommandHelp("help [COMMAND]", "list commands, or explain one"),
    "exit": CommandHelp("exit", "leave the shell (also Ctrl-D)"),
}
ALIASES = {"quit": "exit", "?": "help"}
SIGNALS = [s.value for s in Signal]


def pid_arg(text: str, usage: str) -> int:
    """``text`` as a PID, or a `UsageError` that shows ``usage``."""
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"PID must be a positive integer, got {text!r}\nusage: {usage}")
    return int(text)
