"""Alerts as events: every alert is published on the event bus as an ``AnomalyAlert``.

Subscribe with ``system.subscribe(callback, ["AnomalyAlert"])``. The event's ``args`` hold
the alert: ``id``, ``message`` (the status line's text), ``verdict`` (``suspended`` or
``alerted``), ``severity``, ``threat``, ``known``, ``call_index``, ``features`` (which
feature fired, its tail probability ``p`` and deviation) and ``signature``.
"""

from __future__ import annotations

from rnix_actors.immune.alerts import Alert
from rnix_actors.messages.events import Event

ALERT_EVENT = "AnomalyAlert"


def alert_event(alert: Alert, step: int) -> Event:
    """The bus event of ``alert`` (raised at ``step`` of its process, 0 at the run's end)."""
    args = {
        "id": alert.id,
        "message": alert.message,
        "verdict": "suspended" if alert.suspended else "alerted",
        "severity": alert.severity,
        "threat": alert.threat,
        "known": alert.known,
        "call_index": alert.call_index,
        "features": alert.features(),
        "signature": alert.signature,
    }
    return Event(alert.ts, alert.pid, alert.template, step, ALERT_EVENT, alert.device, args)
