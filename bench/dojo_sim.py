"""The immune guard and learning, driven directly (no actors), for the ROC table.

Each run goes through the real `ImmuneGuard` exactly as an agent's syscall path would call
it (a model answer, then each tool call with its op, args and declared effect), in enforce
mode: a ``suspend`` verdict ends the run there, and nothing after it executes. Training
follows the daemon: a template's runs are learned one by one, each scored first, and one
with any finding is held out; test runs are scored against the trained profiles (nothing
is learned from them). Only the actor plumbing is left out, so that one run of the bench
can sweep many thresholds; `immune_eval` also runs the default threshold end to end.
"""

from __future__ import annotations

from dataclasses import dataclass

from dojo_models import Run, effect_of

from rnix_actors.immune.baseline import ProfileBuilder
from rnix_actors.immune.detector import Settings, compile_baseline, score_run
from rnix_actors.immune.guard import ImmuneGuard, Shared, Snapshot
from rnix_actors.immune.risk import score_items
from rnix_actors.kernel.devices import Effect
from rnix_actors.messages.guards import SyscallAttempt
from rnix_actors.messages.immune import AnomalyDetected


@dataclass
class Result:
    run: Run
    alerted: bool
    suspended: bool
    injected_before: int  # side-effecting injected calls executed before the first alert
    injected_after: int  # ... executed after it
    first_alert: int  # 1-based index of the device call at the first alert (0: none)
    first_message: str


class Sim:
    """Profiles of many templates, trained and judged through the real guard."""

    def __init__(self, suite: str, settings: Settings) -> None:
        self.suite = suite
        self.settings = settings
        self.builders: dict[str, ProfileBuilder] = {}

    def snapshot(self, only: str | None = None) -> Snapshot:
        """What the guards would check against (``only``: one template's profile)."""
        builders = self.builders
        chosen = [only] if only is not None else list(builders)
        baselines = {
            t: compile_baseline(builders[t].snapshot(), self.settings)
            for t in chosen
            if t in builders
        }
        hosts = frozenset(i for b in builders.values() for i in b.items if i.startswith("net:"))
        return Snapshot(baselines, frozenset(), self.settings, True, False, {}, hosts)

    def train(self, run: Run) -> Result:
        """Score ``run`` against its template's profile so far, then learn it if clean."""
        return self.run(run, self.snapshot(run.template), learn=True)

    def run(self, run: Run, snap: Snapshot, learn: bool = False) -> Result:
        shared = Shared(snap)
        reports: list[AnomalyDetected] = []
        guard = ImmuneGuard(shared, reports.append)
        pid, template = 1, run.template
        index = before = after = first = 0
        message = ""
        suspended = False

        def note() -> None:
            nonlocal first, message
            if reports and not first:
                first, message = max(index, 1), reports[0].anomalies[0].describe()

        for number, step in enumerate(run.steps, start=1):
            answer = SyscallAttempt(
                pid, template, number, "ReasonStep", "/dev/llm/x", {}, run.tokens[number - 1],
                run.durations[number - 1],
            )  # fmt: skip
            verdict = guard(answer)
            note()
            if verdict.action != "allow":
                suspended = True
                break
            for call, injected in step:
                index += 1
                tool = call["function"]
                effect = effect_of(tool)
                attempt = SyscallAttempt(
                    pid, template, number, "Write", f"/dev/{self.suite}/{tool}",
                    dict(call["args"] or {}), 0, 0.0, "call", effect,
                )  # fmt: skip
                verdict = guard(attempt)
                note()
                if verdict.action != "allow":
                    suspended = True
                    break
                if injected and effect is not Effect.READ:
                    if first:
                        after += 1
                    else:
                        before += 1
            if suspended:
                break
        if not suspended:
            self._finish(shared, snap, run, reports, learn)
            note()
        return Result(run, bool(reports), suspended, before, after, first, message)

    def _finish(
        self, shared: Shared, snap: Snapshot, run: Run, reports: list[AnomalyDetected], learn: bool
    ) -> None:
        record = shared.take(1)
        if record is None:
            return
        sample = record.sample()
        baseline = snap.baselines.get(run.template)
        side = frozenset(k.key for k in record.keys.values() if k.side)
        found = score_run(baseline, sample, side, snap.known)
        found += score_items(baseline, sample.items, self.settings, snap.hosts)
        fresh = tuple(a for a in found if a.metric not in record.reported)
        if fresh:
            reports.append(AnomalyDetected(1, run.template, 0, fresh, False))
        if learn and not reports:
            builder = self.builders.setdefault(run.template, ProfileBuilder(run.template))
            builder.learn(sample)
