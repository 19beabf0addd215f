"""``/dev/llm/<provider>``: the model devices, as seen by the device table.

A process never calls its model through a tool: the reasoning loop does it, and records each
call as a ``Write``/``Read`` pair on ``/dev/llm/<provider>``. This device makes the providers
visible (``read`` on ``/dev/llm`` lists them, on ``/dev/llm/<name>`` describes one) and refuses
every other operation, so an agent cannot use a tool call to reach another model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall, Effect


class LLMDevice:
    blocking = False  # answers from memory
    effect = Effect.READ  # answers questions, changes nothing

    def __init__(self, drivers: Callable[[], Mapping[str, object]]) -> None:
        self._drivers = drivers

    def handle(self, call: DeviceCall) -> str:
        if call.op != "read" or call.args:
            raise DeviceError(
                ErrorCode.PERMISSION,
                call.device + call.subpath,
                "models are called by the kernel, not through tools; use complete to answer",
            )
        drivers = self._drivers()
        name = call.subpath.strip("/")
        if not name:
            return json.dumps(sorted(drivers))
        driver = drivers.get(name)
        if driver is None:
            raise DeviceError(
                ErrorCode.NOT_FOUND,
                f"/dev/llm/{name}",
                f"no such provider; known: {', '.join(sorted(drivers))}",
            )
        return json.dumps({"name": name, "driver": type(driver).__name__})
