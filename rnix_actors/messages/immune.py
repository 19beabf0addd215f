"""The immune daemon's protocol: what guards report and what the handle asks."""

from __future__ import annotations

import attrs

from rnix_actors.messages.anomaly import Anomaly


@attrs.frozen
class AnomalyDetected:
    """A guard found anomalies in ``pid``'s behaviour at a call to ``device`` (or a model
    answer); ``suspended``: it refused the call and the process is suspending itself
    (enforce mode, a high finding)."""

    pid: int
    template: str
    step: int
    anomalies: tuple[Anomaly, ...]
    suspended: bool
    device: str = ""


@attrs.frozen
class QueryStatus:
    """Ask for an `ImmuneStatus`."""


@attrs.frozen
class ClearAlerts:
    """``learn``: the run of ``pid`` was normal: clear its alerts, forget the signatures they
    created and let the run into the baseline. Not ``learn`` (dismiss): clear the alerts,
    keep the run out. Answers the number of alerts cleared."""

    pid: int
    learn: bool = True


@attrs.frozen
class ResumeProcess:
    """Learn ``pid``'s run (clear its alerts), then resume it (SIGRESUME); ``retry``: the
    refused call runs again. Answers the kernel's reply."""

    pid: int
    retry: bool = False


@attrs.frozen
class ForgetThreats:
    """Forget one signature by name, or all; answers the number forgotten."""

    name: str | None = None
    all: bool = False
