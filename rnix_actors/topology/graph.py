"""The directed collaboration graph and its reinforced paths: pure functions.

Edges are directed and typed: ``spawn`` (parent → child template), ``pipe`` (upstream →
downstream), ``msg`` (sender → receiver) and ``migration`` (failed → substitute). A reinforced
path is a chain of collaboration edges (spawn, pipe, msg; migrations are substitutions, not
collaboration) whose every hop was used at least ``threshold`` times in total. Only maximal
chains are reported: a pair inside a longer reinforced chain is not repeated on its own.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping

import attrs

from rnix_actors.messages.topology import EdgeKind

KINDS: tuple[EdgeKind, ...] = ("spawn", "pipe", "msg", "migration")
COLLABORATION: frozenset[str] = frozenset({"spawn", "pipe", "msg"})
MAX_PATH_AGENTS = 8
MAX_PATHS = 500


@attrs.frozen
class Edge:
    source: str
    target: str
    kind: EdgeKind
    count: int
    label: str = ""  # e.g. the compose workflow that produced a pipe edge

    def to_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


@attrs.frozen
class ReinforcedPath:
    agents: tuple[str, ...]
    weakest: int  # the smallest hop count along the chain
    label: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"agents": list(self.agents), "weakest": self.weakest, "label": self.label}


def sort_edges(edges: Iterable[Edge]) -> list[Edge]:
    """Busiest first, then by names and kind (a stable, readable order)."""
    return sorted(edges, key=lambda e: (-e.count, e.source, e.target, KINDS.index(e.kind)))


def hop_counts(edges: Iterable[Edge]) -> dict[tuple[str, str], int]:
    """Collaboration uses per directed hop (all collaboration kinds summed; no self-loops)."""
    hops: dict[tuple[str, str], int] = defaultdict(int)
    for edge in edges:
        if edge.kind in COLLABORATION and edge.source != edge.target:
            hops[(edge.source, edge.target)] += edge.count
    return dict(hops)


def collaboration_pairs(edges: Iterable[Edge]) -> dict[tuple[str, str], int]:
    """Collaboration uses per unordered pair (sorted names), both directions summed."""
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    for (a, b), count in hop_counts(edges).items():
        pairs[(a, b) if a <= b else (b, a)] += count
    return dict(pairs)


def reinforced_paths(
    edges: Iterable[Edge], threshold: int, max_agents: int = MAX_PATH_AGENTS
) -> list[ReinforcedPath]:
    """Maximal simple chains whose every hop has ``count >= threshold`` (longest first).

    The search is bounded (``max_agents`` per chain, `MAX_PATHS` chains) so that a dense graph
    cannot make it explode; agent-template graphs are small, so the bounds are rarely reached.
    """
    edges = list(edges)
    hops = {h: n for h, n in hop_counts(edges).items() if n >= max(threshold, 1)}
    labels = _hop_labels(edges)
    nexts: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(hops):
        nexts[a].append(b)
    found: list[tuple[str, ...]] = []

    def extend(path: tuple[str, ...]) -> None:
        if len(found) >= MAX_PATHS:
            return
        grown = False
        if len(path) < max_agents:
            for nxt in nexts.get(path[-1], []):
                if nxt not in path:
                    grown = True
                    extend((*path, nxt))
        if not grown and len(path) > 1:
            found.append(path)

    for start in sorted(nexts):
        extend((start,))
    maximal = [p for p in found if not any(p != q and _contains(q, p) for q in found)]
    result = []
    for path in dict.fromkeys(maximal):
        steps = list(itertools.pairwise(path))
        common = {labels.get(step, "") for step in steps}
        label = common.pop() if len(common) == 1 else ""
        result.append(ReinforcedPath(path, min(hops[s] for s in steps), label))
    return sorted(result, key=lambda p: (-len(p.agents), -p.weakest, p.agents))


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    return any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


def _hop_labels(edges: Iterable[Edge]) -> Mapping[tuple[str, str], str]:
    """A hop's label when all its labelled edges agree (else none)."""
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for edge in edges:
        if edge.kind in COLLABORATION and edge.label:
            seen[(edge.source, edge.target)].add(edge.label)
    return {hop: next(iter(names)) for hop, names in seen.items() if len(names) == 1}
