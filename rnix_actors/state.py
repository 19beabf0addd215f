"""Where a `System` keeps its state: a directory, a temporary directory, or nowhere.

``state="dir"`` (the default) keeps SQLite (``rnix.db``) and the per-process event logs
(``proc/<pid>/events.jsonl``) in the state dir: the ``state_dir=`` argument, else
``RNIX_STATE_DIR``, else ``<project>/.rnix``. ``state="temp"`` does the same in a fresh
private temporary directory (made by ``System()``) that `System.stop` removes.
``state="memory"`` writes no file at all: SQLite lives in memory, event logs are off, and
history ends with the system.

`KeepLogs` bounds the event logs of finished processes (by total size, by age, or both) for
hosts that run for a long time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any, Literal

import attrs

from rnix_actors.errors import SystemStopped
from rnix_actors.messages.lifecycle import ProcessInfo
from rnix_actors.store.db import Store

StateKind = Literal["dir", "temp", "memory"]
STATE_KINDS: tuple[StateKind, ...] = ("dir", "temp", "memory")


def resolve_state_dir(project_dir: Path, state_dir: Path | str | None) -> Path:
    """``state_dir`` argument > ``RNIX_STATE_DIR`` > ``<project>/.rnix``."""
    if state_dir is not None:
        return Path(state_dir).resolve()
    env = os.environ.get("RNIX_STATE_DIR")
    if env:
        return Path(env).resolve()
    return project_dir / ".rnix"


def _positive_or_none(instance: object, attribute: Any, value: float | None) -> None:
    if value is not None and (not isinstance(value, int | float) or value <= 0):
        raise ValueError(f"KeepLogs.{attribute.name} must be a positive number or None ({value!r})")


@attrs.frozen
class KeepLogs:
    """How many event logs of finished processes to keep.

    ``max_bytes``: the logs of finished processes together stay within this many bytes (the
    oldest are removed first); ``max_age``: a finished process's log is removed this many
    seconds after it closed. None means no bound. The logs of live processes are never
    removed. Checked when a log closes (the process exited) and when the system starts.
    """

    max_bytes: int | None = attrs.field(default=None, validator=_positive_or_none)
    max_age: float | None = attrs.field(default=None, validator=_positive_or_none)

    @property
    def bounded(self) -> bool:
        return self.max_bytes is not None or self.max_age is not None


@attrs.define
class StatePlace:
    """The resolved state of one system: ``dir`` is None for ``state="memory"``."""

    kind: StateKind
    dir: Path | None

    @classmethod
    def resolve(
        cls, kind: StateKind, project_dir: Path, state_dir: Path | str | None
    ) -> StatePlace:
        """Raise `ValueError` for an unknown kind or a ``state_dir`` that the kind ignores."""
        if kind not in STATE_KINDS:
            raise ValueError(f"state must be one of {', '.join(STATE_KINDS)} (got {kind!r})")
        if kind == "dir":
            return cls(kind, resolve_state_dir(project_dir, state_dir))
        if state_dir is not None:
            raise ValueError(
                f"state={kind!r} chooses its own place: drop state_dir={str(state_dir)!r} "
                "or use state='dir'"
            )
        if kind == "memory":
            return cls(kind, None)
        # Made now, so that the sandbox can hide it from agents from the start; removed by
        # `close`, or when the system is collected without having been stopped.
        folder = Path(tempfile.mkdtemp(prefix="rnix-state-"))
        place = cls(kind, folder)
        weakref.finalize(place, shutil.rmtree, folder, ignore_errors=True)
        return place

    def open(self) -> None:
        """Make the temporary directory again when a stopped ``temp`` system restarts."""
        if self.kind == "temp" and self.dir is not None and not self.dir.exists():
            self.dir.mkdir(mode=0o700)  # fails if someone else took the name meanwhile

    def close(self) -> None:
        """Remove the temporary directory of ``state="temp"``; the others stay."""
        if self.kind == "temp" and self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def db_path(self) -> Path | None:
        """The SQLite file, or None for an in-memory database."""
        return None if self.dir is None else self.dir / "rnix.db"


def read_history(place: StatePlace, store: Store | None) -> list[ProcessInfo]:
    """Every process of the state, by PID: from the running system's ``store``, else from the
    state dir's database (none yet: empty). ``memory`` and a stopped ``temp`` keep none."""
    if store is not None:
        return sorted(store.list_processes(limit=100_000), key=lambda p: p.pid)
    db = place.db_path
    if place.kind != "dir" or db is None:
        raise SystemStopped(f"state={place.kind!r} keeps no history after stop()")
    if not db.exists():
        return []  # reading history must not create a state dir
    reader = Store(db)
    try:
        return sorted(reader.list_processes(limit=100_000), key=lambda p: p.pid)
    finally:
        reader.close()
