"""A host's outbox: what its agents send the head, taken in batches by the head's long poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rnix_actors.ray.wire import Events, Figures

FIGURES_EVERY = 0.25  # seconds between two looks at the live figures of every process
MAX_BATCH = 4096  # items per drain: a long backlog is sent in several answers


class Outbox:
    def __init__(self) -> None:
        # The items: put by agent threads and by the host's Ray threads, taken by the head's
        # long poll (`drain`, another Ray thread), which waits on it for something to send.
        self._cond = threading.Condition()
        self._items: list[Any] = []
        self._sent: dict[int, int] = {}  # pid -> figures version last sent
        self._figures_at = 0.0

    def put(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            if len(self._items) == 1:
                self._cond.notify_all()

    def take(self, timeout: float, figures: Callable[[], list[tuple[Any, ...]]]) -> list[Any]:
        """Wait up to ``timeout`` for something to send; return it (consecutive event
        batches merged, in order), with the live figures that changed when it is time."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            items, self._items = self._items[:MAX_BATCH], self._items[MAX_BATCH:]
        batch = _merged(items)
        now = time.monotonic()
        if now - self._figures_at >= FIGURES_EVERY:
            self._figures_at = now
            every = figures()
            rows = [row for row in every if self._sent.get(row[0]) != row[-1]]
            self._sent = {row[0]: row[-1] for row in every}
            if rows:
                batch.append(Figures(tuple(rows)))
        return batch


def _merged(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    run: list[Any] = []
    for item in items:
        if isinstance(item, Events):
            run.extend(item.events)
            continue
        if run:
            out.append(Events(tuple(run)))
            run = []
        out.append(item)
    if run:
        out.append(Events(tuple(run)))
    return out
