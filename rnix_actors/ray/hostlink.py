"""The head's side of one host: an ordered sender, a long-polling pump, its processes.

The sender sends queued items in order, one `AgentHost.deliver` call at a time (items queue
up while a call is in flight, so a busy head sends large batches). The pump drains the host's
outbox and hands each item to the head: events to the bus, exits and state changes to the
kernel, asks answered through the sender. When the host dies, restarts (a new incarnation)
or its node leaves the cluster, every process it ran is lost: the kernel ends each with exit
kind ``node_lost`` and their links hear of it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import attrs

from rnix_actors.errors import RnixError, SpawnError
from rnix_actors.kernel import links
from rnix_actors.kernel.links import Endpoint
from rnix_actors.kernel.process import Signal
from rnix_actors.kernel.spec import LiveFigures
from rnix_actors.kernel.treebounds import BUDGET_ORIGIN, TreeBudget
from rnix_actors.messages.events import EventBatch
from rnix_actors.messages.kernel import ProcessLost, SendSignal
from rnix_actors.messages.process import Reaped
from rnix_actors.ray.shipping import Shipped
from rnix_actors.ray.wire import (
    Anomaly,
    Ask,
    CheckpointWrite,
    Down,
    Drained,
    Events,
    Figures,
    NewSnapshot,
    ProcQuery,
    Reply,
    Tell,
    ToKernel,
)

log = logging.getLogger(__name__)

POLL = 0.5  # seconds a drain waits on an idle host
CALL_TIMEOUT = 30.0


@attrs.define
class Remote:
    """A process as the head keeps it while it runs on a host."""

    pid: int
    endpoint: Endpoint
    figures: LiveFigures
    budget: TreeBudget | None
    tokens: int = 0
    cost: float = 0.0


class RemoteHandle:
    """The `ProcessHandle` of a process on a host: the kernel's tells travel there in order."""

    def __init__(self, link: HostLink, pid: int, cancel_reason: Callable[[], str]) -> None:
        self.link = link
        self.pid = pid
        self._cancel_reason = cancel_reason

    def tell(self, message: object) -> None:
        # The kernel cancelled the call in flight on its side (SIGKILL, a stop): so does the host.
        cancel = (self._cancel_reason() or "killed") if isinstance(message, Reaped) else ""
        self.link.send(Tell(self.pid, message, cancel))


class HostLink:
    def __init__(self, head: Any, actor: Any, name: str, node_id: str, info: Any) -> None:
        self.head = head  # the RayBackend: kernel, bus, immune reports, proc status
        self.actor = actor
        self.name = name
        self.node_id = node_id
        self.resources: dict[str, float] = dict(info.get("Resources") or {})
        self.labels: dict[str, str] = dict(info.get("Labels") or {})
        self.address = str(info.get("NodeManagerAddress") or "")
        self.state = "starting"
        self.incarnation = ""
        self.os_pid = 0
        self.restarts = 0
        self.placed = 0
        # The remote processes and the placed count: the backend's launch adds and forgets
        # them on the spawning thread, this link's pump thread ends them (Down, a lost host)
        # and updates their figures, placement reads the load.
        self.lock = threading.Lock()
        self.procs: dict[int, Remote] = {}
        self.shipped = Shipped()
        # The send queue: any head thread sends (the kernel's, the answering executor's, the
        # pump's) and the send thread waits on it, to batch them into one `deliver`.
        self._cond = threading.Condition()
        self._queue: list[tuple[Any, Future[Any] | None]] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unreachable_since: float | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, status: Any) -> None:
        self.incarnation, self.os_pid = status.incarnation, status.os_pid
        self.state = "alive"
        for target, label in ((self._send_loop, "send"), (self._pump_loop, "pump")):
            thread = threading.Thread(target=target, name=f"{self.name}-{label}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> None:
        """Stop sending and polling (the host itself is shut down by the backend)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.state == "alive"

    @property
    def load(self) -> int:
        with self.lock:
            return len(self.procs)

    # -- head -> host ----------------------------------------------------------------------
    def send(self, item: Any) -> None:
        if not self.alive:
            return  # its processes are lost: nothing of theirs runs to be told
        with self._cond:
            self._queue.append((item, None))
            if len(self._queue) == 1:
                self._cond.notify_all()

    def call(self, item: Any, timeout: float = CALL_TIMEOUT) -> Any:
        """Send ``item`` and wait for the host's answer to it."""
        if not self.alive:
            raise SpawnError(f"spawn rejected: {self.name} is {self.state}")
        future: Future[Any] = Future()
        with self._cond:
            self._queue.append((item, future))
            self._cond.notify_all()
        return future.result(timeout)

    def _send_loop(self) -> None:
        import ray

        while not self._stopping.is_set():
            with self._cond:
                while not self._queue and not self._stopping.is_set():
                    self._cond.wait(POLL)
                batch, self._queue = self._queue, []
            if not batch:
                continue
            try:
                ref = self.actor.deliver.remote(self.incarnation, [item for item, _ in batch])
                answers = ray.get(ref, timeout=CALL_TIMEOUT)
            except Exception as exc:  # the pump decides whether the host is lost
                for _, future in batch:
                    if future is not None:
                        future.set_exception(SpawnError(f"{self.name} did not answer: {exc}"))
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                if future is not None:
                    future.set_result(answer)

    # -- host -> head ----------------------------------------------------------------------
    def _pump_loop(self) -> None:
        import ray

        while not self._stopping.is_set():
            self._refresh_snapshots()
            try:
                drained = ray.get(self.actor.drain.remote(POLL), timeout=POLL + 10.0)
            except (ray.exceptions.ActorDiedError, ray.exceptions.ActorUnschedulableError) as exc:
                # Gone for good: dead past max_restarts, or pinned to a node that left.
                self._lost(f"its actor is gone: {type(exc).__name__}")
                self.state = "dead"
                return
            except Exception as exc:  # unavailable, a timeout, a broken connection
                if self._stopping.is_set():
                    return
                self._unreachable(type(exc).__name__)
                self._stopping.wait(0.2)
                continue
            self._unreachable_since = None
            self._handle(drained)

    def _unreachable(self, why: str) -> None:
        """The host does not answer: lost at once if its node is gone, or after
        ``lost_after`` seconds; a host that answers again later is checked by incarnation."""
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
        if not self.head.node_alive(self.node_id):
            self._lost(f"node {self.node_id[:12]} left the cluster ({why})")
            self.state = "lost"
        elif now - self._unreachable_since >= self.head.config.lost_after:
            self._lost(f"unreachable for {now - self._unreachable_since:.0f}s ({why})")
            self.state = "lost"

    def _handle(self, drained: Drained) -> None:
        if drained.incarnation != self.incarnation:
            # Ray restarted the host (max_restarts): what ran in the old one is gone.
            self._lost(f"its actor restarted (incarnation {drained.incarnation[:8]})")
            self.incarnation, self.os_pid = drained.incarnation, drained.os_pid
            self.restarts += 1
            self.shipped.clear()
            self.state = "alive"
        elif self.state == "lost":
            # Back after its processes were declared lost: they must not run on unseen.
            # Killing the actor makes Ray start a fresh one (a new incarnation), or none.
            import ray

            with contextlib.suppress(Exception):
                ray.kill(self.actor, no_restart=False)
            return
        for item in drained.items:
            try:
                self._item(item)
            except Exception:
                log.exception("%s: %s failed", self.name, type(item).__name__)

    def _item(self, item: Any) -> None:
        head = self.head
        match item:
            case Events(events=events):
                head.bus.tell(EventBatch(events))
            case ToKernel(message=message, records=records):
                for key, record in records:
                    head.adopt_record(key, message.pid, record)
                head.kernel.tell(message)
            case Ask(request=request, message=message):
                self._ask(request, message)
            case Down(pid=pid, reason=reason):
                with self.lock:
                    remote = self.procs.pop(pid, None)
                if remote is not None:
                    links.exit(remote.endpoint, reason)
            case Figures(rows=rows):
                self._figures(rows)
            case Anomaly(key=key, report=report):
                head.report(key, report)

    def _ask(self, request: int, message: Any) -> None:
        if isinstance(message, ProcQuery):
            self.send(Reply(request, True, self.head.proc_status(message.pid)))
            return
        if isinstance(message, CheckpointWrite):
            self.head.executor.submit(self._checkpoint, request, message)
            return
        future = self.head.kernel.ask(message, block=False)
        self.head.executor.submit(self._answer, request, future)

    def _answer(self, request: int, future: Any) -> None:
        try:
            value = future.get(timeout=CALL_TIMEOUT)
        except SpawnError as exc:  # rebuilt from its text: every error class pickles then
            self.send(Reply(request, False, SpawnError(str(exc))))
            return
        except RnixError as exc:
            self.send(Reply(request, False, RnixError(str(exc))))
            return
        except Exception as exc:
            self.send(Reply(request, False, RnixError(f"{type(exc).__name__}: {exc}")))
            return
        self.send(Reply(request, True, value))

    def _checkpoint(self, request: int, write: CheckpointWrite) -> None:
        """Write a host's checkpoint in the head's store (durable before the answer)."""
        store = self.head.checkpoints()
        if store is None:
            self.send(Reply(request, False, RnixError("checkpoints are off on the head")))
            return
        try:
            store.append(
                write.pid, write.seq, write.step, write.kind, write.first, write.messages,
                write.data,
            )  # fmt: skip
        except Exception as exc:
            self.send(Reply(request, False, RnixError(f"checkpoint not written: {exc}")))
            return
        self.send(Reply(request, True, None))

    def _figures(self, rows: tuple[tuple[Any, ...], ...]) -> None:
        for pid, steps, tokens, cost, started, activity, context, breaker, _ in rows:
            with self.lock:
                remote = self.procs.get(pid)
            if remote is None:
                continue
            figures = remote.figures
            figures.steps, figures.tokens, figures.cost_usd = steps, tokens, cost
            figures.step_started_at, figures.activity = started, activity
            figures.context, figures.breaker = context, breaker
            figures.version += 1
            spent, paid = tokens - remote.tokens, cost - remote.cost
            remote.tokens, remote.cost = tokens, cost
            budget = remote.budget
            if budget is not None and (spent or paid) and budget.add(spent, paid):
                self.head.kernel.tell(SendSignal(budget.root, Signal.SIGPAUSE, BUDGET_ORIGIN))

    def _refresh_snapshots(self) -> None:
        """A daemon that relearned replaced its snapshot: the host's guards get the new one."""
        for key, snap in list(self.shipped.snapshots.items()):
            current = self.head.snapshot(key)
            if current is not None and current is not snap:
                self.shipped.snapshots[key] = current
                self.send(NewSnapshot(key, current))

    def _lost(self, detail: str) -> None:
        with self.lock:
            procs, self.procs = self.procs, {}
        self.shipped.clear()
        if not procs:
            return
        reason = f"node_lost: {self.name} on node {self.node_id[:12]} is gone: {detail}"
        log.warning("%s: %d process(es) lost: %s", self.name, len(procs), detail)
        for pid in sorted(procs):
            with contextlib.suppress(Exception):
                self.head.kernel.tell(ProcessLost(pid, reason, "ray"))
