"""Deciding a resume from a checkpoint (the kernel's side of `System.resume_from`).

A resumed process keeps its PID, UUID, context, counters and driver position, and starts at
depth 0 with no parent. Its devices are those it held, narrowed to its template's current
devices: a resume never grants a device, even when the template grew since.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from rnix_actors.drivers.base import Driver
from rnix_actors.errors import NoSuchProcess, RnixError, SpawnError
from rnix_actors.kernel.checkpointing import Checkpointer, Identity, Resumption, decode
from rnix_actors.kernel.process import ProcessInfo, ProcessState
from rnix_actors.kernel.safety import child_devices
from rnix_actors.kernel.spawning import check_model, prepare_in_caller
from rnix_actors.store.checkpoints import CheckpointError, CheckpointStore
from rnix_actors.store.db import Store
from rnix_actors.templates import AgentTemplate, Skill, effective_devices

RESUMABLE = (ProcessState.LOST, ProcessState.SUSPENDED)


@attrs.frozen
class Restore:
    """Ask the kernel to resume ``pid`` from its last checkpoint (answered with `Restored`).
    ``retry``: the call a guard refused when it suspended ``pid`` runs again."""

    pid: int
    origin: str = "user"
    retry: bool = False
    link: Any = None  # an `Endpoint` linked to the process before it runs (a supervisor's)
    # A whitelist that narrows the resumed process further (a supervisor child spec's).
    devices: tuple[str, ...] | None = None


@attrs.frozen
class Restored:
    """A resume from a checkpoint started; ``note`` says what became of a refused call."""

    pid: int
    note: str = ""


@attrs.frozen
class Recovered:
    """Suspended processes of a previous system, to list (and resume on SIGRESUME)."""

    infos: tuple[ProcessInfo, ...]


@attrs.frozen
class RestorePlan:
    info: ProcessInfo  # the record of the resumed process (running, depth 0)
    template: AgentTemplate
    driver: Driver
    resumption: Resumption
    note: str = ""  # what became of a refused call (`refusal_note`)


def plan_restore(
    pid: int,
    store: Store,
    checkpoints: CheckpointStore | None,
    templates: Callable[[str], AgentTemplate | None],
    drivers: Callable[[str], Driver | None],
    skills: dict[str, Skill],
    known: ProcessInfo | None = None,
    retry: bool = False,
    requested: tuple[str, ...] | None = None,
) -> RestorePlan:
    """Decide a resume or raise (`NoSuchProcess`, `CheckpointError`, `SpawnError`); nothing
    is started or changed before every check passed. ``known``: the process table's record
    (newer than the store's row, which the process log writes a moment later); ``retry``:
    take back a guard's refusal so that the refused call runs again; ``requested``: a
    whitelist the devices narrow to as well."""
    if checkpoints is None:
        raise CheckpointError(
            f"cannot resume PID {pid}: checkpoints are off in this system "
            "(set kernel.checkpoints: true in .rnix/config.yaml and use a state dir)"
        )
    row = _resumable_row(pid, store, known)
    resumption = decode(checkpoints.latest(pid))
    ident = resumption.identity
    if ident.uuid != row.uuid:
        raise CheckpointError(
            f"the checkpoint of PID {pid} belongs to another process (UUID {ident.uuid}, "
            f"the process is {row.uuid}): it cannot be resumed; start its task again"
        )
    template = templates(ident.template)
    if template is None:
        raise SpawnError(
            f"cannot resume PID {pid}: its agent '{ident.template}' is no longer defined; "
            "restore the template file and try again"
        )
    devices = child_devices(ident.allowed, effective_devices(template, skills), requested)
    driver = drivers(ident.driver)
    if driver is None:
        raise SpawnError(
            f"cannot resume PID {pid}: its driver '{ident.driver}' is not registered; "
            "register it with System.register_driver() and try again"
        )
    check_model(driver, ident.model)
    info = _resumed_info(row, resumption, devices)
    note = refusal_note(resumption, retry)
    return RestorePlan(info, template, driver, resumption.retrying() if retry else resumption, note)


def _resumable_row(pid: int, store: Store, known: ProcessInfo | None) -> ProcessInfo:
    """The record of ``pid``, if it is a process that may resume."""
    row = known if known is not None else store.get_process(pid)
    if row is None:
        raise NoSuchProcess(pid)
    if row.state not in RESUMABLE:
        raise CheckpointError(
            f"cannot resume PID {pid}: it is {row.state}"
            + (f" ({row.exit_reason})" if row.exit_reason else "")
            + "; only lost and suspended processes resume from a checkpoint"
        )
    return row


def _resumed_info(row: ProcessInfo, resumption: Resumption, devices: frozenset[str]) -> ProcessInfo:
    """The record of the resumed process: running at depth 0, with the checkpoint's counters."""
    return attrs.evolve(
        row,
        ppid=0,
        depth=0,
        state=ProcessState.RUNNING,
        allowed_devices=tuple(sorted(devices)),
        exit_code=None,
        exit_reason="",
        exit_kind="",
        exit_origin="",
        result=resumption.result,
        tokens_used=resumption.tokens,
        steps=resumption.step,
        cost_usd=resumption.cost_usd,
        ended_at=None,
        children=(),
    )


def refusal_note(resumption: Resumption, retry: bool) -> str:
    """What a resume does with the call a guard refused when it suspended the process."""
    call = resumption.refused
    if call is None:
        return ""
    if retry:
        return f"the call {call.name} ({call.id}) a guard refused runs again"
    return (
        f"the call {call.name} ({call.id}) a guard refused is not run: the agent goes on "
        "with the refusal (resume with --retry to run it)"
    )


def prepare_restore(
    pid: int,
    checkpoints: CheckpointStore | None,
    templates: Callable[[str], AgentTemplate | None],
    drivers: Callable[[str], Driver | None],
) -> None:
    """In the caller's thread before a `Restore`: run the slow part of the model's check
    (`prepare_in_caller`: a replay script's parse) for the checkpoint's agent. Any problem
    is left for the kernel's `plan_restore` to report."""
    if checkpoints is None:
        return
    try:
        ident = decode(checkpoints.latest(pid)).identity
    except RnixError:
        return
    prepare_in_caller(ident.template, ident.driver, ident.model, templates, drivers)


def seek_driver(driver: Driver, resumption: Resumption) -> None:
    """Put a driver with a per-process position (replay) where the checkpoint left it."""
    seek = getattr(driver, "seek", None)
    if seek is not None and resumption.driver_position is not None:
        seek(resumption.pid, resumption.driver_position)


def checkpointer_for(
    checkpoints: CheckpointStore | None,
    info: ProcessInfo,
    driver: Driver,
    model: str,
    workdir: str,
    max_steps: int,
    origin: str,
    resumption: Resumption | None = None,
    child: str = "",
) -> Checkpointer | None:
    """The `Checkpointer` of a new (or resumed) process; None when checkpoints are off."""
    if checkpoints is None:
        return None
    identity = Identity(
        uuid=info.uuid,
        template=info.template,
        intent=info.intent,
        driver=driver.name,
        model=model,
        depth=info.depth,
        ppid=info.ppid,
        allowed=info.allowed_devices,
        workdir=workdir,
        max_steps=max_steps,
        origin=origin,
        created_at=info.created_at,
        child=child,
    )
    position = getattr(driver, "position", None)
    if resumption is None:
        return Checkpointer(checkpoints, info.pid, identity, position)
    return Checkpointer(
        checkpoints, info.pid, identity, position, resumption.seq, resumption.written
    )
