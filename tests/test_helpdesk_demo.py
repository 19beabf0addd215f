"""demos/async_helpdesk.py, the example host app: run as a user runs it, over loopback HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_helpdesk_demo_serves_spawns_watches_and_supervises(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RNIX_STATE_DIR"}
    env["TMPDIR"] = str(tmp_path)  # a temporary file would land here
    done = subprocess.run(
        [sys.executable, str(ROOT / "demos" / "async_helpdesk.py"), "--self-test"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "help desk on http://127.0.0.1:" in out
    assert "200 'password reset link expired': Ticket" in out and "/account/reset" in out
    assert "No article matches" in out  # the ticket the knowledge base cannot answer
    assert '"indexer": "completed after 2 attempts"' in out  # restarted by its supervisor
    assert '"restarts": 1' in out
    assert out.rstrip().endswith("self-test: ok")
    assert list(tmp_path.iterdir()) == []  # state="memory": nothing written
