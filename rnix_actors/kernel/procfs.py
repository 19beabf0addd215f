"""The ``/proc`` device: read-only process information for agents.

``/proc/<pid>/status`` is the process's status record as JSON and ``/proc/<pid>/intent`` its
stated intent. The device does not know the process table; the kernel hands it a ``lookup``
function, which keeps this module free of actors and locks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall, Effect

_FORMS = "/proc/<pid>/status or /proc/<pid>/intent"


class ProcDevice:
    """Answers ``read`` calls on ``/<pid>/status`` and ``/<pid>/intent``.

    ``lookup(pid)`` returns the process's status mapping, or None for an unknown PID. Raises
    `DeviceError` NOT_FOUND for an unknown PID or a path not of the forms above, PERMISSION for
    any op other than ``read``.
    """

    blocking = False  # an in-memory snapshot
    effect = Effect.READ  # answers questions, changes nothing

    def __init__(self, lookup: Callable[[int], Mapping[str, Any] | None]) -> None:
        self._lookup = lookup

    def handle(self, call: DeviceCall) -> str:
        if call.op != "read":
            raise DeviceError(
                ErrorCode.PERMISSION,
                call.device,
                f"/proc is read-only (op {call.op!r} refused); use op 'read'",
            )
        parts = call.subpath.strip("/").split("/")
        if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in ("status", "intent"):
            raise DeviceError(
                ErrorCode.NOT_FOUND,
                call.device,
                f"no such file {call.device}{call.subpath}; read {_FORMS}",
            )
        # isdigit() accepts non-ASCII digits that int() rejects or reads differently.
        if not parts[0].isascii():
            raise DeviceError(
                ErrorCode.NOT_FOUND, call.device, f"bad PID {parts[0]!r}; read {_FORMS}"
            )
        pid = int(parts[0])
        info = self._lookup(pid)
        if info is None:
            raise DeviceError(ErrorCode.NOT_FOUND, call.device, f"no such process: PID {pid}")
        if parts[1] == "status":
            # default=str: status records may hold enums, paths or timestamps.
            return json.dumps(dict(info), indent=2, sort_keys=True, default=str)
        intent = info.get("intent")
        return "" if intent is None else str(intent)
