"""``rnix topology`` text (the format in docs/migration.md) and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from rnix_actors.topology.graph import Edge, ReinforcedPath, sort_edges

HIGH_SUBSTITUTABILITY = 0.7


@attrs.frozen
class Overlap:
    """Capability overlap of a pair (from the similarity matrix)."""

    a: str
    b: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "similarity": round(self.score, 4)}


@attrs.frozen
class TopologyView:
    edges: tuple[Edge, ...]
    paths: tuple[ReinforcedPath, ...]
    threshold: int
    overlap: tuple[Overlap, ...] = ()
    min_overlap: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": [e.to_dict() for e in sort_edges(self.edges)],
            "reinforced_paths": [p.to_dict() for p in self.paths],
            "reinforcement_threshold": self.threshold,
            "capability_overlap": [o.to_dict() for o in self.overlap],
        }

    def text(self) -> str:
        lines = ["Agent Collaboration Topology:"]
        edges = sort_edges(self.edges)
        if not edges:
            lines.append("  (no collaboration recorded yet)")
        for edge in edges:
            lines.append(f"  {edge.source} ──({edge.kind}: {edge.count})──→ {edge.target}")
        lines += ["", "  Reinforced paths (auto-optimized):"]
        if not self.paths:
            lines.append(f"   (none yet: every hop of a path needs {self.threshold}+ uses)")
        for path in self.paths:
            label = f" ({path.label})" if path.label else ""
            lines.append(f" ★ {' → '.join(path.agents)}{label}")
        lines += ["", "  Capability overlap:"]
        shown = [o for o in self.overlap if o.score >= self.min_overlap]
        if not shown:
            lines.append(f"    (no pair of agents reaches {self.min_overlap:.0%})")
        for item in sorted(shown, key=lambda o: (-o.score, o.a, o.b)):
            kind = "high" if item.score >= HIGH_SUBSTITUTABILITY else "moderate"
            lines.append(f"    {item.a} ↔ {item.b}: {item.score:.0%} ({kind} substitutability)")
        return "\n".join(lines)


def overlap_of(pairs: Sequence[tuple[str, str, float]]) -> tuple[Overlap, ...]:
    return tuple(Overlap(a, b, score) for a, b, score in pairs)
