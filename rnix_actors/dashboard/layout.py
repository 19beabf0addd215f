"""Graph and tree layouts for the dashboard's pictures: pure functions, no drawing.

`layered` places a directed graph in layers (Sugiyama-style, kept simple): cycles are broken
by reversing the back edges a depth-first search finds, each node goes one layer below its
deepest predecessor, and nodes within a layer are ordered by the mean position of their
neighbours over a few sweeps, which removes most crossings of small graphs. `tidy_tree`
places a tree top-down with every leaf in its own column and each parent centred over its
children.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import attrs

T = TypeVar("T")

SWEEPS = 4


@attrs.frozen
class Placed:
    """A node's layer (row) and position within it (column, from 0)."""

    layer: int
    index: int


def _back_edges(nodes: Sequence[str], succ: dict[str, list[str]]) -> set[tuple[str, str]]:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for root in nodes:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            nxt = next(children, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return back


def layered(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> dict[str, Placed]:
    """Layer and order the nodes of a directed graph (self-loops are ignored)."""
    order = sorted(set(nodes))
    succ: dict[str, list[str]] = {n: [] for n in order}
    pairs = sorted({(a, b) for a, b in edges if a != b and a in succ and b in succ})
    for a, b in pairs:
        succ[a].append(b)
    back = _back_edges(order, succ)
    forward = [(b, a) if (a, b) in back else (a, b) for a, b in pairs]
    preds: dict[str, list[str]] = defaultdict(list)
    for a, b in forward:
        preds[b].append(a)
    layer: dict[str, int] = {}

    def depth(node: str) -> int:
        # Iterative longest path from a source (the forward graph is acyclic).
        stack = [node]
        while stack:
            top = stack[-1]
            missing = [p for p in preds[top] if p not in layer]
            if missing:
                stack.extend(missing)
                continue
            layer[top] = 1 + max((layer[p] for p in preds[top]), default=-1)
            stack.pop()
        return layer[node]

    for node in order:
        depth(node)
    rows: dict[int, list[str]] = defaultdict(list)
    for node in order:
        rows[layer[node]].append(node)
    neighbours: dict[str, list[str]] = defaultdict(list)
    for a, b in forward:
        neighbours[a].append(b)
        neighbours[b].append(a)
    _reduce_crossings(rows, neighbours)
    return {n: Placed(r, i) for r, row in rows.items() for i, n in enumerate(row)}


def _reduce_crossings(rows: dict[int, list[str]], neighbours: dict[str, list[str]]) -> None:
    """Barycentre sweeps down and up: each node moves to the mean index of its neighbours in
    the layers already placed."""
    for sweep in range(SWEEPS):
        layers = sorted(rows) if sweep % 2 == 0 else sorted(rows, reverse=True)
        position = {n: i for row in rows.values() for i, n in enumerate(row)}
        for r in layers[1:]:

            def centre(node: str, pos: dict[str, int] = position) -> float:
                near = [pos[m] for m in neighbours[node] if m in pos]
                return sum(near) / len(near) if near else float(pos[node])

            rows[r] = sorted(rows[r], key=lambda n: (centre(n), n))
            position.update({n: i for i, n in enumerate(rows[r])})


def tidy_tree(
    root: T, children: Callable[[T], Sequence[T]]
) -> list[tuple[T, int, float, T | None]]:
    """``(node, depth, column, parent)`` for every node, parents first; leaves take whole
    columns 0, 1, 2… and a parent sits at the mean column of its first and last child."""
    placed: list[tuple[T, int, float, T | None]] = []
    next_leaf = [0.0]

    def place(node: T, depth: int, parent: T | None) -> float:
        index = len(placed)
        placed.append((node, depth, 0.0, parent))
        kids = children(node)
        if not kids:
            column = next_leaf[0]
            next_leaf[0] += 1
        else:
            columns = [place(kid, depth + 1, node) for kid in kids]
            column = (columns[0] + columns[-1]) / 2
        placed[index] = (node, depth, column, parent)
        return column

    place(root, 0, None)
    return placed
