"""Giving up on a child: offer its task to the migration planner before escalating."""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs
import pykka

from rnix_actors.messages.migration import MigrationAnswer, MigrationOffer
from rnix_actors.supervision.core import ChildState
from rnix_actors.supervision.spec import ChildSpec, SupervisorSpec
from rnix_actors.supervision.views import agent_name

log = logging.getLogger(__name__)

ASK_TIMEOUT = 10.0


def offer_migration(
    planner: Any, path: str, name: str, child: ChildState
) -> MigrationAnswer | None:
    """Ask ``planner`` (None: there is none) whether another agent should take over the
    failing agent child ``name``. A broken planner never stops the escalation."""
    if planner is None or child.spec.supervisor is not None:
        return None
    offer = MigrationOffer(
        supervisor=path,
        child=name,
        template=agent_name(child.spec.agent),
        intent=child.spec.intent,
        exit_reason=child.last_exit,
        last_pid=child.pid,
        devices=child.spec.devices,
    )
    try:
        deadline = time.monotonic() + ASK_TIMEOUT
        answer = planner.ask(offer, block=True, timeout=ASK_TIMEOUT)
        if isinstance(answer, pykka.Future):  # the planner answers once it caught up
            answer = answer.get(timeout=max(0.0, deadline - time.monotonic()))
    except Exception as exc:
        log.warning("%s: migration planner failed: %s", path, exc)
        return MigrationAnswer("declined", f"planner failed: {exc}")
    if not isinstance(answer, MigrationAnswer):
        return MigrationAnswer("declined", f"planner answered {type(answer).__name__}")
    return answer


def migrated_spec(spec: ChildSpec, answer: MigrationAnswer) -> ChildSpec | None:
    """The child's spec running the substitute, or None if the answer is not a migration."""
    if answer.decision != "migrated" or not answer.substitute:
        return None
    return attrs.evolve(
        spec,
        agent=answer.substitute,
        intent=answer.intent or spec.intent,
        devices=answer.devices if answer.devices is not None else spec.devices,
    )


def escalation_reason(
    spec: SupervisorSpec, name: str, last_exit: str, answer: MigrationAnswer | None
) -> str:
    """Why the supervisor ``spec`` escalates after giving up on child ``name``."""
    why = "" if answer is None else f"; migration {answer.decision}: {answer.reason}"
    return (
        f"max_restarts_exceeded: child {name!r} needed more than "
        f"{spec.max_restarts} restarts in {spec.max_window}s "
        f"(last exit: {last_exit}){why}"
    )
