"""Where a new process goes: the least loaded live host whose node has what the template's
``placement:`` asks for. Pure functions, no Ray."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from rnix_actors.errors import SpawnError


@attrs.frozen
class Candidate:
    name: str
    alive: bool
    load: int
    placed: int = 0  # processes placed there so far: spreads ties between idle hosts
    resources: Mapping[str, float] = attrs.field(factory=dict)
    labels: Mapping[str, str] = attrs.field(factory=dict)


def satisfies(host: Candidate, need: str) -> bool:
    """``need`` is ``key=value`` (a node label) or a name: a resource the node has, or a
    label it carries."""
    key, eq, value = need.partition("=")
    if eq:
        return host.labels.get(key.strip()) == value.strip()
    return host.resources.get(need, 0.0) > 0 or need in host.labels


def choose(hosts: Sequence[Candidate], needs: Sequence[str], agent: str) -> Candidate:
    """The host for a process of ``agent``; `SpawnError` saying what is missing otherwise."""
    fit = [h for h in hosts if h.alive and all(satisfies(h, n) for n in needs)]
    if fit:
        return min(fit, key=lambda h: (h.load, h.placed, h.name))
    alive = [h.name for h in hosts if h.alive]
    if not alive:
        raise SpawnError(
            "spawn rejected: no Ray host is alive (every node is gone); start a node with "
            "'ray start --address=<head>' or wait for Ray to restart the hosts"
        )
    raise SpawnError(
        f"spawn rejected: no live Ray host fits placement {list(needs)} of agent '{agent}' "
        f"(live hosts: {', '.join(alive)}); start a node with the resource "
        "('ray start --resources={\"gpu\": 1}') or label, or change the template's placement"
    )
