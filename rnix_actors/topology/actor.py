"""The `TopologyKeeper` actor and its thin `Topology` handle."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pykka

from rnix_actors.errors import RnixError, SystemStopped
from rnix_actors.kernel.asking import unresponsive
from rnix_actors.kernel.base import Launch, RnixActor, launch_here
from rnix_actors.kernel.process import ProcessInfo
from rnix_actors.messages.events import Event
from rnix_actors.messages.topology import EdgeKind, QueryEdges, RecordEdge
from rnix_actors.store.db import Store, with_own_connection
from rnix_actors.topology.graph import Edge, ReinforcedPath, collaboration_pairs, reinforced_paths
from rnix_actors.topology.render import Overlap, TopologyView
from rnix_actors.topology.store import TopologyStore

ASK_TIMEOUT = 10.0
DEFAULT_THRESHOLD = 5  # the Go original's reinforcement threshold


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class TopologyHost(Protocol):
    """What the topology needs from the system (`rnix_actors.System` fits)."""

    def subscribe(
        self, callback: Callable[[Event], None], syscalls: Iterable[str] | None = None
    ) -> Cancellable: ...

    def info(self, pid: int) -> ProcessInfo:
        """Raises `NoSuchProcess` for an unknown pid."""
        ...


class TopologyKeeper(RnixActor):
    """Owns the graph; every change is persisted in its own transaction before it counts.
    Each incarnation owns its store connection (closed when it ends) and reloads the graph;
    a failed write crashes it, and the restart reopens the connection."""

    def __init__(self, host: TopologyHost, db: TopologyStore) -> None:
        super().__init__()
        self.host = host
        self.db = db
        self.at_end(db.store.close)
        self.counts: dict[tuple[str, str, EdgeKind], int] = defaultdict(int)
        self.labels: dict[tuple[str, str, EdgeKind], str] = {}

    def started(self) -> None:
        for edge in self.db.load():
            key = (edge.source, edge.target, edge.kind)
            self.counts[key] = edge.count
            self.labels[key] = edge.label

    def handle(self, message: Any) -> Any:
        match message:
            case RecordEdge(kind=kind, source=source, target=target, label=label, count=n):
                self._add(kind, source, target, label, n)
            case Event(syscall="Start", template=child, args=args):
                parent = str(args.get("parent_template") or "")
                if args.get("agent_spawn") and parent and child:
                    self._add("spawn", parent, child, "", 1)
            case Event(syscall="Send", template=sender, args=args, error=""):
                with contextlib.suppress(RnixError, KeyError, TypeError, ValueError):
                    receiver = self.host.info(int(args["pid"])).template
                    if sender and receiver:
                        self._add("msg", sender, receiver, "", 1)
            case QueryEdges():
                return [
                    Edge(s, t, k, n, self.labels.get((s, t, k), ""))
                    for (s, t, k), n in self.counts.items()
                ]
            case _:
                self.unhandled(message)
        return None

    def _add(self, kind: EdgeKind, source: str, target: str, label: str, n: int) -> None:
        self.db.add(source, target, kind, n, label)
        key = (source, target, kind)
        self.counts[key] += n
        if label:
            self.labels[key] = label


def _forwarder(ref: pykka.ActorRef[TopologyKeeper]) -> Callable[[Event], None]:
    """The event-bus subscriber: only agent spawns and delivered sends travel on."""

    def forward(event: Event) -> None:
        relevant = (event.syscall == "Start" and event.args.get("agent_spawn")) or (
            event.syscall == "Send" and not event.error
        )
        if relevant:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(event)

    return forward


class Topology:
    """A thread-safe handle on the `TopologyKeeper`. Queries raise `SystemStopped` after
    `stop` and `Unresponsive` if the keeper does not answer within 10 s."""

    def __init__(
        self,
        ref: pykka.ActorRef[TopologyKeeper],
        subscription: Cancellable | None,
        threshold: int = DEFAULT_THRESHOLD,
    ) -> None:
        self._ref = ref
        self._subscription = subscription
        self.threshold = threshold

    def record(self, kind: EdgeKind, source: str, target: str, label: str = "") -> None:
        """Count one use of ``source → target`` (asynchronously; `edges` sees it after)."""
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.tell(RecordEdge(kind, source, target, label))

    def edges(self) -> list[Edge]:
        """Every edge, after everything recorded before this call."""
        try:
            edges: list[Edge] = self._ref.ask(QueryEdges(), block=True, timeout=ASK_TIMEOUT)
        except pykka.ActorDeadError:
            raise SystemStopped("the topology keeper is not running") from None
        except pykka.Timeout:
            raise unresponsive("topology keeper", ASK_TIMEOUT) from None
        return edges

    def collaboration(self) -> dict[tuple[str, str], int]:
        """Collaboration counts per unordered pair (the similarity matrix's history)."""
        return collaboration_pairs(self.edges())

    def reinforced_paths(self) -> list[ReinforcedPath]:
        return reinforced_paths(self.edges(), self.threshold)

    def view(self, overlap: Sequence[Overlap] = (), min_overlap: float = 0.5) -> TopologyView:
        edges = self.edges()
        paths = reinforced_paths(edges, self.threshold)
        return TopologyView(tuple(edges), tuple(paths), self.threshold, tuple(overlap), min_overlap)

    def stop(self) -> None:
        """Unsubscribe and stop the keeper (pending records are persisted first). Idempotent."""
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.stop(timeout=ASK_TIMEOUT)


def attach_topology(
    host: TopologyHost,
    store: Store,
    threshold: int = DEFAULT_THRESHOLD,
    launch: Launch = launch_here,
) -> Topology:
    """Start recording ``host``'s collaboration traffic into ``store``.

    Raises `ValueError` for ``threshold < 1`` and `RuntimeError` if the store's topology
    schema is newer than this code; nothing is left started on failure.
    """
    if threshold < 1:
        raise ValueError(f"reinforcement_threshold must be >= 1 (got {threshold})")
    ref = launch(
        "topology",
        lambda: with_own_connection(
            store, "topology", lambda own: TopologyKeeper.start(host, TopologyStore(own))
        ),
    )
    try:
        subscription = host.subscribe(_forwarder(ref), ("Start", "Send"))
    except BaseException:
        ref.stop()
        raise
    return Topology(ref, subscription, threshold)


def stored_edges(db_path: Path) -> list[Edge]:
    """The edges persisted in a state dir's ``rnix.db`` (for the CLI, no system running)."""
    if not db_path.exists():
        return []
    store = Store(db_path)
    try:
        return TopologyStore(store).load()
    finally:
        store.close()
