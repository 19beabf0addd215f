"""`ImmuneStatus`: what ``rnix immune status`` shows, as text and as JSON."""

from __future__ import annotations

from typing import Any

import attrs

from rnix_actors.immune.alerts import Alert
from rnix_actors.immune.sandboxview import SandboxView
from rnix_actors.immune.threats import ThreatSignature


@attrs.frozen
class ProfileSummary:
    """One template's profile: learned runs, and whether detection is active for it."""

    template: str
    runs: int
    active: bool


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@attrs.frozen
class ImmuneStatus:
    """The daemon's state at one moment.

    ``monitoring``: pids of live processes being watched; ``suspended``: pids really in the
    ``suspended`` state because of the immune system; ``daemon_running`` is false when the
    status was read from the store with no system running; ``sandbox`` is the shell
    sandbox, which is shown whatever the immune system's mode.
    """

    mode: str
    monitoring: tuple[int, ...] = ()
    alerts: tuple[Alert, ...] = ()
    suspended: tuple[int, ...] = ()
    threats: tuple[ThreatSignature, ...] = ()
    profiles: tuple[ProfileSummary, ...] = ()
    daemon_running: bool = True
    sandbox: SandboxView | None = None  # the /dev/shell sandbox (None: no shell device)

    @classmethod
    def disabled(cls) -> ImmuneStatus:
        """The empty status of a disabled immune system."""
        return cls("disabled", daemon_running=False)

    def text(self) -> str:
        """The status in exactly the documented shape (docs/immune.md)."""
        lines = [
            f"Mode: {self.mode}",
            f"  Monitoring: {_count(len(self.monitoring), 'process', 'processes')}",
            f"  Alerts: {len(self.alerts)} active",
        ]
        lines += [f"    {alert.line()}" for alert in self.alerts]
        lines.append(f"  Suspended: {_count(len(self.suspended), 'process', 'processes')}")
        lines.append(f"  Threat memory: {_count(len(self.threats), 'entry', 'entries')}")
        width = max((len(t.name) for t in self.threats), default=0)
        lines += [
            f"    #{i}: {t.name.ljust(width)} (detected {t.detected})"
            for i, t in enumerate(self.threats, start=1)
        ]
        if self.sandbox is not None:
            lines += self.sandbox.lines()
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The same data as one JSON-ready object."""
        return {
            "mode": self.mode,
            "daemon_running": self.daemon_running,
            "monitoring": len(self.monitoring),
            "monitored_pids": list(self.monitoring),
            "alerts": [a.to_dict() for a in self.alerts],
            "suspended": len(self.suspended),
            "suspended_pids": list(self.suspended),
            "threat_memory": [t.to_dict() for t in self.threats],
            "profiles": [attrs.asdict(p) for p in self.profiles],
            "shell_sandbox": None if self.sandbox is None else self.sandbox.to_json(),
        }
