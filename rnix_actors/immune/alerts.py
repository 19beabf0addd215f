"""Anomaly alerts (``AnomalyAlert`` in the seed document) and the daemon's book of them."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import attrs

from rnix_actors.messages.anomaly import Anomaly

MAX_ACTIVE_ALERTS = 200
"""Alerts stay active until cleared; beyond this many the oldest are retired."""


@attrs.frozen
class Alert:
    """One anomaly of one process (``AnomalyAlert`` in the seed document). ``suspended``
    says enforce mode suspended the process for it; ``active`` turns false when a user
    dismisses it or learns the run, or when its run is learned as recurring variation.
    ``severity``: ``high`` or ``warn``; ``p``: the finding's tail probability under the
    baseline; ``item``/``context``/``call_index``: what was new, the kind of call before it,
    and the run's call count at the finding; ``signature``: the threat signature it created
    or matched; ``device``: the device called (empty for a model answer)."""

    id: int
    pid: int
    template: str
    family: str
    metric: str
    threat: str
    message: str
    observed: float
    low: float | None
    high: float | None
    deviation: float | None
    known: bool
    ts: float
    suspended: bool = False
    active: bool = True
    severity: str = "high"
    p: float | None = None
    item: str = ""
    context: str = ""
    call_index: int = 0
    signature: str = ""
    device: str = ""

    @classmethod
    def of(
        cls,
        alert_id: int,
        pid: int,
        template: str,
        a: Anomaly,
        suspended: bool,
        device: str = "",
        signature: str = "",
    ) -> Alert:
        return cls(
            alert_id,
            pid,
            template,
            a.family,
            a.metric,
            a.threat,
            a.describe(),
            a.observed,
            a.low,
            a.high,
            a.deviation,
            a.known,
            time.time(),
            suspended,
            True,
            a.severity,
            a.p,
            a.item,
            a.context,
            a.call_index,
            signature or a.signature,
            device,
        )

    def features(self) -> dict[str, Any]:
        """The explanation of the alert: which feature fired and with which score."""
        return {
            "metric": self.metric,
            "observed": self.observed,
            "baseline": [self.low, self.high],
            "p": self.p,
            "deviation": self.deviation,
            "severity": self.severity,
            "item": self.item,
            "context": self.context,
        }

    def line(self) -> str:
        """``PID 7: unusual /dev/shell frequency (23/step, baseline: 5-10)``"""
        return f"PID {self.pid}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["features"] = self.features()
        data["time"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.ts))
        return data


class AlertBook:
    """Active alerts by id (owned by the daemon's thread)."""

    def __init__(
        self, alerts: Iterable[Alert] = (), next_id: int = 1, cap: int = MAX_ACTIVE_ALERTS
    ) -> None:
        self.cap = cap
        self._active = {a.id: a for a in alerts if a.active}
        self._next = max(next_id, max(self._active, default=0) + 1)

    def next_id(self) -> int:
        alert_id = self._next
        self._next += 1
        return alert_id

    def add(self, alert: Alert) -> list[int]:
        """Add an alert; returns the ids retired to respect the cap."""
        self._active[alert.id] = alert
        self._next = max(self._next, alert.id + 1)
        retired = sorted(self._active)[: max(0, len(self._active) - self.cap)]
        for alert_id in retired:
            del self._active[alert_id]
        return retired

    def active(self) -> list[Alert]:
        return sorted(self._active.values(), key=lambda a: a.id)

    def of(self, pid: int) -> list[Alert]:
        return [a for a in self.active() if a.pid == pid]

    def has(self, pid: int) -> bool:
        return any(a.pid == pid for a in self._active.values())

    def clear(self, pid: int) -> list[Alert]:
        """Deactivate the alerts of ``pid``; returns them."""
        gone = [a for a in self._active.values() if a.pid == pid]
        for alert in gone:
            del self._active[alert.id]
        return gone
