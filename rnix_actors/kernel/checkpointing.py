"""What an agent process writes at each step boundary, and how a process resumes from it.

A process checkpoints on its own thread (a `Checkpointer` per process) at two moments:

- ``step``: the model answered with tool calls and none of them has run yet. Everything the
  previous steps did is in the context, and the calls of the step in flight are listed, so a
  completed step is durable before the next step's tool calls run. Resuming from it runs the
  listed calls again: at-least-once for that one step.
- ``suspend``: the process suspended (SIGPAUSE, the immune system, a budget, a graceful
  stop), between two tool calls at most; the calls still to run are the unanswered ones.

The context only grows, so the `Checkpointer` hands the store the messages added since its
last checkpoint; the identity (`Identity`) is written once, in checkpoint 0 (``start``, with
the process's first row) and in the ``resume`` checkpoint the kernel writes before a resumed
process runs. `Resumption` is a checkpoint decoded for the kernel and the new process.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from rnix_actors.drivers.base import Message, ToolCall
from rnix_actors.store.checkpoints import CheckpointError, CheckpointStore, StoredCheckpoint

log = logging.getLogger(__name__)


# One encoder for every checkpoint (building one per call costs more than a small document).
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


class Checkpointed(Protocol):
    """The parts of an agent process a checkpoint reads."""

    step: int
    tokens: int
    result: str
    messages: list[Message]
    mailbox: list[str]
    refused: ToolCall | None


@attrs.frozen
class Identity:
    """What does not change while a process lives (written into each checkpoint)."""

    uuid: str
    template: str
    intent: str
    driver: str
    model: str
    depth: int
    ppid: int
    allowed: tuple[str, ...]
    workdir: str
    max_steps: int
    origin: str
    created_at: float
    child: str = ""  # a supervised child's path in its tree (/review/analyst), else ""


class Checkpointer:
    """Writes the checkpoints of one process (only ever called from that process's thread)."""

    def __init__(
        self,
        store: CheckpointStore,
        pid: int,
        identity: Identity,
        position: Any = None,
        seq: int = 0,
        written: int = 0,
    ) -> None:
        self.store = store
        self.pid = pid
        self.identity = attrs.asdict(identity)
        self._position = position  # the driver's ``position(pid)``, if it has one
        self.seq = seq
        self.written = written  # context messages already in the store
        self.bytes = 0  # written by this process's checkpoints so far

    def first(self, intent: str) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
        """Checkpoint 0 of a new process (state, messages): its intent, before any step."""
        state = {
            **self.identity,
            "step": 0,
            "tokens": 0,
            "cost_usd": 0.0,
            "result": "",
            "mailbox": [],
            "breaker": [0, 0, None, None],
            "in_flight": [],
            "driver_position": None if self._position is None else 0,
            "reason": "",
            "refused": None,
        }
        return state, (_message(Message("user", intent)),)

    def resumed(self, resumption: Resumption) -> None:
        """Write the ``resume`` checkpoint: the new identity (depth 0, narrowed devices)
        over the state it resumes from, so that a kill before the first step of the resumed
        process still resumes it as it now is. Raises `sqlite3.Error`."""
        state = {
            **self.identity,
            "step": resumption.step,
            "tokens": resumption.tokens,
            "cost_usd": resumption.cost_usd,
            "result": resumption.result,
            "mailbox": list(resumption.mailbox),
            "breaker": list(resumption.breaker),
            "in_flight": [{"id": c.id, "name": c.name} for c in resumption.pending],
            "driver_position": resumption.driver_position,
            "reason": "resumed",
            "refused": _refused(resumption.refused),
        }
        self.store.write(self.pid, self.seq + 1, resumption.step, "resume", state, self.written, [])
        self.seq += 1

    def write(self, agent: Checkpointed, kind: str, reason: str = "", cost: float = 0.0) -> None:
        """Checkpoint ``agent`` now; a store error is logged (the process goes on)."""
        messages = agent.messages
        state = {
            "step": agent.step,
            "tokens": agent.tokens,
            "cost_usd": cost,
            "result": agent.result,
            "mailbox": list(agent.mailbox),
            "breaker": _breaker(agent),
            # Their inputs are in the context's last assistant message.
            "in_flight": [{"id": c.id, "name": c.name} for c in unanswered(messages)],
            "driver_position": None if self._position is None else self._position(self.pid),
            "reason": reason,
            # The call a guard refused when it suspended the process: a resume may retry it.
            "refused": _refused(agent.refused),
        }
        first = min(self.written, len(messages))
        data = _encode({"state": state, "messages": [_message(m) for m in messages[first:]]})
        try:
            # Durable when this returns: before the step's tool calls run.
            self.store.append(self.pid, self.seq + 1, agent.step, kind, first, len(messages), data)
        except sqlite3.Error as exc:
            log.error("PID %d: checkpoint of step %d not written: %s", self.pid, agent.step, exc)
            return
        self.bytes += len(data)
        self.seq += 1
        self.written = len(messages)


def _refused(call: ToolCall | None) -> dict[str, str] | None:
    return None if call is None else {"id": call.id, "name": call.name}


def _breaker(agent: Any) -> list[Any]:
    breaker = agent.breaker
    return [breaker.total, breaker.run, breaker.last, breaker.tripped_reason]


def unanswered(messages: Sequence[Message]) -> list[ToolCall]:
    """The tool calls of the last assistant message that have no tool result yet."""
    answered: set[str] = set()
    for message in reversed(messages):
        if message.role == "tool":
            answered.add(message.tool_call_id)
        elif message.role == "assistant":
            return [c for c in message.tool_calls if c.id not in answered]
    return []


def _call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "input": dict(call.input)}


def _message(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        data["tool_calls"] = [_call(c) for c in message.tool_calls]
    if message.tool_call_id:
        data["tool_call_id"] = message.tool_call_id
    return data


@attrs.frozen
class Resumption:
    """A decoded checkpoint: what a resumed process starts from."""

    pid: int
    step: int
    seq: int
    written: int
    identity: Identity
    tokens: int
    cost_usd: float
    result: str
    mailbox: tuple[str, ...]
    breaker: tuple[int, int, str | None, str | None]
    messages: tuple[Message, ...]
    driver_position: int | None
    refused: ToolCall | None = None  # the call a guard refused when it suspended the process

    @property
    def pending(self) -> list[ToolCall]:
        """The calls of the step in flight that have no result yet (run again on resume)."""
        return unanswered(self.messages)

    def retrying(self) -> Resumption:
        """This resumption with the guard's refusal taken back: the refused call runs again
        (first of the calls still to run). The same when nothing was refused."""
        if self.refused is None:
            return self
        messages = self.messages[:-1]
        return attrs.evolve(self, messages=messages, written=len(messages), refused=None)


def decode(found: StoredCheckpoint) -> Resumption:
    """A `Resumption` from a stored checkpoint; `CheckpointError` naming the PID if a field
    is missing or of the wrong type."""
    pid, state = found.row.pid, found.state
    try:
        fields: dict[str, Any] = {
            f.name: state[f.name] if f.default is attrs.NOTHING else state.get(f.name, f.default)
            for f in attrs.fields(Identity)
        }  # a field with a default may be missing from an older checkpoint
        identity = Identity(**{**fields, "allowed": tuple(str(d) for d in fields["allowed"])})
        total, run, last, tripped = state["breaker"]
        position = state["driver_position"]
        return Resumption(
            pid=pid,
            step=int(state["step"]),
            seq=found.row.seq,
            written=len(found.messages),
            identity=identity,
            tokens=int(state["tokens"]),
            cost_usd=float(state["cost_usd"]),
            result=str(state["result"]),
            mailbox=tuple(str(m) for m in state["mailbox"]),
            breaker=(int(total), int(run), last, tripped),
            messages=tuple(_to_message(m) for m in found.messages),
            driver_position=None if position is None else int(position),
            refused=_find_refused(found.messages, state.get("refused")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"the checkpoint of PID {pid} is corrupted (field {exc}): it cannot be resumed; "
            "start its task again"
        ) from None


def _find_refused(messages: Sequence[Mapping[str, Any]], refused: Any) -> ToolCall | None:
    """The refused call, when the context ends with its refusal (the call's own tool result
    after the step's assistant message); None otherwise (it was answered since)."""
    if not isinstance(refused, dict) or len(messages) < 2:
        return None
    last = messages[-1]
    if last.get("role") != "tool" or last.get("tool_call_id") != refused.get("id"):
        return None
    for message in reversed(messages):
        if message.get("role") == "assistant":
            for call in _to_message(message).tool_calls:
                if call.id == refused.get("id"):
                    return call
            return None
    return None


def _to_message(data: Mapping[str, Any]) -> Message:
    calls = tuple(
        ToolCall(str(c["id"]), str(c["name"]), dict(c.get("input") or {}))
        for c in data.get("tool_calls", ())
    )
    role = str(data["role"])
    if role not in ("system", "user", "assistant", "tool"):
        raise ValueError(f"role {role!r}")
    return Message(role, str(data["content"]), calls, str(data.get("tool_call_id", "")))  # type: ignore[arg-type]
