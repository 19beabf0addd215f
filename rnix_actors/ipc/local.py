"""`Api`: what the CLI and the shell need from a system, near or far.

`Client` (a daemon over its socket) and `LocalApi` (a `Service` in this process) both fit,
and return the same JSON-ready dicts, so every command has one code path. Both raise
`ApiError` for a failed request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from rnix_actors.ipc.protocol import ApiError, Code
from rnix_actors.ipc.service import Service
from rnix_actors.ipc.streams import EventStream


class Stream(Protocol):
    result: dict[str, Any]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """``{"frame": "event" | "end", "data": ...}``; the last one is ``end``."""
        ...

    def cancel(self) -> None:
        """End the stream early (any thread); the iterator then yields ``end``."""
        ...

    def close(self) -> None: ...


class Api(Protocol):
    kind: str  # "daemon" or "embedded"

    def call(self, method: str, **params: Any) -> dict[str, Any]: ...

    def stream(self, method: str, **params: Any) -> Stream: ...

    def close(self) -> None: ...


class LocalStream:
    def __init__(self, service: Service, stream: EventStream, result: dict[str, Any]) -> None:
        self._service = service
        self._stream = stream
        self.result = result

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from self._stream.frames()
        finally:
            self._service.release(self._stream)

    def cancel(self) -> None:
        self._stream.cancel()

    def close(self) -> None:
        self._service.release(self._stream)


class LocalApi:
    """An in-process `Api` over ``service`` (an embedded system)."""

    kind = "embedded"

    def __init__(self, service: Service) -> None:
        self.service = service

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        if method == "shutdown":
            raise ApiError(Code.UNAVAILABLE, "an embedded system stops when its command ends")
        return self.service.call(method, params)

    def stream(self, method: str, **params: Any) -> LocalStream:
        stream, result = self.service.open_stream(method, params)
        return LocalStream(self.service, stream, result)

    def close(self) -> None:
        self.service.close()
