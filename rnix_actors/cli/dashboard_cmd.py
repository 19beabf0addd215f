"""``rnix dashboard``: ask the project's daemon to serve the live web dashboard."""

from __future__ import annotations

import click

from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.ipc.protocol import ApiError


@click.command("dashboard")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (0: a free one).",
)
@click.option("--stop", is_flag=True, help="Stop the daemon's dashboard.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def dashboard(obj: Context, port: int, stop: bool, as_json: bool) -> None:
    """Serve the live web dashboard from the daemon (127.0.0.1 only) and print its URL.

    The URL carries a random token for this dashboard: anyone with the URL can read and act
    on your agents, so do not share it. The dashboard runs until the daemon stops or
    `rnix dashboard --stop`.
    """
    client = obj.require_daemon(as_json, "rnix dashboard")
    try:
        with client:
            data = client.call("dashboard", **({"stop": True} if stop else {"port": port}))
    except ApiError as exc:
        fail(exc.message, as_json, exc.code)
    if as_json:
        emit_json({"ok": True, **data})
    elif stop:
        out("dashboard stopped" if data.get("stopped") else "no dashboard was running")
    else:
        note = " (already running)" if data.get("already_running") else ""
        out(f"dashboard: {data['url']}{note}")
        out("Open it in a browser on this machine; the token in the URL is the key to it.")
