"""Messages of the topology keeper (the collaboration graph's owner)."""

from __future__ import annotations

from typing import Literal

import attrs

EdgeKind = Literal["spawn", "pipe", "msg", "migration"]
"""What produced an edge: a spawn (parent → child), a pipe (upstream → downstream), a message
(sender → receiver), a migration (original → substitute)."""


@attrs.frozen
class RecordEdge:
    """Count one more use of ``source → target`` (told by pipes, compose, the planner)."""

    kind: EdgeKind
    source: str
    target: str
    label: str = ""
    count: int = 1


@attrs.frozen
class QueryEdges:
    """Answered with every edge (a list of `Edge`)."""
