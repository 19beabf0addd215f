"""The topology page: the collaboration graph drawn as a graph, then its figures as tables."""

from __future__ import annotations

from rnix_actors.dashboard.data import topology_view
from rnix_actors.dashboard.html import Page, Region, esc
from rnix_actors.dashboard.svg_graph import reinforced_hops, topology_svg
from rnix_actors.system import System
from rnix_actors.topology.graph import COLLABORATION, sort_edges
from rnix_actors.topology.render import HIGH_SUBSTITUTABILITY, TopologyView

LEGEND = (
    '<p class="mute">Edges: <b>spawn</b> (grey), <b>pipe</b> (blue), <b>msg</b> (purple), '
    "<b>migration</b> (red, dashed); reinforced hops in <b>gold</b>; capability overlap as "
    "green dotted links.</p>"
)


def _edges_table(view: TopologyView) -> str:
    hot = reinforced_hops(view)
    rows = "".join(
        f'<tr class="edge-row" data-kind="{e.kind}"><td>{esc(e.source)}</td><td>→</td>'
        f'<td>{esc(e.target)}</td><td>{e.kind}</td><td class="num">{e.count}</td>'
        f"<td>{'★' if e.kind in COLLABORATION and (e.source, e.target) in hot else ''}</td>"
        f"<td>{esc(e.label)}</td></tr>"
        for e in sort_edges(view.edges)
    )
    return (
        "<table><thead><tr><th>From</th><th></th><th>To</th><th>Kind</th>"
        '<th class="num">Count</th><th>Reinforced</th><th>Label</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _paths(view: TopologyView) -> str:
    if not view.paths:
        return f'<p class="mute">None yet: every hop of a path needs {view.threshold}+ uses.</p>'
    items = "".join(
        f'<li class="path">★ {" → ".join(esc(a) for a in p.agents)}'
        f'{f" ({esc(p.label)})" if p.label else ""} <span class="mute">weakest hop '
        f"{p.weakest}</span></li>"
        for p in view.paths
    )
    return f"<ul>{items}</ul>"


def _overlap(view: TopologyView) -> str:
    shown = sorted(
        (o for o in view.overlap if o.score >= view.min_overlap), key=lambda o: (-o.score, o.a)
    )
    if not shown:
        return f'<p class="mute">No pair of agents reaches {view.min_overlap:.0%}.</p>'
    rows = "".join(
        f"<tr><td>{esc(o.a)} ↔ {esc(o.b)}</td><td class=num>{o.score:.0%}</td><td>"
        f"{'high' if o.score >= HIGH_SUBSTITUTABILITY else 'moderate'} substitutability</td></tr>"
        for o in shown
    )
    return f"<table><tbody>{rows}</tbody></table>"


def topology_page(system: System) -> Page:
    view = topology_view(system)
    if view is None:
        unavailable = '<p class="mute">The topology keeper is not running.</p>'
        graph = edges = paths = overlap = unavailable
    else:
        graph, edges = topology_svg(view), _edges_table(view)
        paths, overlap = _paths(view), _overlap(view)
    return Page(
        "Topology",
        "/topology",
        (
            "<h1>Agent collaboration topology</h1>",
            LEGEND,
            Region("graph", graph),
            '<div class="cols"><div><h2>Reinforced paths (auto-optimized)</h2>',
            Region("paths", paths, cls="card"),
            "<h2>Capability overlap</h2>",
            Region("overlap", overlap, cls="card"),
            "</div><div><h2>Edges</h2>",
            Region("edges", edges),
            "</div></div>",
        ),
    )
