"""Messages of the process log (the actor that writes process rows to the store)."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class FirstCheckpoint:
    """A new process's checkpoint 0 (its intent), committed with its first row: no process
    is ever in the store without a checkpoint to resume from."""

    pid: int
    state: dict[str, Any]
    messages: tuple[dict[str, Any], ...]


@attrs.frozen
class Sync:
    """Ask: answered once every row told before it is in the store."""
