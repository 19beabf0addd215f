"""``rnix topology``, ``rnix immune similarity`` and ``rnix migrations``.

They read what the last system persisted in the project's store (there is no daemon): the
collaboration edges, the migration decisions, and the templates' skills from the project.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import click

from rnix_actors.errors import RnixError
from rnix_actors.migration import (
    SimilarityMatrix,
    matrix_text,
    ranked_text,
    settings_from,
    similarity_matrix,
    stored_decisions,
    template_skills,
)
from rnix_actors.store.db import Store
from rnix_actors.system import System, resolve_state_dir
from rnix_actors.topology import (
    DEFAULT_THRESHOLD,
    Edge,
    Overlap,
    TopologyView,
    collaboration_pairs,
    reinforced_paths,
    stored_edges,
)


def paths(ctx: click.Context) -> tuple[Path, Path]:
    """(project dir, state dir) from the parent ``rnix`` options, or the defaults."""
    obj = ctx.find_root().obj
    project = Path(getattr(obj, "project_dir", None) or Path.cwd()).resolve()
    return project, resolve_state_dir(project, getattr(obj, "state_dir", None))


def fail(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _stored_matrix(project: Path, state: Path) -> tuple[SimilarityMatrix, float, list[Edge]]:
    system = System(project, state_dir=state)  # not started: templates and config only
    edges = stored_edges(state / "rnix.db")
    settings = settings_from(system.config)
    matrix = similarity_matrix(
        template_skills(system.templates), collaboration_pairs(edges), settings.blend
    )
    return matrix, settings.min_similarity, edges


@click.command("topology")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Uses every hop of a reinforced path needs.",
)
@click.pass_context
def topology(ctx: click.Context, as_json: bool, threshold: int) -> None:
    """Show the agent collaboration topology, reinforced paths and capability overlap."""
    project, state = paths(ctx)
    try:
        matrix, minimum, edges = _stored_matrix(project, state)
    except (RnixError, RuntimeError, sqlite3.Error) as exc:
        fail(str(exc), as_json)
        return
    typed = edges
    nodes = {e.source for e in typed} | {e.target for e in typed}
    overlap = tuple(
        Overlap(s.a, s.b, s.score) for s in matrix.pairs() if s.a in nodes and s.b in nodes
    )
    view = TopologyView(
        tuple(typed), tuple(reinforced_paths(typed, threshold)), threshold, overlap, minimum
    )
    if as_json:
        click.echo(json.dumps({"ok": True, **view.to_dict()}))
    else:
        click.echo(view.text())


@click.command("similarity")
@click.argument("agent", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def similarity(ctx: click.Context, agent: str | None, as_json: bool) -> None:
    """Show the capability similarity matrix (or AGENT's substitutes, best first)."""
    project, state = paths(ctx)
    try:
        matrix, minimum, _ = _stored_matrix(project, state)
    except (RnixError, RuntimeError, sqlite3.Error) as exc:
        fail(str(exc), as_json)
        return
    if agent is not None and agent not in matrix.agents:
        fail(f"unknown agent {agent!r}; known agents: {', '.join(matrix.agents)}", as_json)
    if as_json:
        pairs = matrix.similar(agent) if agent else matrix.pairs()
        data = [
            {"a": s.a, "b": s.b, "score": s.score, "skill": s.skill, "history": s.history}
            for s in pairs
        ]
        click.echo(json.dumps({"ok": True, "min_migration_similarity": minimum, "pairs": data}))
    elif agent is None:
        click.echo(matrix_text(matrix))
    else:
        click.echo(ranked_text(matrix, agent, minimum))


@click.command("migrations")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_context
def migrations(ctx: click.Context, as_json: bool, limit: int) -> None:
    """Show the migration planner's recent decisions (migrated, declined, no candidate)."""
    _, state = paths(ctx)
    db_path = state / "rnix.db"
    if not db_path.exists():
        records = []
    else:
        try:
            store = Store(db_path)
            try:
                records = stored_decisions(store, limit)
            finally:
                store.close()
        except (RuntimeError, sqlite3.Error) as exc:
            fail(str(exc), as_json)
            return
    if as_json:
        click.echo(json.dumps({"ok": True, "decisions": [r.to_dict() for r in records]}))
        return
    if not records:
        click.echo("No migration decisions recorded.")
    for r in records:
        target = f" → {r.substitute}" if r.substitute else ""
        outcome = f" [{r.outcome}]" if r.outcome else ""
        click.echo(f"#{r.id} {r.supervisor}/{r.child}: {r.original}{target} {r.decision}{outcome}")
        click.echo(f"    {r.reason}")
