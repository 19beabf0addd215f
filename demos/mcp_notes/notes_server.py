"""A small MCP server (the SDK's MCPServer): notes kept in a JSON file beside it."""

import json
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

STORE = Path("notes.json")  # in the server's cwd (mcp.yaml: cwd)
server = MCPServer("notes")


def load() -> dict[str, str]:
    return json.loads(STORE.read_text()) if STORE.exists() else {}


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def search(query: str) -> list[str]:
    """Names of the notes whose name or text contains the query."""
    return sorted(n for n, t in load().items() if query.lower() in f"{n} {t}".lower())


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def read_note(name: str) -> str:
    """The text of one note."""
    return load().get(name, f"no note named {name}")


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, openWorldHint=False))
def add_note(name: str, text: str) -> str:
    """Create or replace a note."""
    STORE.write_text(json.dumps({**load(), name: text}))
    return f"saved {name}"


@server.resource("notes://all", description="Every note, as JSON.")
def everything() -> str:
    return json.dumps(load())


if __name__ == "__main__":
    server.run()
