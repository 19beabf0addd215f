"""The interactive shell (prompt_toolkit): prompt ``rnix> ``, completion, history, toolbar.

A `Monitor` thread follows every event of the system; on lifecycle events it refreshes the
toolbar's counts and live PIDs, and prints new immune alerts above the prompt. Output from
background jobs goes through prompt_toolkit's ``patch_stdout`` so it never corrupts the line
being typed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import Output

from rnix_actors.cli.shell.commands import Echo, ExitShell, Shell
from rnix_actors.cli.shell.help import HELP, SIGNALS
from rnix_actors.cli.shell.parse import current_segment, open_quote
from rnix_actors.ipc.local import Api, Stream
from rnix_actors.ipc.protocol import ApiError
from rnix_actors.privatefs import private_dir, private_touch

PROMPT = "rnix> "
HISTORY_NAME = "shell_history"
# ReasonStep too: a new process turns "running" just after its Start event.
_REFRESH_ON = frozenset(
    {"Start", "ReasonStep", "Exit", "Suspend", "Resume", "Signal", "Blocked", "Denied"}
)
_PID_COMMANDS = frozenset({"kill", "pause", "resume", "watch", "inspect", "logs"})


class Snapshot:
    """What the toolbar and the completer show; replaced whole by the monitor (thread-safe
    by assignment)."""

    def __init__(self, status: dict[str, Any] | None = None) -> None:
        status = status or {}
        procs = status.get("processes") or {}
        immune = status.get("immune") or {}
        self.running = int(procs.get("running", 0))
        self.suspended = int(procs.get("suspended", 0))
        self.pids: tuple[int, ...] = tuple(status.get("live_pids") or ())
        self.alerts = int(immune.get("alerts", 0)) if immune else 0
        self.mode = str(immune.get("mode", "off")) if immune else "off"


class Monitor:
    """Keeps a `Snapshot` fresh from the event stream and reports new immune alerts."""

    def __init__(self, api: Api, echo: Echo, on_change: Callable[[], None]) -> None:
        self.api = api
        self.echo = echo
        self.on_change = on_change
        self.snapshot = Snapshot()
        self._seen_alerts: set[int] = set()
        self._stream: Stream | None = None
        self._thread = threading.Thread(target=self._run, name="rnix-shell-monitor", daemon=True)

    def start(self) -> Monitor:
        self.refresh(announce=False)
        self._stream = self.api.stream("watch")
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._stream is not None
        with contextlib.suppress(Exception):
            for frame in self._stream:
                event = frame["data"] if frame["frame"] == "event" else {}
                if event.get("syscall") == "Suspend":
                    # The process reports its new state right after this event.
                    with contextlib.suppress(Exception):
                        self.api.call("wait", pid=event["pid"], timeout=5)
                if event.get("syscall") in _REFRESH_ON:
                    self.refresh()

    def refresh(self, announce: bool = True) -> None:
        """Re-read the counts (and alerts); never raises."""
        try:
            snapshot = Snapshot(self.api.call("status"))
        except (ApiError, OSError, Exception):
            return
        if snapshot.alerts or self._seen_alerts:
            self._alerts(announce)
        self.snapshot = snapshot
        self.on_change()

    def _alerts(self, announce: bool) -> None:
        try:
            alerts = self.api.call("immune_status")["status"]["alerts"]
        except Exception:
            return
        for alert in alerts:
            if alert["id"] not in self._seen_alerts:
                self._seen_alerts.add(alert["id"])
                if announce:
                    self.echo(f"[immune] alert: PID {alert['pid']}: {alert['message']}")

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
        if self._thread.is_alive():
            self._thread.join(5.0)


class ShellCompleter(Completer):
    """Commands first; then agent names after ``spawn``, live PIDs after the PID commands,
    signal names after ``--signal``, command names after ``help``, MCP servers and tools after
    ``mcp call``, and MCP device paths for any word that starts with ``/dev/mcp``."""

    def __init__(
        self,
        templates: Callable[[], Iterable[str]],
        pids: Callable[[], Iterable[int]],
        mcp: Callable[[], dict[str, list[str]]] = dict,
    ):
        self.templates = templates
        self.pids = pids
        self.mcp = mcp

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = current_segment(document.text_before_cursor)
        parts = text.split()
        if text.endswith(" ") or not parts:
            parts.append("")
        word = parts[-1]
        before = parts[:-1]
        if word.startswith("/dev/mcp"):
            servers = self.mcp()
            choices: Iterable[str] = [f"/dev/mcp/{s}" for s in servers]
            choices = [*choices, *(f"/dev/mcp/{s}/{t}" for s, ts in servers.items() for t in ts)]
        elif not before:
            choices = [*HELP, "quit"]
        elif before[-1] in ("--signal", "-s") and before[0] == "kill":
            choices = SIGNALS
        elif len(before) == 1 and before[0] == "spawn":
            choices = self.templates()
        elif len(before) == 1 and before[0] in _PID_COMMANDS:
            choices = [str(pid) for pid in self.pids()]
        elif len(before) == 1 and before[0] == "help":
            choices = list(HELP)
        elif len(before) == 1 and before[0] == "immune":
            choices = ["status", "resume", "forget"]
        elif before[:1] == ["mcp"]:
            choices = self._mcp_words(before)
        else:
            return
        for choice in sorted(set(choices)):
            if choice.startswith(word):
                yield Completion(choice, start_position=-len(word))

    def _mcp_words(self, before: list[str]) -> list[str]:
        if len(before) == 1:
            return ["list", "call"]
        if before[1] != "call" or len(before) > 3:
            return []
        servers = self.mcp()
        return list(servers) if len(before) == 2 else servers.get(before[2], [])


def make_history(state_dir: Path | None) -> History:
    """``<state>/shell_history`` (kept across sessions), or in memory if unwritable."""
    if state_dir is None:
        return InMemoryHistory()
    try:
        private_dir(state_dir)
        path = private_touch(state_dir / HISTORY_NAME)
        return FileHistory(str(path))
    except OSError:
        return InMemoryHistory()


class Repl:
    """The interactive loop. ``input``/``output`` default to the terminal; tests pass a pipe
    input and a dummy output. Returns when the user types ``exit`` or Ctrl-D."""

    def __init__(
        self,
        api: Api,
        echo: Echo,
        *,
        state_dir: Path | None,
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        self.api = api
        self.echo = echo
        self.shell = Shell(api, echo, background=True, full_screen=self._top)
        self._templates: list[str] = []
        self.session: PromptSession[str] = PromptSession(
            PROMPT,
            multiline=True,  # Enter accepts, except inside an open quote (see _keys)
            prompt_continuation="... ",
            key_bindings=_keys(),
            history=make_history(state_dir),
            completer=ShellCompleter(lambda: self._templates, self._pids, self._mcp_tools),
            bottom_toolbar=self.toolbar,
            complete_while_typing=False,
            input=input,
            output=output,
        )
        self.monitor = Monitor(api, echo, self._invalidate)

    def _mcp_tools(self) -> dict[str, list[str]]:
        return self.shell.mcp_tools

    def _pids(self) -> tuple[int, ...]:
        return self.monitor.snapshot.pids

    def _invalidate(self) -> None:
        app = self.session.app
        if app.is_running:
            app.invalidate()

    def _top(self) -> None:
        """``top`` from the shell: the full-screen view on the real terminal, then back."""
        import sys

        from prompt_toolkit.output.defaults import create_output

        from rnix_actors.cli.top import Top

        Top(self.api, output=create_output(stdout=sys.__stdout__)).run()

    def toolbar(self) -> str:
        snap = self.monitor.snapshot
        where = "daemon" if self.api.kind == "daemon" else "embedded"
        return (
            f" {where} | running: {snap.running} | suspended: {snap.suspended} | "
            f"alerts: {snap.alerts} | immune: {snap.mode} "
        )

    def run(self) -> None:
        with contextlib.suppress(ApiError):
            self._templates = [t["name"] for t in self.api.call("templates")["templates"]]
        with contextlib.suppress(ApiError):  # tools of servers that ran; `mcp list` adds more
            self.shell.remember_mcp(self.api.call("mcp_list")["servers"])
        self.monitor.start()
        try:
            while True:
                try:
                    line = self.session.prompt()
                except KeyboardInterrupt:
                    continue  # Ctrl-C clears the line, as in a shell
                except EOFError:
                    return
                try:
                    self.shell.execute(line)
                except ExitShell:
                    return
                except KeyboardInterrupt:
                    self.echo("interrupted")
        finally:
            self.monitor.stop()
            self.shell.close()


def _keys() -> KeyBindings:
    """Enter runs the line, unless a quote is still open: then it starts a new line of the
    same command, as a POSIX shell does."""
    keys = KeyBindings()

    @keys.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if open_quote(buffer.text):
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    return keys
