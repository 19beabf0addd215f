"""The collaboration topology: directed edges from real traffic, reinforced paths.

    topology = attach_topology(system, system.store)
    ...
    print(topology.view().text())          # the ``rnix topology`` format

`attach_topology` subscribes to the system's events (agent ``spawn`` → parent-template →
child-template edge; a delivered ``Send`` → sender → receiver ``msg`` edge) and starts the
`TopologyKeeper` actor, which owns the graph and persists every change. Pipes and the compose
engine record ``pipe`` edges and the migration planner ``migration`` edges with `Topology.record`.
"""

from __future__ import annotations

from rnix_actors.messages.topology import EdgeKind
from rnix_actors.topology.actor import (
    DEFAULT_THRESHOLD,
    Topology,
    TopologyHost,
    TopologyKeeper,
    attach_topology,
    stored_edges,
)
from rnix_actors.topology.graph import Edge, ReinforcedPath, collaboration_pairs, reinforced_paths
from rnix_actors.topology.render import Overlap, TopologyView

__all__ = [
    "DEFAULT_THRESHOLD",
    "Edge",
    "EdgeKind",
    "Overlap",
    "ReinforcedPath",
    "Topology",
    "TopologyHost",
    "TopologyKeeper",
    "TopologyView",
    "attach_topology",
    "collaboration_pairs",
    "reinforced_paths",
    "stored_edges",
]
