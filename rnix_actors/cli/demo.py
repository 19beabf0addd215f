"""``rnix demo``: the whole story of the runtime, offline, on the embedded defaults.

In a temporary project (nothing is written to the current directory), with the shipped replay
agents and a few python-driver agents that misbehave on purpose; no network, no API key:

1. the review pipeline runs under supervisors, and the immune daemon learns baselines;
2. a rogue run of code-analyst (a burst of shell calls) is caught and suspended (enforce mode);
3. security-scanner's model breaks: its supervisor gives up and the task migrates;
4. the topology and the similarity matrix;
5. spawn safety: a denied device, a runaway spawn chain, a token budget.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from rnix_actors.cli.render import supervision_tree
from rnix_actors.compose import Progress, Workflow
from rnix_actors.config import TopologyConfig, load_config
from rnix_actors.drivers.base import LLMRequest, LLMResponse, ToolCall
from rnix_actors.drivers.replay import ReplayResponse, ReplayScript
from rnix_actors.immune import ImmuneConfig
from rnix_actors.messages.links import ExitKind
from rnix_actors.migration import matrix_text
from rnix_actors.paths import shipped_conf_dir
from rnix_actors.supervision.spec import ChildSpec, Strategy, SupervisorSpec
from rnix_actors.system import System
from rnix_actors.templates import AgentTemplate, Limits
from rnix_actors.topology import Overlap

Echo = Callable[[str], None]
AGENTS = ["code-analyst", "security-scanner", "doc-writer"]
TRAINING_RUNS = 5

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


def _call(name: str, **args: Any) -> ToolCall:
    return ToolCall("", name, args)


ROGUE = ReplayScript(
    (
        ReplayResponse("Looking around.", (_call("list_files", path="."),), 600, 40),
        ReplayResponse(
            "Probing the host.",
            tuple(_call("shell", command=f"echo probe {i}") for i in range(12)),
            900,
            120,
        ),
        ReplayResponse("", (_call("complete", result="probed"),), 700, 20),
    )
)
"""A code-analyst run gone rogue: a burst of shell calls its baseline never saw."""

BROKEN = ReplayScript(
    (ReplayResponse("Surveying the project.", (_call("list_files", path="."),), 580, 36),)
)
"""A security-scanner whose model goes away after one step (its script runs out)."""


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


class Demo:
    def __init__(self, system: System, say: Echo) -> None:
        self.system = system
        self.say = say
        self.summary: dict[str, Any] = {"ok": True}

    def section(self, title: str) -> None:
        self.say("")
        self.say(f"── {title} " + "─" * max(0, 70 - len(title)))

    def pipeline(self, quiet: bool) -> Any:
        workflow: Workflow = self.system.compose.load(shipped_conf_dir() / "compose/review.yaml")

        def progress(item: Progress) -> None:
            if not quiet:
                self.say(f"  {item.text()}")

        return self.system.compose.run(workflow, progress, timeout=60)

    # -- 1 --------------------------------------------------------------------------------------
    def supervised(self) -> None:
        self.section("1. agents under a supervisor; the immune daemon learns their baselines")
        tree = SupervisorSpec(
            "review",
            Strategy.ONE_FOR_ONE,
            tuple(
                ChildSpec(name, agent=name, intent=f"review the sample project as {name}")
                for name in AGENTS
            ),
        )
        handle = self.system.supervise(tree)
        deadline = time.monotonic() + 60
        while handle.status == "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        self.say(supervision_tree([handle.view()], []))
        results = [self.pipeline(quiet=True) for _ in range(TRAINING_RUNS - 1)]
        self.say(
            f"  + {len(results)} runs of the review pipeline (conf/compose/review.yaml): "
            f"{sum(r.ok for r in results)} completed"
        )
        self.system.sync_events()
        status = self.system.immune.status()
        for profile in status.profiles:
            self.say(f"  baseline {profile.template}: {profile.runs} runs")
        self.summary["supervised"] = handle.status
        self.summary["ok"] &= handle.status == "completed" and all(r.ok for r in results)

    # -- 2 --------------------------------------------------------------------------------------
    def rogue(self) -> None:
        self.section("2. a rogue code-analyst run: caught and suspended before its next call")
        self.system.replay.add_script("rogue-code-analyst", ROGUE)
        pid = self.system.spawn("code-analyst", "review (compromised)", model="rogue-code-analyst")
        info = self.system.wait(pid, 30)
        self.system.sync_events()
        executed = sum(
            1
            for line in self.system.events_file(pid).read_text().splitlines()
            if '"syscall":"Exec"' in line and '"error":""' in line
        )
        self.say(f"  PID {pid}: {info.state}, {info.exit_reason}")
        self.say(f"  shell calls that ran: {executed} of 12")
        self.say("  " + self.system.immune.status().text().replace("\n", "\n  "))
        self.system.kill(pid, "SIGKILL", origin="demo")
        self.summary["rogue_suspended"] = str(info.state) == "suspended"
        self.summary["ok"] &= self.summary["rogue_suspended"]

    # -- 3 --------------------------------------------------------------------------------------
    def migration(self) -> None:
        self.section("3. security-scanner's model breaks: restarts, then migration")
        self.system.replay.add_script("security-scanner-broken", BROKEN)
        scanner = self.system.templates["security-scanner"]
        self.system.add_template(attrs.evolve(scanner, model="security-scanner-broken"))
        result = self.pipeline(quiet=False)
        for decision in self.system.migration.decisions()[:1]:
            self.say(
                f"  planner: {decision.decision} {decision.original} → "
                f"{decision.substitute}: {decision.reason}"
            )
        self.say("  " + result.summary().replace("\n", "\n  "))
        self.say("  next run of the same workflow:")
        again = self.pipeline(quiet=False)
        self.system.add_template(scanner)
        self.summary["migrated"] = result.ok
        self.summary["ok"] &= result.ok and again.ok

    # -- 4 --------------------------------------------------------------------------------------
    def topology(self) -> None:
        self.section("4. collaboration topology and capability similarity")
        matrix = self.system.migration.matrix()
        overlap = [Overlap(s.a, s.b, s.score) for s in matrix.pairs()]
        minimum = self.system.immune_config.min_migration_similarity
        self.say(self.system.topology.view(overlap, minimum).text())
        self.say("")
        self.say(matrix_text(matrix, AGENTS))

    # -- 5 --------------------------------------------------------------------------------------
    def safety(self) -> None:
        self.section("5. spawn safety: no permission by spawning, depth cap 8, budgets")
        system = self.system
        system.register_llm("escalator", _escalator)
        system.add_template(AgentTemplate("escalator", devices=("/dev/fs",), driver="escalator"))
        info = system.run("escalator", "read the password file", timeout=30)
        self.say(f"  escalator (only /dev/fs): {info.result}")
        system.register_llm("diver", _diver)
        system.add_template(AgentTemplate("diver", devices=("/dev/fs",), driver="diver"))
        root = system.spawn("diver", "dive", origin="demo")
        info = system.wait(root, 60)
        chain = [p for p in system.ps(all=True) if p.template == "diver"]
        depth = max(p.depth for p in chain)
        self.say(
            f"  runaway diver: {len(chain)} processes, deepest depth {depth}, root "
            f"exit {info.exit_code}: {info.exit_reason}"
        )
        system.register_llm("spender", _spender)
        system.add_template(
            AgentTemplate(
                "spender", devices=("/dev/fs",), driver="spender", limits=Limits(max_tokens=3000)
            )
        )
        info = system.run("spender", "list forever", timeout=30)
        self.say(
            f"  spender (max_tokens 3000): {info.state}, {info.exit_reason} after "
            f"{info.tokens_used:,} tokens"
        )
        system.kill(info.pid, "SIGKILL", origin="demo")
        self.summary["max_depth"] = depth
        self.summary["budget_suspended"] = info.exit_kind == ExitKind.BUDGET


def run_demo(echo: Echo | None = None) -> dict[str, Any]:
    """Run the demo; print through ``echo`` (None = quiet); return a summary."""
    say: Echo = echo or (lambda _line: None)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rnix-demo-") as tmp:
        project = Path(tmp)
        _sample_project(project)
        config = attrs.evolve(load_config(None), topology=TopologyConfig(reinforcement_threshold=3))
        enforce = ImmuneConfig(warn_only=False)
        with System(
            project, state_dir=project / ".rnix", config=config, immune=enforce, load_project=False
        ) as system:
            demo = Demo(system, say)
            for part in (demo.supervised, demo.rogue, demo.migration, demo.topology, demo.safety):
                part()
        summary = demo.summary
        summary["elapsed_s"] = round(time.monotonic() - started, 2)
    say(f"\ndemo finished in {summary['elapsed_s']}s")
    return summary
