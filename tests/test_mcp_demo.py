"""docs/mcp.md's end-to-end example: the files it shows are demos/mcp_notes/, and they run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demos" / "mcp_notes"


def demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mcp_notes_demo", ROOT / "demos" / "mcp_notes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doc_shows_the_demo_files_verbatim() -> None:
    doc = (ROOT / "docs" / "mcp.md").read_text()
    for name in ("notes_server.py", "mcp.yaml", "librarian.yaml", "librarian-replay.yaml"):
        assert (DEMO / name).read_text().strip() in doc, name


def test_the_librarian_answers_from_the_real_server(tmp_path: Path) -> None:
    demo = demo_module()
    project = demo.make_project(tmp_path / "project")
    info, events = demo.run(project, show=False)
    assert (info.exit_code, info.result) == (0, "The stand-up is at 9:30 in room B.")
    calls = [(e.syscall, e.device, e.result) for e in events if e.syscall == "Exec"]
    assert calls == [
        ("Exec", "/dev/mcp/notes/search", "standup"),
        ("Exec", "/dev/mcp/notes/read_note", "Daily stand-up at 9:30 in room B."),
    ]
