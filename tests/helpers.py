"""Test helpers: scripted python-driver brains and event collectors (real threads, no mocks)."""

from __future__ import annotations

import functools
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rnix_actors import AgentTemplate, Event, Limits, LLMRequest, LLMResponse, System, ToolCall


def call(name: str, **args: Any) -> ToolCall:
    return ToolCall(id=f"{name}-{id(args)}", name=name, input=args)


def respond(*calls: ToolCall, content: str = "", tokens: int = 10) -> LLMResponse:
    return LLMResponse(content=content, tool_calls=calls, input_tokens=tokens, output_tokens=0)


def scripted(steps: Sequence[LLMResponse | str]) -> Callable[[LLMRequest], LLMResponse | str]:
    """A brain that answers step N of every process with ``steps[N-1]``."""

    def brain(request: LLMRequest) -> LLMResponse | str:
        return steps[min(request.step, len(steps)) - 1]

    return brain


def agent(
    system: System,
    name: str,
    brain: Callable[[LLMRequest], LLMResponse | str],
    devices: Sequence[str] = ("/dev/fs", "/dev/shell"),
    **limits: Any,
) -> AgentTemplate:
    """Register a python-driver template named ``name`` driven by ``brain``."""
    system.register_llm(f"brain-{name}", brain)
    template = AgentTemplate(
        name=name, devices=tuple(devices), driver=f"brain-{name}", limits=Limits(**limits)
    )
    system.add_template(template)
    return template


class Collector:
    """Collects events; `wait_for` blocks (with a timeout) until a predicate matches."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        with self._cond:
            found: list[Event] = []

            def check() -> bool:
                found[:] = [e for e in self.events if predicate(e)]
                return bool(found)

            if not self._cond.wait_for(check, timeout):
                raise AssertionError("no matching event within timeout")
            return found[0]

    def of(self, pid: int, syscall: str | None = None) -> list[Event]:
        with self._cond:
            return [
                e for e in self.events if e.pid == pid and (syscall is None or e.syscall == syscall)
            ]


# -- host processes (for shell commands, whose PIDs inside the sandbox are not the host's) ------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the parenthesised command name: state, ppid, pgrp, ...
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """True if ``pid`` runs; a zombie awaiting its (re)parent's wait() counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


class Changes:
    """Wait for a state the system's events announce: the predicate is checked now and again
    after each event (never on a timer), until it holds or ``timeout`` passes. Subscribed
    until the system stops."""

    def __init__(self, system: System, syscalls: Iterable[str] | None = None) -> None:
        self._cond = threading.Condition()
        self._seen = 0
        system.subscribe(self._bump, syscalls)

    def _bump(self, event: Event) -> None:
        with self._cond:
            self._seen += 1
            self._cond.notify_all()

    def _moved(self, mark: int) -> bool:
        return self._seen != mark

    def until(self, predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                mark = self._seen
            if predicate():  # outside the lock: it may ask actors, which publish events
                return
            with self._cond:
                left = max(0.0, deadline - time.monotonic())
                if not self._cond.wait_for(functools.partial(self._moved, mark), left):
                    raise AssertionError(f"not reached within {timeout}s: {what or predicate}")


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait up to ``timeout`` for a condition that has no event to wait on (process death)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        pause.wait(0.01)
    return True


def host_pids(marker: str) -> list[int]:
    """Live (non-zombie) host processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if marker.encode() in cmdline and alive(int(entry)):
            found.append(int(entry))
    return found


_markers = itertools.count(1)


def marker() -> str:
    """A sleep duration no other process uses, to find the sleep on the host."""
    return f"30.{os.getpid()}{next(_markers):03d}"
