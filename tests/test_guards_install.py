"""Installing and removing syscall guards; replacing the immune system leaves no guard behind."""

from __future__ import annotations

import threading

from helpers import agent, call, respond, scripted

from rnix_actors import System
from rnix_actors.immune import ImmuneConfig
from rnix_actors.immune.guard import ImmuneGuard
from rnix_actors.messages.guards import ALLOW, SyscallAttempt, Verdict


class Seen:
    """A guard that records the pids it was shown."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, attempt: SyscallAttempt) -> Verdict:
        with self.lock:
            self.pids.append(attempt.pid)
        return ALLOW


def kernel_guards(system: System) -> tuple[object, ...]:
    assert system._run is not None
    kernel = system._run.kernel
    guards: tuple[object, ...] = kernel.proxy().guards.get(timeout=5)
    return guards


def test_a_removed_guard_is_not_shown_processes_spawned_after(system: System) -> None:
    agent(system, "w", scripted([respond(call("shell", command="true")), "done"]))
    seen = Seen()
    system.add_guard(seen)
    first = system.run("w", "go", timeout=10)
    system.remove_guard(seen)
    system.remove_guard(seen)  # unknown by now: ignored
    second = system.run("w", "go", timeout=10)
    assert first.exit_code == second.exit_code == 0
    assert first.pid in seen.pids and second.pid not in seen.pids


def test_replacing_the_immune_system_leaves_exactly_its_guard(system: System) -> None:
    for warn_only in (True, False, True):
        system.set_immune(ImmuneConfig(warn_only=warn_only))

    def immune_guards() -> list[object]:
        guards = kernel_guards(system)
        return [g for g in guards if isinstance(getattr(g, "__self__", g), ImmuneGuard)]

    assert len(immune_guards()) == 1
    system.immune.stop()
    assert immune_guards() == []
