"""Inline SVG of the collaboration graph and of supervision trees (layouts in `layout`)."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence

from rnix_actors.dashboard.html import esc
from rnix_actors.dashboard.layout import Placed, layered, tidy_tree
from rnix_actors.supervision.views import ChildView, SupervisorView
from rnix_actors.topology import Edge, TopologyView
from rnix_actors.topology.graph import COLLABORATION

NODE_W, NODE_H = 150, 34
COL_W, ROW_H, MARGIN = 190, 120, 30
ARROWS = ("spawn", "pipe", "msg", "migration", "gold")
_COLOURS = {
    "spawn": "#8a93a8",
    "pipe": "#2f8fd0",
    "msg": "#7a5cc2",
    "migration": "#c0392b",
    "gold": "#d4a017",
}


def _markers() -> str:
    return (
        "<defs>"
        + "".join(
            f'<marker id="arrow-{k}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="10" '
            f'markerHeight="10" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
            f'<path d="M0,0L10,5L0,10z" '
            f'fill="{_COLOURS[k]}"/></marker>'
            for k in ARROWS
        )
        + "</defs>"
    )


def _clip(cx: float, cy: float, tx: float, ty: float) -> tuple[float, float]:
    """Where the line from a node's centre towards (tx, ty) leaves its box."""
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(
        (NODE_W / 2) / abs(dx) if dx else math.inf, (NODE_H / 2) / abs(dy) if dy else math.inf
    )
    return cx + dx * scale, cy + dy * scale


def positions(placed: dict[str, Placed]) -> tuple[dict[str, tuple[float, float]], int, int]:
    """Node centres (each layer centred) and the picture's width and height."""
    rows: dict[int, int] = defaultdict(int)
    for p in placed.values():
        rows[p.layer] = max(rows[p.layer], p.index + 1)
    widest = max(rows.values(), default=1)
    width = MARGIN * 2 + widest * COL_W
    centres = {
        name: (
            (width - rows[p.layer] * COL_W) / 2 + p.index * COL_W + COL_W / 2,
            MARGIN + p.layer * ROW_H + NODE_H / 2,
        )
        for name, p in placed.items()
    }
    height = MARGIN * 2 + (max(rows, default=0) + 1) * ROW_H - (ROW_H - NODE_H)
    return centres, width, height


def _edge(
    edge: Edge, a: tuple[float, float], b: tuple[float, float], bend: float, hot: bool
) -> str:
    kind = edge.kind
    classes = f"edge kind-{kind}" + (" reinforced" if hot else "")
    marker = "gold" if hot else kind
    label = f"{kind}: {edge.count}"
    data = (
        f'data-source="{esc(edge.source)}" data-target="{esc(edge.target)}" '
        f'data-kind="{kind}" data-count="{edge.count}"'
    )
    if edge.source == edge.target:  # a loop on the node's right side
        x, y = a[0] + NODE_W / 2, a[1]
        d = (
            f"M{x:.1f},{y - 8:.1f} C{x + 60:.1f},{y - 40:.1f} {x + 60:.1f},{y + 40:.1f} "
            f"{x:.1f},{y + 8:.1f}"
        )
        lx, ly = x + 48, y - 22
    else:
        mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        length = math.hypot(b[0] - a[0], b[1] - a[1]) or 1.0
        cx = mx - (b[1] - a[1]) / length * bend
        cy = my + (b[0] - a[0]) / length * bend
        sx, sy = _clip(a[0], a[1], cx, cy)
        ex, ey = _clip(b[0], b[1], cx, cy)
        d = f"M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}"
        lx, ly = (sx + 2 * cx + ex) / 4, (sy + 2 * cy + ey) / 4
    return (
        f'<g class="{classes}" {data}><path d="{d}" marker-end="url(#arrow-{marker})"/>'
        f'<text x="{lx:.1f}" y="{ly - 3:.1f}" text-anchor="middle">{esc(label)}</text>'
        f"<title>{esc(edge.source)} → {esc(edge.target)} ({esc(label)})</title></g>"
    )


def reinforced_hops(view: TopologyView) -> set[tuple[str, str]]:
    return {hop for path in view.paths for hop in itertools.pairwise(path.agents)}


def topology_svg(view: TopologyView) -> str:
    """The directed collaboration graph: layered, edges labelled ``kind: count``, reinforced
    hops in gold, capability overlap (at or above the view's minimum) as dotted links."""
    nodes = {e.source for e in view.edges} | {e.target for e in view.edges}
    if not nodes:
        return '<p class="mute">No collaboration recorded yet.</p>'
    centres, width, height = positions(layered(nodes, [(e.source, e.target) for e in view.edges]))
    hot = reinforced_hops(view)
    parts = [_markers()]
    for o in view.overlap:
        if o.score >= view.min_overlap and o.a in centres and o.b in centres:
            (x1, y1), (x2, y2) = centres[o.a], centres[o.b]
            parts.append(
                f'<g class="overlap" data-a="{esc(o.a)}" data-b="{esc(o.b)}">'
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>'
                f"<title>{esc(o.a)} ↔ {esc(o.b)}: {o.score:.0%} capability overlap</title></g>"
            )
    groups: dict[frozenset[str], list[Edge]] = defaultdict(list)
    for edge in sorted(view.edges, key=lambda e: (e.source, e.target, e.kind)):
        groups[frozenset((edge.source, edge.target))].append(edge)
    for group in groups.values():
        for i, edge in enumerate(group):
            bend = (i - (len(group) - 1) / 2) * 34 + (12 if len(group) == 1 else 0)
            is_hot = edge.kind in COLLABORATION and (edge.source, edge.target) in hot
            parts.append(_edge(edge, centres[edge.source], centres[edge.target], bend, is_hot))
    for name, (x, y) in sorted(centres.items()):
        parts.append(
            f'<g class="node" data-name="{esc(name)}"><rect x="{x - NODE_W / 2:.1f}" '
            f'y="{y - NODE_H / 2:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle">{esc(name)}</text></g>'
        )
    return (
        f'<svg id="topology-graph" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="collaboration graph">{"".join(parts)}</svg>'
    )


TREE_W, TREE_H, TREE_COL, TREE_ROW = 200, 62, 215, 96

Node = SupervisorView | ChildView


def _kids(node: Node) -> Sequence[Node]:
    if isinstance(node, SupervisorView):
        return node.children
    return node.supervisor.children if node.supervisor is not None else ()


def _cut(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _node_lines(node: Node) -> tuple[str, str, list[str]]:
    """(css classes, title line, detail lines) of one box."""
    if isinstance(node, SupervisorView) or node.supervisor is not None:
        sup = node if isinstance(node, SupervisorView) else node.supervisor
        assert sup is not None
        lines = [
            f"{sup.strategy} · {sup.status}",
            f"restarts {sup.restarts}/{sup.max_restarts} in {sup.max_window:g}s",
        ]
        if isinstance(node, ChildView):
            lines.append(f"restarted {node.restarts}× · {node.restart}")
        return f"node sup {sup.status}", sup.name, lines
    pid = f"PID {node.pid} {node.state}" if node.pid is not None else "no process"
    lines = [f"{node.agent} · {pid}", f"{node.status} · restarts {node.restarts} · {node.restart}"]
    if node.last_exit:
        lines.append(f"last exit: {node.last_exit}")
    return f"node agent {node.status}", node.name, lines


def supervision_svg(view: SupervisorView) -> str:
    """One supervision tree top-down: supervisors and agent children as boxes."""
    root: Node = view
    placed = tidy_tree(root, _kids)
    columns = max(int(c) for _, _, c, _ in placed) + 1
    depth = max(d for _, d, _, _ in placed) + 1
    width = MARGIN * 2 + columns * TREE_COL
    height = MARGIN * 2 + depth * TREE_ROW
    where: dict[int, tuple[float, float]] = {}
    links, boxes = [], []
    for node, level, column, parent in placed:
        x = MARGIN + column * TREE_COL + TREE_COL / 2
        y = MARGIN + level * TREE_ROW
        where[id(node)] = (x, y)
        if parent is not None:
            px, py = where[id(parent)]
            links.append(
                f'<g class="link"><line x1="{px:.1f}" y1="{py + TREE_H:.1f}" '
                f'x2="{x:.1f}" y2="{y:.1f}"/></g>'
            )
        classes, title, lines = _node_lines(node)
        path = node.path
        text = "".join(
            f'<text class="small" x="{x - TREE_W / 2 + 8:.1f}" y="{y + 32 + 13 * i:.1f}">'
            f"{esc(_cut(line, 34))}</text>"
            for i, line in enumerate(lines[:3])
        )
        boxes.append(
            f'<g class="{esc(classes)}" data-path="{esc(path)}">'
            f'<rect x="{x - TREE_W / 2:.1f}" y="{y:.1f}" width="{TREE_W}" height="{TREE_H}" '
            f'rx="6"/><text x="{x - TREE_W / 2 + 8:.1f}" y="{y + 17:.1f}">{esc(_cut(title))}'
            f"</text>{text}<title>{esc(path)}: {esc(' / '.join(lines))}</title></g>"
        )
    return (
        f'<svg class="sup-tree" data-path="{esc(view.path)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="supervision tree '
        f'{esc(view.name)}">{"".join(links)}{"".join(boxes)}</svg>'
    )
