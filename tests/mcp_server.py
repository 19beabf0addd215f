"""A real MCP server for the tests, written with the SDK's server API (``MCPServer``).

    python tests/mcp_server.py                 # stdio
    python tests/mcp_server.py --http PORT     # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: ``search`` and ``read_note`` (read-only), ``write_note`` (a local write: closed world),
``send_email`` (no annotations), ``slow`` (sleeps; writes ``cancelled`` to ``$MARKER_DIR/<tag>``
when its request is cancelled), ``fail`` (a tool error), ``pid`` (the server's process id),
``token_digest`` (sha256 of ``$NOTES_TOKEN``), ``leak_token`` (echoes it) and ``auth_digest``
(sha256 of the request's Authorization header). A resource ``notes://index``, a prompt
``summarise``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

NOTES = {"groceries": "milk, eggs, bread", "meeting": "Thursday 10:00 with the design team"}
READ = ToolAnnotations(readOnlyHint=True)
LOCAL_WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)

server = MCPServer("notes")


@server.tool(annotations=READ)
def search(query: str) -> str:
    """Find notes whose name or text contains the query."""
    hits = [n for n, t in NOTES.items() if query.lower() in (n + " " + t).lower()]
    return ", ".join(sorted(hits)) or "no notes match"


@server.tool(annotations=READ)
def read_note(name: str) -> str:
    """Read one note."""
    if name not in NOTES:
        raise ToolError(f"no note named {name!r}")
    return NOTES[name]


@server.tool(annotations=LOCAL_WRITE)
def write_note(name: str, text: str) -> str:
    """Create or replace a note."""
    NOTES[name] = text
    return f"saved {name}"


@server.tool()
def send_email(to: str, body: str) -> str:
    """Send an email (pretend)."""
    return f"sent to {to}"


@server.tool()
async def slow(seconds: float, tag: str = "slow") -> str:
    """Sleep, then answer; record a cancellation."""
    marker = Path(os.environ.get("MARKER_DIR", ".")) / tag
    marker.write_text("started")
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        marker.write_text("cancelled")
        raise
    marker.write_text("finished")
    return f"slept {seconds}"


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ToolError(message)


@server.tool(annotations=READ)
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool(annotations=READ)
def token_digest() -> str:
    """sha256 of NOTES_TOKEN, so a test can check it arrived without seeing it."""
    return hashlib.sha256(os.environ.get("NOTES_TOKEN", "").encode()).hexdigest()


@server.tool(annotations=READ)
def leak_token() -> str:
    """A careless tool that echoes its secret."""
    return f"my token is {os.environ.get('NOTES_TOKEN', '')}"


@server.tool(annotations=READ)
def auth_digest(ctx: Context) -> str:
    """sha256 of the request's Authorization header."""
    headers = ctx.headers or {}
    return hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()


@server.resource("notes://index", description="The names of all notes.")
def index() -> str:
    return "\n".join(sorted(NOTES))


@server.prompt(description="Ask for a summary of the notes on a topic.")
def summarise(topic: str) -> str:
    return f"Summarise my notes about {topic}."


if __name__ == "__main__":
    if os.environ.get("CRASH_AT_START"):  # a broken server that leaks its secret on stderr
        print(f"fatal: cannot log in with token {os.environ.get('NOTES_TOKEN')}", file=sys.stderr)
        sys.exit(3)
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
