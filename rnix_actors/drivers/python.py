"""The python driver: a host callable plays the model (embedding).

``PythonDriver(name, fn)`` calls ``fn(request)`` once per reasoning step. ``fn`` may look at
``request.step``, ``request.messages`` and the rest of the `LLMRequest`, and returns an
`LLMResponse` (text and/or tool calls) or a plain ``str``, which is a final answer. An
`LLMResponse` reports the step's usage (``input_tokens``, ``output_tokens``) and, if the
function knows it (a simulated or remote model), its ``duration_ms``; the kernel records
those instead of its own estimate and wall-clock measurement (the immune daemon learns
them). The driver is called from agent threads, so ``fn`` must be thread-safe if several
processes use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rnix_actors.cancel import Cancelled, CancelToken
from rnix_actors.drivers.base import LLMRequest, LLMResponse
from rnix_actors.drivers.replay import estimate_input_tokens, estimate_output_tokens
from rnix_actors.errors import DriverError

# The name becomes one segment of the device path /dev/llm/<name>.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

HostModel = Callable[[LLMRequest], LLMResponse | str]


class PythonDriver:
    """A driver backed by a host function; ``name`` is its provider name (``/dev/llm/<name>``)."""

    def __init__(self, name: str, fn: HostModel) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"driver name {name!r} is not valid: use letters, digits, '.', '_' and '-'"
            )
        if not callable(fn):
            raise TypeError(f"python driver '{name}' needs a callable, got {type(fn).__name__}")
        self.name = name
        self._fn = fn

    def complete(self, request: LLMRequest, cancel: CancelToken) -> LLMResponse:
        """Call the host function.

        A ``str`` result becomes a final answer with estimated token counts. Any exception from
        the function except `Cancelled` becomes `DriverError`, and so does a result of another
        type; `Cancelled` passes through, and is raised before the call if ``cancel`` already
        fired.
        """
        cancel.raise_if_cancelled()
        try:
            result = self._fn(request)
        except Cancelled:
            raise
        # BaseException on purpose: a SystemExit or KeyboardInterrupt escaping an actor thread
        # would stop every actor, so it is reported like any other failure.
        except BaseException as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise DriverError(f"python driver '{self.name}' failed: {detail}") from exc
        if isinstance(result, LLMResponse):
            return result
        if isinstance(result, str):
            return LLMResponse(
                content=result,
                input_tokens=estimate_input_tokens(request),
                output_tokens=estimate_output_tokens(result, ()),
                stop_reason="end_turn",
            )
        raise DriverError(
            f"python driver '{self.name}' returned {type(result).__name__}: "
            "return an LLMResponse or a str (the final answer)"
        )

    def prepare(self, model: str) -> None:
        """Nothing to check: the host function is the model."""

    def release(self, pid: int) -> None:
        """Nothing to forget: the host function keeps its own state, if any."""
