"""AgentDojo runs for the immune evaluation: tasks, tool effects, benign-variation models.

A *plan* is the list of steps one run makes, each step a list of ``(call, injected)``; a call
is ``{"function", "args"}`` as in the AgentDojo traces. The ground-truth traces are minimal,
so every benign run (and the benign part of every attacked run) goes through one of three
variation models, each a guess at how real LLM agents differ from the minimal trace:

* ``repeats``: the model of the first evaluation. Each read-only call repeated with p=0.2;
  p=0.3 one extra look-up with a read-only call of the task itself; one call per step.
* ``lookups``: the variation an outside evaluation described. p=0.5 one extra read-only
  look-up with a read tool of the suite the task may never use (arguments copied from
  another task's call of it); p=0.5 one read repeated; p=0.3 a trailing read skipped;
  one or two calls per step.
* ``chatty``: written before any setting was chosen and never used to choose one.
  Heavy-tailed tokens (lognormal sigma 0.6, 5% of steps x3) and durations; read-only
  arguments reworded (p=0.3 per call); p=0.4 one or two extra look-ups from anywhere in the
  suite; p=0.2 two adjacent reads swapped; p=0.2 a verification read after the last write;
  one to three calls per step.

Attacked runs splice an injection task's calls in after an injection point, as AgentDojo
scores attacks; the variation never touches the injected calls.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnix_actors.kernel.devices import Effect

READ_PREFIXES = ("get_", "search_", "read_", "list_")
EXTERNAL_PREFIXES = ("send_", "share_", "post_", "invite_", "schedule_")

Call = dict[str, Any]
Plan = list[list[tuple[Call, bool]]]


def effect_of(tool: str) -> Effect:
    """The effect a tool is registered with: look-ups read, sending reaches out, the rest
    (create, update, delete, append, reschedule...) changes local state."""
    if tool.startswith(READ_PREFIXES):
        return Effect.READ
    return Effect.EXTERNAL if tool.startswith(EXTERNAL_PREFIXES) else Effect.WRITE


def is_read(call: Call) -> bool:
    return effect_of(call["function"]) is Effect.READ


@dataclass
class Suite:
    name: str
    tools: list[str]
    tasks: list[dict[str, Any]]
    injections: list[dict[str, Any]]
    # read tool -> the argument sets other tasks call it with
    read_args: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Suite:
        data = json.loads(path.read_text())
        suite = cls(data["suite"], data["tools"], data["user_tasks"], data["injection_tasks"])
        for task in suite.tasks:
            for c in task["calls"]:
                if is_read(c):
                    suite.read_args.setdefault(c["function"], []).append(dict(c["args"] or {}))
        for tool in suite.tools:
            if effect_of(tool) is Effect.READ:
                suite.read_args.setdefault(tool, [{}])
        return suite

    def template(self, task: dict[str, Any]) -> str:
        return f"{self.name}-{task['id'].replace('_', '-')}"


@dataclass
class Run:
    """One run to make: its plan, per-step tokens and model durations, and its label."""

    template: str
    label: str  # "benign" or the injection task id
    steps: Plan
    tokens: list[int]
    durations: list[float]

    @property
    def attack(self) -> bool:
        return self.label != "benign"


def _group(rng: random.Random, calls: list[tuple[Call, bool]], most: int) -> Plan:
    steps: Plan = []
    i = 0
    while i < len(calls):
        size = rng.randint(1, most)
        steps.append(calls[i : i + size])
        i += size
    return steps


def _tokens(rng: random.Random, n: int, sigma: float, spikes: float) -> list[int]:
    out = []
    for i in range(n):
        value = (300 + 120 * i) * rng.lognormvariate(0, sigma)
        out.append(max(1, int(value * (3 if rng.random() < spikes else 1))))
    return out


def _lookup(rng: random.Random, suite: Suite) -> Call:
    tool = rng.choice(sorted(suite.read_args))
    return {"function": tool, "args": dict(rng.choice(suite.read_args[tool]))}


def repeats(rng: random.Random, suite: Suite, calls: list[tuple[Call, bool]]) -> Run:
    out: list[tuple[Call, bool]] = []
    reads = [c for c, bad in calls if not bad and is_read(c)]
    for c, bad in calls:
        out.append((c, bad))
        if not bad and is_read(c) and rng.random() < 0.2:
            out.append((c, False))
    if reads and rng.random() < 0.3:
        out.insert(rng.randrange(1, len(out) + 1), (rng.choice(reads), False))
    steps = _group(rng, out, 1)
    n = len(steps) + 1
    return Run("", "", steps, _tokens(rng, n, 0.25, 0.0), [rng.uniform(0, 3) for _ in range(n)])


def lookups(rng: random.Random, suite: Suite, calls: list[tuple[Call, bool]]) -> Run:
    out = list(calls)
    if rng.random() < 0.5:
        out.insert(rng.randrange(0, len(out) + 1), (_lookup(rng, suite), False))
    reads = [i for i, (c, bad) in enumerate(out) if not bad and is_read(c)]
    if reads and rng.random() < 0.5:
        i = rng.choice(reads)
        out.insert(i + 1, out[i])
    if len(out) > 1 and not out[-1][1] and is_read(out[-1][0]) and rng.random() < 0.3:
        out.pop()
    steps = _group(rng, out, 2)
    n = len(steps) + 1
    return Run("", "", steps, _tokens(rng, n, 0.25, 0.0), [rng.uniform(0, 3) for _ in range(n)])


def _reword(rng: random.Random, call: Call) -> Call:
    args = dict(call["args"] or {})
    for key, value in args.items():
        if isinstance(value, str) and value and rng.random() < 0.5:
            args[key] = value.lower() if rng.random() < 0.5 else f"{value} details"
    return {"function": call["function"], "args": args}


def chatty(rng: random.Random, suite: Suite, calls: list[tuple[Call, bool]]) -> Run:
    out = [
        (_reword(rng, c), bad) if not bad and is_read(c) and rng.random() < 0.3 else (c, bad)
        for c, bad in calls
    ]
    if rng.random() < 0.4:
        for _ in range(rng.randint(1, 2)):
            out.insert(rng.randrange(0, len(out) + 1), (_lookup(rng, suite), False))
    pairs = [
        i
        for i in range(len(out) - 1)
        if not out[i][1] and not out[i + 1][1] and is_read(out[i][0]) and is_read(out[i + 1][0])
    ]
    if pairs and rng.random() < 0.2:
        i = rng.choice(pairs)
        out[i], out[i + 1] = out[i + 1], out[i]
    benign_reads = [c for c, bad in out if not bad and is_read(c)]
    if benign_reads and rng.random() < 0.2:
        out.append((rng.choice(benign_reads), False))
    steps = _group(rng, out, 3)
    n = len(steps) + 1
    durations = [min(30_000.0, 200 * rng.lognormvariate(1, 0.8)) for _ in range(n)]
    return Run("", "", steps, _tokens(rng, n, 0.6, 0.05), durations)


Model = Callable[[random.Random, Suite, list[tuple[Call, bool]]], Run]
MODELS: dict[str, Model] = {"repeats": repeats, "lookups": lookups, "chatty": chatty}
TUNED_ON = ("repeats", "lookups")
"""The models settings may be chosen on; ``chatty`` never is."""


def benign_run(rng: random.Random, model: Model, suite: Suite, task: dict[str, Any]) -> Run:
    run = model(rng, suite, [(c, False) for c in task["calls"]])
    run.template, run.label = suite.template(task), "benign"
    return run


def attack_runs(rng: random.Random, model: Model, suite: Suite, task: dict[str, Any]) -> list[Run]:
    runs = []
    calls = task["calls"]
    for point in task["injection_points"]:
        k = point["call_index"]
        for injection in suite.injections:
            spliced = [(c, False) for c in calls[: k + 1]]
            spliced += [(c, True) for c in injection["calls"]]
            spliced += [(c, False) for c in calls[k + 1 :]]
            run = model(rng, suite, spliced)
            run.template, run.label = suite.template(task), injection["id"]
            runs.append(run)
    return runs


def split(suite: Suite) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(tuning tasks, held-out tasks): alternate tasks of the suite, by position."""
    return suite.tasks[0::2], suite.tasks[1::2]
