"""The immune daemon's protocol: what guards report and what the handle asks."""

from __future__ import annotations

import attrs

from rnix_actors.immune.detector import Anomaly


@attrs.frozen
class AnomalyDetected:
    """A guard found anomalies in ``pid``'s behaviour; ``suspended``: it refused the call and
    the process is suspending itself (enforce mode)."""

    pid: int
    template: str
    step: int
    anomalies: tuple[Anomaly, ...]
    suspended: bool


@attrs.frozen
class QueryStatus:
    """Ask for an `ImmuneStatus`."""


@attrs.frozen
class ClearAlerts:
    """Clear ``pid``'s alerts and let its run into the baseline; answers the number cleared."""

    pid: int


@attrs.frozen
class ResumeProcess:
    """Clear ``pid``'s alerts, then resume it (SIGRESUME); answers the kernel's reply."""

    pid: int


@attrs.frozen
class ForgetThreats:
    """Forget one signature by name, or all; answers the number forgotten."""

    name: str | None = None
    all: bool = False
