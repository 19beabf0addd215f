"""docs/supervision.md: its example runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "supervision.md"


def test_the_management_example_runs(tmp_path: Path) -> None:
    text = DOC.read_text()
    start = text.index("```python\nimport threading") + len("```python\n")
    code = text[start : text.index("```", start)]
    printed = io.StringIO()
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, str(DOC), "exec"), {})
    finally:
        os.chdir(cwd)
    lines = printed.getvalue().splitlines()
    assert lines[0] == "{'specs': 2, 'active': 2, 'supervisors': 0, 'workers': 2}"
    assert lines[1].startswith("/jobs  one_for_one  running")
    assert "helper  agent worker" in printed.getvalue() and "(old PIDs:" in printed.getvalue()
    assert lines[-1] == "auto_shutdown: any significant child ended (last: 'main')"
