"""Signals that race a process's own exit, and a sender's SIGTERM grace (real actors)."""

from __future__ import annotations

import threading
from pathlib import Path

import attrs
import pykka
import pytest
from helpers import agent, call, respond

from rnix_actors import LLMRequest, LLMResponse, NoSuchProcess, ProcessState, RnixError, System
from rnix_actors.config import KernelConfig, load_config
from rnix_actors.kernel.agent import AgentProcess
from rnix_actors.kernel.process import Signal
from rnix_actors.messages.kernel import SendSignal, SendSignals


def holding(hold: threading.Event, entered: threading.Event | None = None):  # type: ignore[no-untyped-def]
    """A brain whose first step blocks until ``hold`` is set (a SIGTERM waits behind it)."""

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            if entered is not None:
                entered.set()
            hold.wait(30)
            return respond(call("list_files"))
        return "done"

    return brain


def agent_actor(pid: int) -> AgentProcess:
    for ref in pykka.ActorRegistry.get_by_class(AgentProcess):
        actor = ref._actor_weakref()
        if isinstance(actor, AgentProcess) and actor.pid == pid:
            return actor
    raise AssertionError(f"no actor for PID {pid}")


def test_a_batch_goes_on_past_a_process_whose_actor_already_ended(system: System) -> None:
    hold_gone, hold_kept = threading.Event(), threading.Event()
    agent(system, "g", holding(hold_gone), max_steps=1000)
    agent(system, "k", holding(hold_kept), max_steps=1000)
    gone, kept = system.spawn("g", "a"), system.spawn("k", "b")
    actor = agent_actor(gone)
    actor.actor_ref.stop(block=False)  # its actor ends; the kernel has not heard of an exit
    hold_gone.set()
    assert actor.actor_stopped.wait(10)
    kernel = system._require()
    answers = kernel.ask(SendSignals((gone, kept), Signal.SIGTERM, "test"), timeout=10)
    assert len(answers) == 2
    hold_kept.set()
    final = system.wait(kept, 10)
    assert final.exit_reason == "terminated by SIGTERM from test"


def test_kill_racing_the_process_exit_never_raises_a_pykka_error(system: System) -> None:
    agent(system, "quick", lambda request: "done")
    outcomes: set[str] = set()
    for _ in range(100):
        pid = system.spawn("quick", "finish at once")
        try:
            outcomes.add(system.kill(pid).split(":")[0])
        except (NoSuchProcess, RnixError) as exc:
            outcomes.add(type(exc).__name__)
        except pykka.ActorDeadError as exc:  # pragma: no cover - the defect this guards
            pytest.fail(f"raw Pykka error from System.kill: {exc!r}")
        system.wait(pid, 10)
    assert outcomes <= {"SIGTERM delivered", "noop"}


def test_the_senders_grace_replaces_the_kernels(project: Path) -> None:
    config = attrs.evolve(load_config(None), kernel=KernelConfig(sigterm_grace=600.0))
    with System(project, config=config) as system:
        hold, entered = threading.Event(), threading.Event()
        agent(system, "w", holding(hold, entered), max_steps=1000)
        pid = system.spawn("w", "blocks")
        assert entered.wait(10)  # in its first step: only a SIGKILL can end it now
        kernel = system._require()
        kernel.ask(SendSignal(pid, Signal.SIGTERM, "test", grace=0.05), timeout=10)
        final = system.wait(pid, 30)  # the kernel's 600 s would time this out
        hold.set()
        assert final.state is ProcessState.DEAD
        assert final.exit_reason == "killed by SIGKILL from test (SIGTERM grace period expired)", (
            final.exit_reason
        )


def test_an_unknown_message_to_a_service_is_logged_not_dropped(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    kernel = system._require()
    kernel.tell(12345)
    kernel.ask(SendSignals((), Signal.SIGTERM, "test"), timeout=10)  # after the unknown one
    assert "Kernel: unexpected message int dropped" in caplog.text
