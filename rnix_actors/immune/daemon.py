"""The immune daemon actor: learning, threat memory, alerts and enforcement.

It owns the mutable side: profile builders, threat memory, the alert book, the persisted
tables. It learns from lifecycle events (a run's record is handed over by the guards when
its ``Exit`` arrives), hears anomalies from the guards, and publishes a fresh immutable
`Snapshot` whenever what the guards check against changes. It is never on the per-call path.

Failure: a database error while handling an event or an anomaly is logged and the daemon
carries on (monitoring matters more than one lost row); a closed or misused connection is
fatal, so that the restart opens a new one. Errors while answering an ``ask`` go back to the
caller. If the daemon dies, guards keep checking the last snapshot; the daemon that replaces
it reloads the tables, takes the running processes from the guards' live records and keeps
holding out the runs with active alerts, so a restart never teaches a flagged run as normal.
Each incarnation owns its store connection and closes it when it ends.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from rnix_actors.errors import RnixError
from rnix_actors.immune.alerts import Alert, AlertBook
from rnix_actors.immune.baseline import ProfileBuilder, TemplateProfile
from rnix_actors.immune.config import ImmuneConfig
from rnix_actors.immune.detector import (
    HIGH,
    Anomaly,
    Baseline,
    Settings,
    compile_baseline,
    score_run,
)
from rnix_actors.immune.events import alert_event
from rnix_actors.immune.guard import IMMUNE_ORIGIN, Shared, Snapshot
from rnix_actors.immune.host import ImmuneHost
from rnix_actors.immune.persistence import ImmuneStore, Loaded
from rnix_actors.immune.risk import score_items
from rnix_actors.immune.sample import RunSample, split_key
from rnix_actors.immune.status import ImmuneStatus, ProfileSummary
from rnix_actors.immune.threats import Change, ThreatMemory, ThreatSignature
from rnix_actors.kernel.base import RnixActor
from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.messages.events import Event
from rnix_actors.messages.immune import (
    AnomalyDetected,
    ClearAlerts,
    ForgetThreats,
    QueryStatus,
    ResumeProcess,
)
from rnix_actors.messages.links import ExitKind, ExitReason

log = logging.getLogger(__name__)

FORWARDED = frozenset({"Start", "Exit"})
"""The events the daemon needs; per-call data reaches it through the guards' records."""


def settings_of(config: ImmuneConfig) -> Settings:
    return Settings(config.deviation_threshold, config.min_samples)


def suspended_by_immune(info: ProcessInfo) -> bool:
    """Suspended by an immune guard's verdict or an immune SIGPAUSE (its typed exit kind and
    origin; the text is only for people)."""
    return (
        info.state is ProcessState.SUSPENDED
        and info.exit_kind == ExitKind.PAUSED
        and info.exit_origin == IMMUNE_ORIGIN
    )


class ImmuneDaemon(RnixActor):
    def __init__(
        self,
        host: ImmuneHost,
        config: ImmuneConfig,
        db: ImmuneStore,
        loaded: Loaded,
        shared: Shared,
    ) -> None:
        super().__init__()
        self.host = host
        self.config = config
        self.settings = settings_of(config)
        self.db = db
        self.at_end(db.store.close)
        self.shared = shared
        self.builders = loaded.profiles
        self.profiles = {t: b.snapshot() for t, b in self.builders.items()}
        self.baselines = {t: self._compile(p) for t, p in self.profiles.items()}
        self.threats = ThreatMemory(config.threat_ttl_days, config.max_threats, loaded.threats)
        self.alerts = AlertBook(loaded.alerts, loaded.next_alert_id)
        # Live pids: the guards' records name them after a restart (each made a call).
        self.monitoring: dict[int, str] = shared.live()
        # Live pids whose run raised a finding: the worst severity and the warned metrics.
        self.alerted: dict[int, tuple[str, frozenset[str]]] = {
            pid: _alerted(self.alerts.of(pid)) for pid in self.monitoring if self.alerts.has(pid)
        }
        # Warn-only runs held out, per template: pid -> the metrics they warned about.
        self.warned: dict[str, dict[int, frozenset[str]]] = {}
        # In the caller's thread, before start() returns: guards added right after see it.
        self._save_threats(self.threats.prune(time.time()))
        self._publish()

    def crashed(self, where: str, exc: BaseException) -> None:
        log.error("immune daemon crashed in %s: %r; guards keep the last snapshot", where, exc)

    def handle(self, message: Any) -> Any:
        match message:
            case Event():
                self._guarded(self._event, message)
            case AnomalyDetected():
                self._guarded(self._anomalies, message)
            case QueryStatus():
                return self._status()
            case ClearAlerts(pid=pid, learn=learn):
                return self._clear(pid, learn)
            case ResumeProcess(pid=pid, retry=retry):
                self._clear(pid, learn=True)
                return self.host.resume(pid, origin="user", retry=retry)
            case ForgetThreats(name=name, all=every):
                change = self.threats.forget(name, all=every)
                self._save_threats(change)
                return len(change.removed)
            case _:
                self.unhandled(message)
        return None

    def _guarded(self, handler: Any, message: Any) -> None:
        try:
            handler(message)
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a closed or misused connection: the restart opens a new one
        except sqlite3.Error:
            log.exception("immune daemon: could not persist after %s", type(message).__name__)

    # -- lifecycle -----------------------------------------------------------------------------
    def _event(self, event: Event) -> None:
        if event.syscall == "Start":
            self.monitoring[event.pid] = event.template
        elif event.syscall == "Exit":
            self._finished(event.pid, event.template, ExitReason.from_event_args(event.args))

    def _finished(self, pid: int, template: str, why: ExitReason) -> None:
        """Score the finished run, then learn it, or hold it out if it raised an alert."""
        self.monitoring.pop(pid, None)
        alerted = self.alerted.pop(pid, None)
        record = self.shared.take(pid)
        if record is None or why.kind is not ExitKind.COMPLETED:
            return  # only completed runs teach what normal looks like
        # A completed run made all its calls before its Exit: nothing writes the record now.
        sample = record.sample()
        reported = set(record.reported)
        known = self.threats.names() - record.minted
        side = frozenset(k.key for k in record.keys.values() if k.side)
        baseline = self.baselines.get(template)
        found = score_run(baseline, sample, side, known)
        found += score_items(baseline, sample.items, self.settings, self.shared.snapshot.hosts)
        fresh = [a for a in found if a.metric not in reported]
        if fresh:
            self._raise(pid, template, fresh, suspended=False)
            alerted = _worse(alerted, fresh)
        if alerted is None:
            self._learn(sample)
            return
        self.db.hold(pid, sample, time.time())
        severity, metrics = alerted
        if severity != HIGH:
            self._recurring(template, pid, metrics)

    def _recurring(self, template: str, pid: int, metrics: frozenset[str]) -> None:
        """A warn-only run is held; once each of its warnings has recurred in another
        warn-only run, the warnings describe benign variation: those runs are learned
        and their alerts retired, with no one clearing them."""
        held = self.warned.setdefault(template, {})
        held[pid] = metrics
        seen: dict[str, int] = {}
        for warned in held.values():
            for name in warned:
                seen[name] = seen.get(name, 0) + 1
        ready = [p for p, warned in held.items() if all(seen[m] >= 2 for m in warned)]
        for done in ready:
            del held[done]
            self._clear(done, learn=True, forget=False)

    def _learn(self, sample: RunSample, held_pid: int | None = None) -> None:
        template = sample.template
        builder = self.builders.setdefault(template, ProfileBuilder(template))
        builder.learn(sample)
        if held_pid is None:
            self.db.save_profile(builder, time.time())
        else:
            self.db.learn_held(builder, held_pid, time.time())
        profile = self.profiles[template] = builder.snapshot()
        self.baselines[template] = self._compile(profile)
        self._publish()

    def _compile(self, profile: TemplateProfile) -> Baseline:
        return compile_baseline(profile, self.settings)

    def _publish(self) -> None:
        """Swap in a new snapshot for the guards (they never see a half-built one)."""
        patterns = self.threats.patterns()
        self.shared.snapshot = Snapshot(
            baselines=dict(self.baselines),
            known=self.threats.names(),
            settings=self.settings,
            enforce=not self.config.warn_only,
            patterns=patterns,
            hosts=frozenset(
                i for p in self.profiles.values() for i in p.items if i.startswith("net:")
            ),
            watched=frozenset(split_key(key)[1] for key in patterns),
        )

    # -- anomalies -----------------------------------------------------------------------------
    def _anomalies(self, msg: AnomalyDetected) -> None:
        # Not conditional on having seen Start: the guard's tell can overtake the event bus.
        # Its Exit cannot (the process tells the kernel only after this), so no leak.
        self.alerted[msg.pid] = _worse(self.alerted.get(msg.pid), msg.anomalies)
        self._raise(msg.pid, msg.template, msg.anomalies, msg.suspended, msg.device, msg.step)
        if msg.suspended:
            self._pause_children(msg.pid)

    def _raise(
        self,
        pid: int,
        template: str,
        anomalies: Sequence[Anomaly],
        suspended: bool,
        device: str = "",
        step: int = 0,
    ) -> None:
        now = time.time()
        alerts: list[Alert] = []
        retired: list[int] = []
        saved: dict[str, ThreatSignature] = {}
        removed: list[str] = []
        for anomaly in anomalies:
            signature = ""
            if anomaly.severity == HIGH:  # warnings never become threats
                sig, change = self._remember(anomaly, template, now)
                signature = sig.key
                saved.update((s.key, s) for s in change.saved)
                removed += change.removed
            alert = Alert.of(
                self.alerts.next_id(), pid, template, anomaly, suspended, device, signature
            )
            alerts.append(alert)
            retired += self.alerts.add(alert)
            log.warning("immune: %s%s", alert.line(), " (suspended)" if suspended else "")
        self.db.add_alerts(alerts, retired)
        # Saving publishes a snapshot, so a new pattern is known to the guards at once.
        self._save_threats(Change(tuple(saved.values()), tuple(removed)))
        for alert in alerts:
            self.host.publish(alert_event(alert, step))

    def _remember(
        self, anomaly: Anomaly, template: str, now: float
    ) -> tuple[ThreatSignature, Change]:
        if anomaly.signature:
            known = self.threats.get(anomaly.signature)
            if known is not None:
                pattern = (known.call, known.item, known.context)
                return self.threats.record(
                    known.name, known.metric, template, known.detail, now, pattern
                )
        pattern = (anomaly.call, anomaly.item, anomaly.context) if anomaly.item else ("", "", "")
        return self.threats.record(
            anomaly.threat, anomaly.metric, template, anomaly.describe(), now, pattern
        )

    def _pause_children(self, pid: int) -> None:
        """The guard suspended the process itself; SIGPAUSE reaches its running subtree."""
        try:
            if self.host.info(pid).children:
                self.host.kill(pid, "SIGPAUSE", origin=IMMUNE_ORIGIN)
        except RnixError as exc:  # it exited meanwhile, or the system is stopping
            log.info("immune: could not pause the children of PID %d: %s", pid, exc)

    def _save_threats(self, change: Change) -> None:
        if change.saved or change.removed:
            self.db.save_threats(change.saved, change.removed)
            self._publish()

    # -- queries -------------------------------------------------------------------------------
    def _clear(self, pid: int, learn: bool, forget: bool = True) -> int:
        """Clear ``pid``'s alerts. ``learn``: the run was normal: forget the signatures its
        alerts created (with ``forget``) and learn the run (now if it finished and was held,
        else when it finishes). Otherwise (dismiss) a held run stays out."""
        cleared = self.alerts.clear(pid)
        if cleared:
            self.db.clear_alerts(pid)
        if not learn:
            return len(cleared)
        self.alerted.pop(pid, None)
        if forget:
            for key in {a.signature for a in cleared if a.signature}:
                self._save_threats(self.threats.forget(key))
        if pid not in self.monitoring:
            sample = self.db.held(pid)
            if sample is not None:
                self._learn(sample, held_pid=pid)
        return len(cleared)

    def _status(self) -> ImmuneStatus:
        live = self.host.ps()
        suspended = tuple(p.pid for p in live if suspended_by_immune(p))
        return ImmuneStatus(
            mode=self.config.mode,
            monitoring=tuple(sorted(self.monitoring)),
            alerts=tuple(self.alerts.active()),
            suspended=suspended,
            threats=tuple(self.threats.list()),
            profiles=profile_summaries(self.profiles.values(), self.settings),
        )


def _worse(
    before: tuple[str, frozenset[str]] | None, anomalies: Iterable[Anomaly]
) -> tuple[str, frozenset[str]]:
    """The worst severity and the warned metrics of a run, with ``anomalies`` added."""
    severity, metrics = before or ("warn", frozenset())
    found = list(anomalies)
    if any(a.severity == HIGH for a in found):
        severity = HIGH
    return severity, metrics | {a.metric for a in found if a.severity != HIGH}


def _alerted(alerts: Iterable[Alert]) -> tuple[str, frozenset[str]]:
    """`ImmuneDaemon.alerted`'s entry for a run with these active alerts."""
    found = list(alerts)
    severity = HIGH if any(a.severity == HIGH for a in found) else "warn"
    return severity, frozenset(a.metric for a in found if a.severity != HIGH)


def profile_summaries(
    profiles: Iterable[TemplateProfile], settings: Settings
) -> tuple[ProfileSummary, ...]:
    """One summary per template, by name."""
    items = sorted(profiles, key=lambda p: p.template)
    return tuple(ProfileSummary(p.template, p.runs, p.runs >= settings.min_samples) for p in items)
