"""An agent template using a real MCP server end to end (docs/mcp.md), offline.

    .venv/bin/python demos/mcp_notes.py [--keep DIR]

Builds a throwaway project from ``demos/mcp_notes/``: a notes server written with the SDK's
``MCPServer`` (``tools/notes_server.py``), ``.rnix/mcp.yaml`` mounting it as ``/dev/mcp/notes``,
and the ``librarian`` template, which may search and read notes but not write them, driven by
a replay script. The librarian's tool calls go through the kernel to the real server over
stdio; the demo prints each call and its result, then what the server offers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from rnix_actors import Event, ProcessInfo, System

DATA = Path(__file__).resolve().parent / "mcp_notes"
NOTES = {
    "standup": "Daily stand-up at 9:30 in room B.",
    "release": "Release 2.4 ships on Friday; freeze on Wednesday.",
}


def make_project(root: Path) -> Path:
    """The project of docs/mcp.md, in ``root`` (the server runs with this Python)."""
    rnix = root / ".rnix"
    for folder in (root / "tools", rnix / "agents", rnix / "replay"):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "notes_server.py", root / "tools" / "notes_server.py")
    mcp_yaml = (DATA / "mcp.yaml").read_text()
    (rnix / "mcp.yaml").write_text(
        mcp_yaml.replace("command: python", f"command: {sys.executable}")
    )
    shutil.copy(DATA / "librarian.yaml", rnix / "agents" / "librarian.yaml")
    shutil.copy(DATA / "librarian-replay.yaml", rnix / "replay" / "librarian.yaml")
    (root / "notes.json").write_text(json.dumps(NOTES))
    return root


def run(project: Path, show: bool = True) -> tuple[ProcessInfo, list[Event]]:
    """Run the librarian once; return its final info and its MCP events."""
    calls: list[Event] = []
    with System(project) as system:
        system.subscribe(lambda e: calls.append(e) if e.device.startswith("/dev/mcp") else None)
        info = system.wait(system.spawn("librarian", "When is the stand-up?"), timeout=60)
        system.sync_events()
        if show:
            for event in calls:
                outcome = event.error or event.result
                print(f"  {event.syscall} {event.device} {json.dumps(event.args)} -> {outcome}")
            print(f"  result: {info.result}")
            assert system.mcp is not None
            (notes,) = [s for s in system.mcp.status(connect=False) if s["name"] == "notes"]
            tools = ", ".join(f"{t['name']} [{t['effect']}]" for t in notes["tools"])
            print(f"  /dev/mcp/notes is {notes['state']}; tools: {tools}")
    return info, calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(args.keep or Path(tmp))
        print(f"project: {project}")
        info, _ = run(project)
    return 0 if info.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
