"""``rnix shell``: interactive on a terminal; ``-c "…"`` or a script on stdin otherwise."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator

import click
from prompt_toolkit.patch_stdout import patch_stdout

from rnix_actors.cli.common import Context, fail, out
from rnix_actors.cli.shell.commands import ExitShell, Shell
from rnix_actors.cli.shell.repl import Repl
from rnix_actors.errors import RnixError
from rnix_actors.ipc.local import Api


@contextlib.contextmanager
def _attach(obj: Context) -> Iterator[Api]:
    client = obj.daemon()
    if client is not None:
        with client:
            yield client
        return
    with obj.embedded(immune=True) as api:
        yield api


def run_script(api: Api, lines: Iterable[str]) -> bool:
    """Run each line in the foreground; stop at the first failing command."""
    shell = Shell(api, out, background=False)
    try:
        for line in lines:
            if not shell.execute(line):
                return False
    except ExitShell:
        pass
    finally:
        shell.close()
    return True


def _interactive(obj: Context, api: Api) -> None:
    if api.kind == "daemon":
        out(f"rnix shell: attached to the daemon on {obj.socket}. 'help' lists commands.")
    else:
        out(
            "rnix shell: no daemon is running, so processes run in this shell's own system "
            "and stop when you exit. 'help' lists commands."
        )

    def echo(text: str) -> None:
        print(text, flush=True)  # patched: printed above the prompt

    with patch_stdout(raw=True):
        Repl(api, echo, state_dir=obj.state).run()
    if api.kind == "embedded":
        live = api.call("ps")["processes"]
        if live:
            out(f"stopping {len(live)} live process(es) of the embedded system")


@click.command("shell")
@click.option(
    "-c",
    "--command",
    "commands",
    metavar="COMMANDS",
    help="Run COMMANDS (separated by ';') and exit; the exit status is 1 if one fails.",
)
@click.pass_obj
def shell(obj: Context, commands: str | None) -> None:
    """Interactive shell: spawn agents, pipe them, watch, signal. Attaches to the daemon if
    one runs, otherwise runs its own system. With -c, or a script on stdin, the commands run
    one after the other (each spawn waits for its process) and the first failure stops it."""
    try:
        with _attach(obj) as api:
            if commands is not None:
                ok = run_script(api, [commands])
            elif not sys.stdin.isatty():
                ok = run_script(api, sys.stdin)
            else:
                _interactive(obj, api)
                ok = True
    except RnixError as exc:
        fail(str(exc))
    sys.exit(0 if ok else 1)
