"""`RayBackend`: the kernel's `Launcher` for agent processes spread over a Ray cluster.

One `AgentHost` actor per node of the cluster (pinned to it, restarted by Ray up to
``ray.max_restarts`` times). The head's kernel keeps deciding everything (PIDs, the table,
signals, spawn safety); this backend only chooses a host for each new process (the least
loaded one whose node fits the template's ``placement:``), ships it there, and keeps one
`HostLink` per host that carries the kernel's messages in order and brings back the host's
events, exits and live figures.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from rnix_actors.config import RayConfig
from rnix_actors.errors import SpawnError
from rnix_actors.kernel import links
from rnix_actors.kernel.devices import DeviceRegistry
from rnix_actors.kernel.launch import ProcessHandle
from rnix_actors.kernel.spec import ProcessSpec
from rnix_actors.messages.process import Reaped
from rnix_actors.ray.host import AgentHost
from rnix_actors.ray.hostlink import HostLink, Remote, RemoteHandle
from rnix_actors.ray.placement import Candidate, choose
from rnix_actors.ray.shipping import immune_key, ship_spec
from rnix_actors.ray.wire import HostSetup, LinkExit, Spawn, Tell

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # a host's first answer: a new node may still be importing
PRIVATE_STORE = 100 * 1024 * 1024  # object store bytes of a private Ray instance


@attrs.frozen
class NodeView:
    """One host, as ``rnix nodes`` shows it."""

    name: str
    node_id: str
    address: str
    state: str  # alive | lost | dead | stopped
    processes: int
    restarts: int
    resources: dict[str, float]
    os_pid: int  # the host's worker process on its machine

    def to_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


class RayBackend:
    def __init__(
        self,
        config: RayConfig,
        setup: HostSetup,
        devices: DeviceRegistry,
        proc_status: Callable[[int], dict[str, Any] | None],
        checkpoints: Callable[[], Any] = lambda: None,
    ) -> None:
        self.config = config
        self.setup = setup
        self.devices = devices
        self.proc_status = proc_status
        self.checkpoints = checkpoints  # the head's CheckpointStore, or None when off
        self.system_id = uuid.uuid4().hex[:8]
        self.namespace = config.namespace or f"rnix-{self.system_id}"
        self.hosts: list[HostLink] = []
        self.kernel: Any = None
        self.bus: Any = None
        self.executor = ThreadPoolExecutor(4, thread_name_prefix="ray-asks")
        self.owns_ray = False
        self._immune: dict[str, Any] = {}  # immune key -> the head's ImmuneGuard

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, kernel: Any, bus: Any) -> None:
        """Join (or start) Ray and start one host per live node; raises on failure, with
        nothing of ours left running."""
        import ray

        self.kernel, self.bus = kernel, bus
        if not ray.is_initialized():
            options: dict[str, Any] = {
                "namespace": self.namespace,
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            if self.config.address:
                ray.init(address=self.config.address, **options)
            else:  # a private instance on this machine; messages here are small
                ray.init(address="local", object_store_memory=PRIVATE_STORE, **options)
            self.owns_ray = True
        try:
            self._start_hosts()
        except BaseException:
            self.stop(10.0)
            raise

    def _start_hosts(self) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote = ray.remote(AgentHost)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        pending = []
        for node in nodes:
            node_id = str(node["NodeID"])
            name = f"rnix-host-{self.system_id}-{node_id[:8]}"
            setup = attrs.evolve(self.setup, label=node_id[:8])
            actor = remote.options(
                name=name,
                namespace=self.namespace,
                num_cpus=0,
                max_restarts=self.config.max_restarts,
                max_task_retries=0,
                max_concurrency=8,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            ).remote(setup)
            link = HostLink(self, actor, name, node_id, node)
            self.hosts.append(link)
            pending.append((link, actor.status.remote()))
        for link, ref in pending:
            link.start(ray.get(ref, timeout=START_TIMEOUT))

    def stop(self, timeout: float) -> None:
        """Shut every host down (its processes are killed, its threads joined), kill the
        actors, and leave Ray if this backend joined it."""
        import ray

        for link in self.hosts:
            link.stop(timeout)
        shutdowns = []
        for link in self.hosts:
            if link.state in ("alive", "starting", "lost"):
                with contextlib.suppress(Exception):
                    shutdowns.append(link.actor.shutdown.remote(timeout / 2))
        with contextlib.suppress(Exception):
            ray.wait(shutdowns, num_returns=len(shutdowns), timeout=timeout)
        for link in self.hosts:
            with contextlib.suppress(Exception):
                ray.kill(link.actor, no_restart=True)
            link.state = "stopped"
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self.owns_ray:
            self.owns_ray = False
            ray.shutdown()

    # -- the Launcher ----------------------------------------------------------------------
    def launch(self, spec: ProcessSpec) -> ProcessHandle:
        candidates = [
            Candidate(h.name, h.alive, h.load, h.placed, resources=h.resources, labels=h.labels)
            for h in self.hosts
        ]
        chosen = choose(candidates, spec.template.placement, spec.template.name)
        link = next(h for h in self.hosts if h.name == chosen.name)
        for guard in spec.guards:
            found = immune_key(guard)
            if found is not None:
                self._immune[found[0]] = found[1]
        ship, new = ship_spec(spec, link.shipped, self.devices, self.setup.providers)
        endpoint, pid = spec.endpoint, spec.pid
        assert endpoint is not None
        # Known and linked before it runs, as a local process is: its first figures and a
        # quick exit cannot arrive before the head is ready for them.
        with link.lock:
            link.procs[pid] = Remote(pid, endpoint, spec.control.figures, spec.tree_budget)
        endpoint.on_signal = lambda exit: link.send(LinkExit(pid, exit.source.label, exit.reason))
        for other in spec.links:
            links.link(endpoint, other)
        try:
            answer = link.call(Spawn(ship))
        except BaseException:
            self._forget(link, pid)
            raise
        if answer is not None:
            self._forget(link, pid)
            raise SpawnError(f"spawn rejected by {link.name}: {answer}")
        link.shipped.objects.update(new)
        for shipped in ship.guards:
            if shipped.immune and shipped.snapshot is not None:
                link.shipped.snapshots[shipped.key] = shipped.snapshot
        with link.lock:
            link.placed += 1
        return RemoteHandle(link, pid, lambda: spec.control.cancel.reason)

    @staticmethod
    def _forget(link: HostLink, pid: int) -> None:
        """A spawn that did not happen: the kernel ends the endpoint (its links hear). A
        spawn that timed out may still reach the host: it is reaped there on arrival."""
        with link.lock:
            link.procs.pop(pid, None)
        link.send(Tell(pid, Reaped(), cancel="its spawn failed on the head"))

    def node_of(self, handle: ProcessHandle) -> str:
        return handle.link.name if isinstance(handle, RemoteHandle) else ""

    # -- what host links ask of the head ---------------------------------------------------
    def node_alive(self, node_id: str) -> bool:
        import ray

        try:
            return any(n["NodeID"] == node_id and n.get("Alive") for n in ray.nodes())
        except Exception:
            return True  # the GCS does not answer either: let lost_after decide

    def snapshot(self, key: str) -> Any:
        guard = self._immune.get(key)
        return None if guard is None else guard.shared.snapshot

    def report(self, key: str, report: Any) -> None:
        guard = self._immune.get(key)
        if guard is not None:
            guard.report(report)

    def adopt_record(self, key: str, pid: int, record: Any) -> None:
        guard = self._immune.get(key)
        if guard is not None:
            guard.shared.adopt(pid, record)

    def nodes(self) -> list[NodeView]:
        return [
            NodeView(
                h.name, h.node_id, h.address, h.state, h.load, h.restarts, h.resources, h.os_pid
            )
            for h in self.hosts
        ]
