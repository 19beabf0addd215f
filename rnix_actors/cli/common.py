"""What every ``rnix`` command shares: the project/state dirs, reaching the daemon or an
embedded system, JSON output, failure exits and colour.

Exit codes: 0 ok, 1 failure, 2 usage (click's own). Colour goes through click, which strips it
when the output is not a terminal; ``NO_COLOR`` turns it off everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from rnix_actors.ipc.client import Client, UntrustedDaemon
from rnix_actors.ipc.control import find_daemon
from rnix_actors.ipc.local import LocalApi
from rnix_actors.ipc.protocol import socket_path
from rnix_actors.ipc.service import Service, attach_immune_if_available
from rnix_actors.redact import redact
from rnix_actors.system import System, resolve_state_dir

NO_DAEMON = "no rnix daemon is running for {state} (start one with `rnix daemon start`)"


class Context:
    """The root command's options, resolved lazily (an invalid config only fails the
    commands that load it)."""

    def __init__(self, project_dir: Path | None, state_dir: Path | None) -> None:
        self.project_dir = project_dir
        self.state_dir = state_dir

    @property
    def project(self) -> Path:
        return (self.project_dir or Path.cwd()).resolve()

    @property
    def state(self) -> Path:
        return resolve_state_dir(self.project, self.state_dir)

    @property
    def socket(self) -> Path:
        return socket_path(self.state)

    def system(self) -> System:
        """A new, not started system for the project; raises `RnixError` on bad config."""
        return System(self.project, state_dir=self.state)

    def daemon(self) -> Client | None:
        """A client of the project's daemon, or None when none answers; fails (exit 1) when
        the socket is served by another user's process."""
        try:
            return find_daemon(self.state)
        except UntrustedDaemon as exc:
            fail(str(exc))

    def require_daemon(self, as_json: bool, what: str) -> Client:
        """The daemon's client; fails (exit 1) saying that ``what`` needs one."""
        client = self.daemon()
        if client is None:
            fail(f"{what}: " + NO_DAEMON.format(state=self.state), as_json)
        return client

    @contextlib.contextmanager
    def embedded(self, immune: bool = False) -> Iterator[LocalApi]:
        """An embedded system behind the daemon's API; stopped (its processes killed) on
        exit. Raises `RnixError` on bad config."""
        system = self.system()
        with system:
            handle = attach_immune_if_available(system) if immune else None
            api = LocalApi(Service(system, immune=handle))
            try:
                yield api
            finally:
                api.close()
                if handle is not None and hasattr(handle, "stop"):
                    with contextlib.suppress(Exception):
                        handle.stop()


def _color() -> bool | None:
    return False if os.environ.get("NO_COLOR") else None


def out(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    click.echo(redact(text), err=err, nl=nl, color=_color())


def style(text: str, **styles: Any) -> str:
    return click.style(text, **styles)


def emit_json(data: Any) -> None:
    click.echo(redact(json.dumps(data, default=str, ensure_ascii=False)))


def fail(message: str, as_json: bool = False, code: str = "ERROR") -> NoReturn:
    """Report a failure (JSON on stdout with ``--json``, else ``error: …`` on stderr), exit 1."""
    if as_json:
        emit_json({"ok": False, "error": {"code": code, "message": message}})
    else:
        out(style("error: ", fg="red", bold=True) + message, err=True)
    sys.exit(1)
