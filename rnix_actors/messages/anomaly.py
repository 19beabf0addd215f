"""`Anomaly`: one finding of the detector, and its text in the seed document's wording."""

from __future__ import annotations

from typing import Any

import attrs

NOVEL = "novel"
"""The family of a novelty finding (a never-used call, destination or host)."""
KNOWN = "known"
"""The family of a call that matches a threat signature."""


@attrs.frozen
class Anomaly:
    """One deviation: the metric, what was observed, the baseline range (min-max seen), the
    deviation in standard deviations that its tail probability ``p`` corresponds to (None
    when ``p`` is 0 or not defined), and ``severity`` (``high`` suspends in enforce mode and
    becomes a threat signature; ``warn`` only alerts).

    Novelty and signature findings also carry the ``item`` (what was new, e.g.
    ``dest:Write /dev/bank/send_money|recipient=us13``), the ``context`` (the kind of the
    call before it) and ``call_index`` (the run's 1-based call count at the finding)."""

    family: str
    metric: str
    subject: str
    observed: float
    low: float | None
    high: float | None
    deviation: float | None
    threat: str
    known: bool = False
    p: float | None = None
    severity: str = "high"
    item: str = ""
    context: str = ""
    call_index: int = 0
    signature: str = ""  # the matched signature's key (family KNOWN)
    call: str = ""  # the call key (``Write /dev/bank/send_money``) of a call finding

    def describe(self) -> str:
        """The alert text after ``PID n:``, in the seed's wording."""
        text = _describe(self)
        return f"{text[:-1]}; known threat {self.threat})" if self.known else text

    def features(self) -> dict[str, Any]:
        """The explanation: which feature, which score."""
        return {
            "metric": self.metric,
            "p": self.p,
            "deviation": self.deviation,
            "severity": self.severity,
            "item": self.item,
            "context": self.context,
            "call_index": self.call_index,
        }


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _range(a: Anomaly) -> str:
    low, high = a.low or 0.0, a.high or 0.0
    if a.family == "run.share":
        return f"{low:.0%}" if low == high else f"{low:.0%}-{high:.0%}"
    if a.family == "step.duration_ms":
        return f"{low / 1000:.1f}-{high / 1000:.1f}s"
    return _num(low) if low == high else f"{_num(low)}-{_num(high)}"


def _item_text(a: Anomaly) -> str:
    kind, _, rest = a.item.partition(":")
    if kind == "dest":
        target = rest.partition("|")[2]
        return f"unusual destination for {a.subject} ({target}, never used by this template)"
    if kind == "net":
        return f"unusual network host {rest} via {a.subject} (never used by this template)"
    effect = "side-effecting" if kind == "call.side" else "read-only"
    return f"access to unusual device {a.subject} ({effect}; never used by this template)"


def _describe(a: Anomaly) -> str:
    family, value, base = a.family, a.observed, _range(a)
    if family in (NOVEL, KNOWN):
        return _item_text(a)
    if family == "step.count":
        return f"unusual {a.subject} frequency ({_num(value)}/step, baseline: {base})"
    if family == "run.count":
        return f"unusual {a.subject} volume ({_num(value)}/run, baseline: {base})"
    if family == "run.share":
        return f"unusual device mix ({a.subject} {value:.0%} of calls, baseline: {base})"
    if family == "step.tokens":
        return f"token consumption spike ({_num(value)} tokens/step, baseline: {base})"
    if family == "run.tokens":
        return f"token consumption spike ({_num(value)} tokens/run, baseline: {base})"
    if family == "step.duration_ms":
        return f"unusual step duration ({value / 1000:.1f}s/step, baseline: {base})"
    return f"unusual run length ({_num(value)} steps, baseline: {base})"
