"""Compose workflows and pipes with neuroplasticity.

    engine = ComposeEngine(system, system.store, topology)
    result = engine.run(engine.load("conf/compose/review.yaml"), on_progress=print)
    result = engine.pipe("code-analyst | doc-writer", "review and document this repo")

Each node runs under its own one-child supervisor with the file's restart policy; when that
supervisor gives up, the migration planner (if attached) may move the task to a similar agent;
a successful substitute becomes the node's preferred agent for the next runs of the workflow.
"""

from __future__ import annotations

from rnix_actors.compose.engine import ComposeEngine, ComposeHost, node_intent
from rnix_actors.compose.results import Attempt, NodeResult, Progress, WorkflowResult
from rnix_actors.compose.routes import Route, choose, reinforce
from rnix_actors.compose.spec import (
    Budgets,
    Node,
    Workflow,
    load_workflow,
    parse_workflow,
    pipeline,
)

__all__ = [
    "Attempt",
    "Budgets",
    "ComposeEngine",
    "ComposeHost",
    "Node",
    "NodeResult",
    "Progress",
    "Route",
    "Workflow",
    "WorkflowResult",
    "choose",
    "load_workflow",
    "node_intent",
    "parse_workflow",
    "pipeline",
    "reinforce",
]
