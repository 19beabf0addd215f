"""``rnix nodes``: where the daemon's agent processes run (its Ray hosts, or this machine)."""

from __future__ import annotations

import click

from rnix_actors.cli.common import Context, emit_json, fail, out
from rnix_actors.cli.render import nodes_table
from rnix_actors.errors import RnixError
from rnix_actors.ipc.protocol import ApiError


@click.command("nodes")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def nodes(obj: Context, as_json: bool) -> None:
    """List the hosts agent processes run on, with their load and state (the Ray backend:
    one host per node of the cluster; the local backend: this machine)."""
    client = obj.require_daemon(as_json, "rnix nodes lists a running system's hosts")
    try:
        with client:
            data = client.call("nodes")
    except (RnixError, ApiError) as exc:
        fail(str(exc), as_json)
    if as_json:
        emit_json(data)
        return
    out(f"backend: {data['backend']}")
    out(nodes_table(data["nodes"]))
