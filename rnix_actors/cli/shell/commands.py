"""The shell's commands, run against an `Api` (the daemon, or an embedded system).

`Shell.execute` runs one input line and never raises for a bad command: syntax errors, usage
errors, unknown commands (with the nearest suggestion) and failed requests are printed and the
shell goes on. Output goes through ``echo`` (the prompt_toolkit app prints it above the
prompt). In the background mode (interactive) a spawn or a pipeline runs on a job thread and
its output appears as it comes; otherwise it runs in the foreground (scripts, ``-c``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from rnix_actors.cli.mcp_cmd import server_lines
from rnix_actors.cli.render import (
    end_line,
    event_line,
    exit_line,
    result_block,
)
from rnix_actors.cli.shell import views
from rnix_actors.cli.shell.help import ALIASES, HELP, SIGNALS, CommandHelp, UsageError, pid_arg
from rnix_actors.cli.shell.parse import (
    ShellSyntaxError,
    nearest,
    pipe_intent,
    split_commands,
    split_pipeline,
    words,
)
from rnix_actors.ipc.local import Api, Stream
from rnix_actors.ipc.protocol import ApiError, event_from_wire, process_from_wire
from rnix_actors.kernel.process import ProcessInfo, ProcessState

Echo = Callable[[str], None]


class ExitShell(Exception):
    """``exit``: leave the shell."""


@attrs.frozen
class Stage:
    agent: str
    intent: str
    max_steps: int | None = None


class Shell:
    """Runs shell commands against ``api``; thread-safe `close` ends background jobs."""

    def __init__(
        self,
        api: Api,
        echo: Echo,
        *,
        background: bool = False,
        full_screen: Callable[[], None] | None = None,
    ) -> None:
        self.api = api
        self.echo = echo
        self.background = background
        self._full_screen = full_screen  # ``top``: only an interactive shell has a screen
        # The prompt's thread (commands, `close`) and the background jobs' threads (spawn,
        # resume) all change the jobs, streams, closed flag and suspended PIDs below.
        self._lock = threading.Lock()
        self._jobs: set[threading.Thread] = set()
        self._streams: set[Stream] = set()
        self._closed = False
        self._suspended: set[int] = set()  # suspended processes this shell was following
        self.mcp_tools: dict[str, list[str]] = {}  # server -> tool names, for completion
        self._handlers: dict[str, Callable[[list[str]], bool]] = {
            "ps": lambda a: views.ps_command(self.api, self.echo, a),
            "tree": lambda a: views.tree_command(self.api, self.echo, a),
            "sup": lambda a: views.sup_command(self.api, self.echo, a),
            "kill": self._kill,
            "pause": lambda a: self._signal(a, "pause", "SIGPAUSE"),
            "resume": self._resume,
            "watch": self._watch,
            "inspect": lambda a: views.inspect_command(self.api, self.echo, a),
            "logs": lambda a: views.logs_command(self.api, self.echo, a),
            "agents": lambda a: views.agents_command(self.api, self.echo, a),
            "top": self._top,
            "immune": self._immune,
            "mcp": self._mcp,
            "help": self._help,
            "exit": self._exit,
        }

    @property
    def commands(self) -> list[str]:
        return sorted([*HELP, *ALIASES])

    # -- entry points ----------------------------------------------------------------------------
    def execute(self, line: str) -> bool:
        """Run every command of ``line``; False if one failed (the rest are skipped).
        Raises `ExitShell` for ``exit``; KeyboardInterrupt only escapes from outside a
        command (a Ctrl-C during ``watch`` ends the watch)."""
        try:
            commands = split_commands(line)
        except ShellSyntaxError as exc:
            self.echo(f"error: {exc}")
            return False
        return all(self._run(command) for command in commands)  # stops at a failure

    def _run(self, command: str) -> bool:
        try:
            stages = split_pipeline(command)
            if len(stages) > 1 or words(stages[0])[:1] == ["spawn"]:
                return self._spawn([self._stage(stage) for stage in stages])
            argv = words(command)
            name = ALIASES.get(argv[0], argv[0])
            handler = self._handlers.get(name)
            if handler is None:
                hint = nearest(argv[0], self.commands)
                suggestion = f"; did you mean '{hint}'?" if hint else ""
                self.echo(f"unknown command '{argv[0]}'{suggestion} (try 'help')")
                return False
            return handler(argv[1:])
        except ExitShell:
            raise
        except ShellSyntaxError as exc:
            self.echo(f"error: {exc}")
        except UsageError as exc:
            self.echo(str(exc))
        except ApiError as exc:
            self.echo(f"error: {exc.message}")
        except Exception as exc:  # nothing a command does may end the shell
            self.echo(f"internal error: {type(exc).__name__}: {exc}")
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop following background jobs (their processes keep running in a daemon)."""
        with self._lock:
            self._closed = True
            streams, jobs = list(self._streams), list(self._jobs)
        for stream in streams:
            stream.cancel()
        for job in jobs:
            job.join(timeout)

    # -- spawn and pipelines -----------------------------------------------------------------
    def _stage(self, text: str) -> Stage:
        usage = f"usage: {HELP['spawn'].usage}"
        argv = words(text)
        if argv[:1] != ["spawn"]:
            raise UsageError(f"only spawn commands can be piped, got {text!r}\n{usage}")
        args, max_steps = argv[1:], None
        if "--max-steps" in args:
            at = args.index("--max-steps")
            value = args[at + 1] if at + 1 < len(args) else ""
            if not value.isdigit():
                raise UsageError(f"--max-steps needs a number\n{usage}")
            max_steps, args = int(value), args[:at] + args[at + 2 :]
        if len(args) < 2:
            raise UsageError(usage)
        return Stage(args[0], " ".join(args[1:]), max_steps)

    def _spawn(self, stages: list[Stage]) -> bool:
        return self._start_job(self._run_stages, stages)

    def _start_job(self, target: Callable[[Any], bool], arg: Any) -> bool:
        """Run ``target(arg)`` now (a foreground shell) or as a background job."""
        if not self.background:
            return target(arg)
        job = threading.Thread(target=target, args=(arg,), name="rnix-shell-job")
        job.daemon = True
        with self._lock:
            if self._closed:
                return False
            self._jobs.add(job)
        job.start()
        return True

    def _run_stages(self, stages: list[Stage]) -> bool:
        try:
            previous: str | None = None
            for index, stage in enumerate(stages, start=1):
                intent = stage.intent if previous is None else pipe_intent(previous, stage.intent)
                record = self._run_stage(stage, intent, index, len(stages))
                if record is None:
                    return False
                info = process_from_wire(record)
                if info.exit_code != 0:
                    if len(stages) > 1:
                        self.echo(f"[kernel] pipeline stopped at stage {index}/{len(stages)}")
                    return False
                previous = info.result
            return True
        except ApiError as exc:
            self.echo(f"error: {exc.message}")
            return False
        except Exception as exc:
            self.echo(f"internal error: {type(exc).__name__}: {exc}")
            return False
        finally:
            with self._lock:
                self._jobs.discard(threading.current_thread())

    def _run_stage(
        self, stage: Stage, intent: str, index: int, total: int
    ) -> dict[str, Any] | None:
        started = time.monotonic()
        params = {"agent": stage.agent, "intent": intent, "max_steps": stage.max_steps}
        stream = self.api.stream("run", origin="shell", **params)
        pid = int(stream.result["pid"])
        where = f"pipeline stage {index}/{total}: " if total > 1 else ""
        self.echo(f"[kernel] {where}spawned PID {pid} ({stage.agent})")
        # In the background only the outcome is printed; `watch PID` shows the steps.
        end = self._follow(stream, pid, quiet=self.background)
        record = end.get("process")
        if not isinstance(record, dict):
            if end.get("reason") == "cancelled":  # the shell is closing; a daemon keeps it
                self.echo(f"[kernel] PID {pid}: no longer followed by this shell")
            else:
                self.echo(end_line(end, pid))
            return None
        self._report_settled(pid, record, started)
        return record

    def _report_settled(self, pid: int, record: dict[str, Any], started: float) -> ProcessInfo:
        """Print how a followed process settled: its result, or how to resume it (and
        remember it, so that ``resume`` follows it again)."""
        info = process_from_wire(record)
        if info.state is ProcessState.SUSPENDED:
            with self._lock:
                self._suspended.add(pid)
            self.echo(f"{exit_line(info)} (resume {pid} to continue)")
        else:
            self.echo(result_block(info, time.monotonic() - started))
        return info

    def _follow(
        self, stream: Stream, pid: int | None, quiet: bool = False, verbose: bool = False
    ) -> dict[str, Any]:
        """Print a stream's events (not with ``quiet``); returns its ``end`` data."""
        with self._lock:
            self._streams.add(stream)
        try:
            for frame in stream:
                if frame["frame"] == "end":
                    data = frame["data"]
                    return data if isinstance(data, dict) else {}
                event = event_from_wire(frame["data"])
                if quiet or (event.pid == pid and event.syscall == "Start"):
                    continue  # "spawned PID n" was printed already
                line = event_line(event, verbose)
                if line:
                    self.echo(line)
            return {"reason": "disconnected"}
        finally:
            with self._lock:
                self._streams.discard(stream)

    # -- the other commands ------------------------------------------------------------------
    def _kill(self, args: list[str]) -> bool:
        usage = HELP["kill"].usage
        signal = "SIGTERM"
        for flag in ("--signal", "-s"):
            if flag in args:
                at = args.index(flag)
                if at + 1 >= len(args):
                    raise UsageError(f"{flag} needs a signal name ({', '.join(SIGNALS)})")
                signal, args = args[at + 1], args[:at] + args[at + 2 :]
        if len(args) != 1:
            raise UsageError(f"usage: {usage}")
        return self._send(pid_arg(args[0], usage), signal)

    def _signal(self, args: list[str], name: str, signal: str) -> bool:
        if len(args) != 1:
            raise UsageError(f"usage: {HELP[name].usage}")
        return self._send(pid_arg(args[0], HELP[name].usage), signal)

    def _resume(self, args: list[str]) -> bool:
        """``resume PID [--retry]``: ``--retry`` runs again the call a guard refused."""
        retry = "--retry" in args
        rest = [a for a in args if a != "--retry"]
        if len(rest) != 1:
            raise UsageError(f"usage: {HELP['resume'].usage}")
        return self._send(pid_arg(rest[0], HELP["resume"].usage), "SIGRESUME", retry)

    def _send(self, pid: int, signal: str, retry: bool = False) -> bool:
        if retry:
            result = self.api.call("resume", pid=pid, retry=True)
        else:
            result = self.api.call("kill", pid=pid, signal=signal)
        self.echo(f"[kernel] PID {pid}: signal sent ({result['signal']}): {result['outcome']}")
        with self._lock:
            followed = pid in self._suspended
            if signal == "SIGRESUME":
                self._suspended.discard(pid)
        if followed and signal == "SIGRESUME":
            self._start_job(self._follow_resumed, pid)
        return True

    def _follow_resumed(self, pid: int) -> bool:
        """Follow a process this shell started again after ``resume``, to its end."""
        try:
            started = time.monotonic()
            stream = self.api.stream("follow", pid=pid)
            end = self._follow(stream, pid, quiet=self.background)
            record = end.get("process")
            if not isinstance(record, dict):
                self.echo(end_line(end, pid))
                return False
            return self._report_settled(pid, record, started).exit_code == 0
        except ApiError as exc:
            self.echo(f"error: {exc.message}")
            return False
        finally:
            with self._lock:
                self._jobs.discard(threading.current_thread())

    def _watch(self, args: list[str]) -> bool:
        usage = HELP["watch"].usage
        verbose = "-v" in args
        rest = [a for a in args if a != "-v"]
        if len(rest) > 1:
            raise UsageError(f"usage: {usage}")
        pid = pid_arg(rest[0], usage) if rest else None
        stream = self.api.stream("watch", pid=pid)
        what = f"PID {pid}" if pid is not None else "every process"
        self.echo(f"[watch] {what} (Ctrl-C to stop)")
        try:
            end = self._follow(stream, pid, verbose=verbose)
        except KeyboardInterrupt:
            stream.close()
            self.echo(f"\n[watch] stopped watching {what}")  # after the terminal's ^C
            return True
        self.echo(end_line(end, pid))
        return True

    def _immune(self, args: list[str]) -> bool:
        usage = f"usage: {HELP['immune'].usage}"
        if args == ["status"]:
            self.echo(str(self.api.call("immune_status")["text"]))
        elif len(args) == 2 and args[0] == "resume":
            result = self.api.call("immune_resume", pid=pid_arg(args[1], usage))
            self.echo(f"PID {result['pid']}: {result['outcome']}")
        elif args == ["forget", "--all"]:
            self.echo(f"forgot {self.api.call('immune_forget', all=True)['forgotten']}")
        elif len(args) == 2 and args[0] == "forget":
            self.echo(f"forgot {self.api.call('immune_forget', name=args[1])['forgotten']}")
        elif args[:1] == ["similarity"] and len(args) <= 2:
            agent = args[1] if len(args) == 2 else None
            self.echo(str(self.api.call("similarity", agent=agent)["text"]))
        else:
            raise UsageError(usage)
        return True

    def _mcp(self, args: list[str]) -> bool:
        usage = f"usage: {HELP['mcp'].usage}"
        if args == ["list"]:
            servers = self.api.call("mcp_list", connect=True)["servers"]
            self.remember_mcp(servers)
            for entry in servers:
                self.echo("\n".join(server_lines(entry)))
            return True
        if len(args) not in (3, 4) or args[0] != "call":
            raise UsageError(usage)
        try:
            arguments = json.loads(args[3] if len(args) == 4 else "{}")
        except ValueError:
            raise UsageError(f"JSON must be a JSON object in quotes\n{usage}") from None
        if not isinstance(arguments, dict):
            raise UsageError(f"JSON must be a JSON object\n{usage}")
        result = self.api.call("mcp_call", server=args[1], tool=args[2], arguments=arguments)
        self.echo(result["text"] if result["ok"] else f"tool error: {result['error']}")
        return True

    def remember_mcp(self, servers: list[dict[str, Any]]) -> None:
        self.mcp_tools = {s["name"]: [t["name"] for t in s["tools"]] for s in servers}

    def _help(self, args: list[str]) -> bool:
        if not args:
            width = max(len(name) for name in HELP)
            for name, command in HELP.items():
                self.echo(f"  {name.ljust(width)}  {command.summary}")
            self.echo(
                "Commands are separated by ';'. Tab completes commands, agents, PIDs and MCP tools."
            )
            return True
        name = ALIASES.get(args[0], args[0])
        entry: CommandHelp | None = HELP.get(name)
        if entry is None:
            hint = nearest(args[0], self.commands)
            raise UsageError(
                f"no command '{args[0]}'" + (f"; did you mean '{hint}'?" if hint else "")
            )
        self.echo(f"usage: {entry.usage}\n  {entry.summary}")
        return True

    def _top(self, args: list[str]) -> bool:
        if args:
            raise UsageError(f"usage: {HELP['top'].usage}")
        if self._full_screen is None:
            self.echo(
                "top needs an interactive terminal (run `rnix top`, or `top` in `rnix shell`)"
            )
            return False
        self._full_screen()
        return True

    def _exit(self, args: list[str]) -> bool:
        raise ExitShell()
