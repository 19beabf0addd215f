"""What bench/ray.py's agents run on the hosts (shipped to every node with Ray's runtime_env).

Functions here are pickled by reference, so each host process has its own `GATE`: idle agents
block on it in a device call that costs no CPU, and one releaser agent per host opens it.
"""

from __future__ import annotations

import threading
from typing import Any

GATE = threading.Event()
HOLD = 900.0  # seconds an idle agent waits at most


def hold(call: Any) -> str:
    GATE.wait(HOLD)
    return "released"


def release(call: Any) -> str:
    GATE.set()
    return "opened"


def null(call: Any) -> str:
    return ""


def _calls(device: str, n: int = 1) -> Any:
    from rnix_actors import LLMResponse, ToolCall

    calls = tuple(ToolCall(f"c{i}", "call_device", {"device": device}) for i in range(n))
    return LLMResponse(content="", tool_calls=calls, input_tokens=10, output_tokens=0)


def idle_brain(request: Any) -> Any:
    return _calls("/dev/bench/hold") if request.step == 1 else "done"


def releaser_brain(request: Any) -> Any:
    return _calls("/dev/bench/release") if request.step == 1 else "done"


def quick_brain(request: Any) -> Any:
    return "done"


def busy_brain(calls: int) -> Any:
    def brain(request: Any) -> Any:
        return _calls("/dev/bench/null", calls) if request.step == 1 else "done"

    return brain
