"""Self-healing review pipeline, offline (replay scripts): detect → assess → migrate → reinforce.

    .venv/bin/python demos/self_healing_review.py [--keep DIR]

1. The review pipeline code-analyst → security-scanner → doc-writer runs healthy twice, which
   builds real collaboration history (pipe edges) in the topology.
2. The security-scanner's model is broken (a replay script that runs out after one step). Its
   supervisor restarts it twice, gives up, and offers the task to the migration planner, which
   picks code-analyst (similarity 0.72 ≥ 0.50, expected success above the scanner's) and
   transfers the context; the substitute completes and the pipeline finishes.
3. The next run of the same workflow prefers code-analyst for that node straight away.
Everything runs on real actors and a throwaway project and state dir.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import attrs

from rnix_actors import System
from rnix_actors.compose import ComposeEngine, Progress, WorkflowResult
from rnix_actors.config import TopologyConfig, load_config
from rnix_actors.drivers.replay import parse_replay_script
from rnix_actors.migration import matrix_text
from rnix_actors.topology import Overlap

DATA = Path(__file__).resolve().parent / "self_healing_review"
ORDER = ["code-analyst", "security-scanner", "doc-writer"]


def sample_project(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "README.md").write_text("# inventory\nA tiny inventory service.\n")
    (root / "requirements.txt").write_text("flask\nrequests==2.31.0\n")
    (root / "src" / "app.py").write_text(
        'API_KEY = "sk-demo-not-a-real-key"\n\ndef handler(q):\n    return eval(q)\n'
    )


def show(progress: Progress) -> None:
    print(f"    {progress.text()[:150]}")


def run(engine: ComposeEngine, title: str) -> WorkflowResult:
    print(f"\n== {title}")
    result = engine.run(engine.load(DATA / "review.yaml"), show, timeout=120)
    print()
    print("\n".join("    " + line for line in result.summary().splitlines()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="use (and keep) this directory")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="rnix-self-healing-"))
    project = root / "project"
    sample_project(project)
    try:
        config = attrs.evolve(load_config(None), topology=TopologyConfig(reinforcement_threshold=2))
        with System(project, state_dir=root / "state", config=config, load_project=False) as system:
            topology, planner, engine = system.topology, system.migration, system.compose
            print("Similarity before any collaboration (skills only):")
            print(matrix_text(planner.matrix(), ORDER))
            for n in (1, 2):
                run(engine, f"Run {n}: healthy pipeline")
            print("\nSimilarity after two runs (skills + collaboration history):")
            print(matrix_text(planner.matrix(), ORDER))

            broken = parse_replay_script(DATA / "security-scanner-broken.yaml")
            system.replay.add_script("security-scanner-broken", broken)
            scanner = system.templates["security-scanner"]
            system.add_template(attrs.evolve(scanner, model="security-scanner-broken"))
            run(engine, "Run 3: security-scanner's model is broken (forced failure)")
            for decision in planner.decisions():
                print(
                    f"\n    planner decision #{decision.id}: {decision.decision} "
                    f"{decision.original} → {decision.substitute} [{decision.outcome}]"
                )
                print(f"      {decision.reason}")
            run(engine, "Run 4: the same workflow again (neuroplasticity)")

            matrix = planner.matrix()
            overlap = [Overlap(s.a, s.b, s.score) for s in matrix.pairs()]
            print("\n" + topology.view(overlap, planner.settings.min_similarity).text())
            planner.stop()
            topology.stop()
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
