"""``rnix demo``: the offline story of the runtime on the embedded defaults.

Runs in a temporary project (nothing is written to the current directory), with the shipped
replay agents and a few python-driver agents that misbehave on purpose. No network, no key.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnix_actors.cli.render import event_line, process_table
from rnix_actors.drivers.base import LLMRequest, LLMResponse, ToolCall
from rnix_actors.messages.events import Event
from rnix_actors.system import System
from rnix_actors.templates import AgentTemplate, Limits

Echo = Callable[[str], None]

SAMPLE_FILES = {
    "app/main.py": "import os\n\n\ndef run(cmd):\n    return os.system(cmd)  # TODO: validate\n",
    "app/util.py": "def add(a, b):\n    return a + b\n",
    "requirements.txt": "requests==2.19.0\n",
    "README.md": "# sample service\n",
}


def _sample_project(root: Path) -> None:
    for name, text in SAMPLE_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _diver(request: LLMRequest) -> LLMResponse:
    """A runaway agent: whatever happens, it spawns another copy of itself."""
    return LLMResponse(
        tool_calls=(ToolCall("dive", "spawn", {"agent": "diver", "intent": "go deeper"}),),
        input_tokens=20,
        output_tokens=5,
    )


def _escalator(request: LLMRequest) -> LLMResponse | str:
    """Tries to reach /dev/shell it was never given, then gives up honestly."""
    if request.step == 1:
        return LLMResponse(tool_calls=(ToolCall("sh", "shell", {"command": "cat /etc/shadow"}),))
    return "could not run the command: " + request.messages[-1].content.split(".")[0]


def _spender(request: LLMRequest) -> LLMResponse:
    return LLMResponse(
        tool_calls=(ToolCall(f"l{request.step}", "list_files", {}),), input_tokens=900
    )


def _section(echo: Echo, title: str) -> None:
    echo("")
    echo(f"── {title} " + "─" * max(0, 68 - len(title)))


def run_demo(echo: Echo | None = None) -> dict[str, Any]:
    """Run the demo; print through ``echo`` (None = quiet); return a summary."""
    say: Echo = echo or (lambda _line: None)
    started = time.monotonic()
    summary: dict[str, Any] = {"ok": True, "agents": {}}
    with tempfile.TemporaryDirectory(prefix="rnix-demo-") as tmp:
        project = Path(tmp)
        _sample_project(project)
        with System(project, state_dir=project / ".rnix") as system:
            live_output = [True]  # section 1 streams every event; later ones summarise

            def show(event: Event) -> None:
                if live_output[0]:
                    line = event_line(event)
                    if line:
                        say(line)

            system.subscribe(show)
            _section(say, "1. shipped agents (replay driver, offline)")
            for name in ("code-analyst", "security-scanner", "doc-writer"):
                pid = system.spawn(name, f"review the sample project as {name}", origin="demo")
                info = system.wait(pid, 60)
                system.sync_events()
                say(
                    f"[kernel] PID {pid} {name} exited({info.exit_code}) {info.exit_reason}: "
                    f"{info.result.splitlines()[0] if info.result else ''}"
                )
                summary["agents"][name] = info.exit_code
                summary["ok"] &= info.exit_code == 0

            live_output[0] = False
            _section(say, "2. permission: an agent without /dev/shell asks for it")
            system.register_llm("escalator", _escalator)
            system.add_template(
                AgentTemplate("escalator", devices=("/dev/fs",), driver="escalator")
            )
            info = system.run("escalator", "read the password file", timeout=30)
            say(f"[kernel] PID {info.pid} exited({info.exit_code}): {info.result}")
            summary["denied_ok"] = info.exit_code == 0

            _section(say, "3. spawn safety: a runaway agent keeps spawning itself")
            system.register_llm("diver", _diver)
            system.add_template(AgentTemplate("diver", devices=("/dev/fs",), driver="diver"))
            root = system.spawn("diver", "dive", origin="demo")
            info = system.wait(root, 60)
            chain = [p for p in system.ps(all=True) if p.template == "diver"]
            depth = max(p.depth for p in chain)
            say(
                f"chain of {len(chain)} processes, deepest depth {depth}; root PID {root} "
                f"exited({info.exit_code}): {info.exit_reason}"
            )
            summary["max_depth"] = depth

            _section(say, "4. budget: an agent that burns tokens is suspended, then killed")
            system.register_llm("spender", _spender)
            system.add_template(
                AgentTemplate(
                    "spender",
                    devices=("/dev/fs",),
                    driver="spender",
                    limits=Limits(max_tokens=3000),
                )
            )
            info = system.run("spender", "list forever", timeout=30)
            say(
                f"[kernel] PID {info.pid} {info.state} exit {info.exit_code} "
                f"({info.exit_reason}) after {info.tokens_used:,} tokens"
            )
            system.kill(info.pid, "SIGKILL", origin="demo")
            summary["budget_suspended"] = info.exit_reason == "budget_exhausted"

            _section(say, "5. process history (rnix ps --all)")
            say(process_table(system.ps(all=True)))
        summary["elapsed_s"] = round(time.monotonic() - started, 2)
    say(f"\ndemo finished in {summary['elapsed_s']}s")
    return summary
