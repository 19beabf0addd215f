"""``rnix immune``: status, resume and forget.

With a daemon running, the commands ask its live immune system. Without one, ``status`` shows
the mode from the config and the alerts, threat memory and profiles persisted by the last
system that ran (no live process is monitored), ``forget`` edits the stored threat memory,
and ``resume`` explains that it needs a running system.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import attrs
import click

from rnix_actors.cli.common import fail
from rnix_actors.config import load_config
from rnix_actors.errors import ConfigError, RnixError
from rnix_actors.immune.config import ImmuneConfig, immune_config_from
from rnix_actors.immune.daemon import profile_summaries, settings_of
from rnix_actors.immune.persistence import ImmuneStore
from rnix_actors.immune.sandboxview import SandboxView, sandbox_view
from rnix_actors.immune.status import ImmuneStatus
from rnix_actors.immune.threats import ThreatMemory
from rnix_actors.ipc.client import Client, DaemonUnavailable
from rnix_actors.ipc.control import find_daemon
from rnix_actors.ipc.protocol import ApiError
from rnix_actors.kernel.sandbox import Bubblewrap
from rnix_actors.loader import load_skills, load_templates
from rnix_actors.paths import shipped_conf_dir
from rnix_actors.store.db import Store
from rnix_actors.system import resolve_state_dir

NO_DAEMON = (
    "note: no rnix daemon is running; alerts and threat memory are those stored in {db}, "
    "and no live process is monitored"
)


def _paths(ctx: click.Context) -> tuple[Path, Path]:
    """(project dir, state dir) from the parent ``rnix`` options, or the defaults."""
    obj = ctx.find_root().obj
    project = Path(getattr(obj, "project_dir", None) or Path.cwd()).resolve()
    return project, resolve_state_dir(project, getattr(obj, "state_dir", None))


def _config(project: Path) -> ImmuneConfig:
    return immune_config_from(load_config(project / ".rnix" / "config.yaml"))


def stored_sandbox(project: Path) -> SandboxView:
    """The shell sandbox that a system started in ``project`` would have: its config and
    templates (a template that cannot be read is left out; ``rnix agents`` reports it)."""
    settings = load_config(project / ".rnix" / "config.yaml").shell
    dirs = [shipped_conf_dir(), project / ".rnix"]
    try:
        templates = list(load_templates(dirs, load_skills(dirs)).values())
    except ConfigError:
        templates = []
    return sandbox_view(settings, templates, Bubblewrap())


def _daemon(ctx: click.Context) -> Client | None:
    return find_daemon(_paths(ctx)[1])


def stored_status(config: ImmuneConfig, db_path: Path) -> ImmuneStatus:
    """The status as persisted in ``db_path`` (an absent file is an empty store)."""
    if not config.enabled:
        return ImmuneStatus.disabled()
    if not db_path.exists():
        return ImmuneStatus(config.mode, daemon_running=False)
    store = Store(db_path)
    try:
        loaded = ImmuneStore(store).load()
    finally:
        store.close()
    memory = ThreatMemory(config.threat_ttl_days, config.max_threats, loaded.threats)
    memory.prune(time.time())
    profiles = [b.snapshot() for b in loaded.profiles.values()]
    return ImmuneStatus(
        mode=config.mode,
        alerts=tuple(loaded.alerts),
        threats=tuple(memory.list()),
        profiles=profile_summaries(profiles, settings_of(config)),
        daemon_running=False,
    )


@click.group("immune")
def immune() -> None:
    """Behaviour baselines, anomaly alerts and threat memory."""


@immune.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the mode, alerts, suspended processes and threat memory."""
    client = _daemon(ctx)
    if client is not None:
        try:
            with client:
                live = client.call("immune_status")
        except (ApiError, DaemonUnavailable) as exc:
            fail(str(exc), as_json)
        if as_json:
            click.echo(json.dumps({"ok": True, **live["status"]}))
        else:
            click.echo(live["text"])
        return
    project, state = _paths(ctx)
    db_path = state / "rnix.db"
    try:
        result = stored_status(_config(project), db_path)
        result = attrs.evolve(result, sandbox=stored_sandbox(project))
    except (RnixError, RuntimeError, sqlite3.Error) as exc:
        fail(str(exc), as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, **result.to_json()}))
        return
    click.echo(result.text())
    if result.mode != "disabled":
        click.echo(NO_DAEMON.format(db=db_path), err=True)


@immune.command("resume")
@click.argument("pid", type=click.IntRange(min=1))
@click.option(
    "--retry",
    is_flag=True,
    help="Run again the call the guard refused (default: the agent goes on with the refusal).",
)
@click.pass_context
def resume(ctx: click.Context, pid: int, retry: bool) -> None:
    """Clear PID's alerts and resume it (needs a running daemon)."""
    client = _daemon(ctx)
    if client is not None:
        try:
            with client:
                outcome = client.call("immune_resume", pid=pid, retry=retry)["outcome"]
        except (ApiError, DaemonUnavailable) as exc:
            fail(str(exc))
        click.echo(f"PID {pid}: alerts cleared; {outcome}")
        return
    fail(
        f"cannot resume PID {pid}: no rnix daemon is running, and a suspended process only "
        "exists inside the system that runs it. Resume it from that program with "
        f"system.immune.resume({pid}) (or immune.resume({pid}) on the attach_immune handle)"
    )


@immune.command("forget")
@click.argument("name", required=False)
@click.option("--all", "forget_all", is_flag=True, help="Forget every threat signature.")
@click.pass_context
def forget(ctx: click.Context, name: str | None, forget_all: bool) -> None:
    """Forget the threat signature NAME (or all of them with --all)."""
    if (name is None) == (not forget_all):
        raise click.UsageError("give a signature NAME or --all (not both)")
    client = _daemon(ctx)
    if client is not None:
        try:
            with client:
                params = {"all": True} if forget_all else {"name": name}
                count = int(client.call("immune_forget", **params)["forgotten"])
        except (ApiError, DaemonUnavailable) as exc:
            fail(str(exc))
        if name is not None and not count:
            fail(f"no threat signature named {name!r}")
        click.echo(f"Forgot {count} threat signature{'' if count == 1 else 's'}.")
        return
    project, state = _paths(ctx)
    db_path = state / "rnix.db"
    try:
        config = _config(project)
        if not db_path.exists():
            fail(f"no store at {db_path}: nothing to forget")
        store = Store(db_path)
        try:
            db = ImmuneStore(store)
            memory = ThreatMemory(config.threat_ttl_days, config.max_threats, db.load().threats)
            change = memory.forget(name, all=forget_all)
            db.save_threats((), change.removed)
        finally:
            store.close()
    except (RnixError, RuntimeError, sqlite3.Error) as exc:
        fail(str(exc))
    if name is not None and not change.removed:
        known = ", ".join(t.name for t in memory.list()) or "none"
        fail(f"no threat signature named {name!r}; known: {known}")
    count = len(change.removed)
    click.echo(f"Forgot {count} threat signature{'' if count == 1 else 's'}.")
