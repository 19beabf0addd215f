"""`System.stop` called from one of the system's own threads: a subscriber callback (the event
bus's thread), a host device or a python brain (an agent's thread). Stopping waits for every
thread of the system, the caller's among them, so there it hands the stop to a thread of its
own and returns; the stop then completes as from outside. Real threads and actors throughout;
conftest's fixture fails a test that leaks a thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

from rnix_actors import (
    DeviceCall,
    LLMRequest,
    LLMResponse,
    ProcessInfo,
    ProcessState,
    System,
    WouldDeadlock,
)
from rnix_actors.messages.events import Event
from tests.helpers import agent, call, respond

WAIT = 20.0


def stopped(system: System, pid: int, returned: threading.Event) -> ProcessInfo:
    """Once the inside caller's `System.stop` returned (``returned``), wait for the stop it
    handed to its own thread and check it is done: the system down, ``pid`` dead. Returns
    ``pid``'s final info."""
    assert returned.wait(WAIT)
    for thread in threading.enumerate():
        if thread.name == "rnix-stop":
            thread.join(WAIT)
            assert not thread.is_alive()
    assert not system.running
    info = system.table.get(pid)
    assert info is not None and info.state is ProcessState.DEAD
    return info


def test_stop_from_a_subscriber_callback_returns_and_the_system_stops(project: Path) -> None:
    system = System(project).start()
    agent(system, "worker", lambda request: "done")
    returned = threading.Event()

    def on_exit(event: Event) -> None:
        system.stop()  # on the bus's thread, which the stop must also stop
        returned.set()

    system.subscribe(on_exit, ["Exit"])
    pid = system.spawn("worker", "finish, then the callback stops the system")

    assert stopped(system, pid, returned).exit_code == 0
    system.stop()  # and again from outside: nothing left to do


def test_stop_from_a_host_device_ends_the_caller_too(project: Path) -> None:
    system = System(project).start()
    returned = threading.Event()

    def stop_device(request: DeviceCall) -> str:
        system.stop()  # on the agent's thread, whose process the stop kills
        returned.set()
        return "stopping"

    system.register_device("/dev/stop", stop_device)
    steps = [respond(call("call_device", device="/dev/stop")), "done"]
    agent(system, "worker", lambda r: steps[min(r.step, 2) - 1], devices=("/dev/stop",))
    pid = system.spawn("worker", "stop the system from a device")

    stopped(system, pid, returned)


def test_stop_from_a_python_brain(project: Path) -> None:
    system = System(project).start()
    returned = threading.Event()

    def brain(request: LLMRequest) -> LLMResponse | str:
        system.stop()
        returned.set()
        return "done"

    agent(system, "worker", brain)
    pid = system.spawn("worker", "stop the system from the model call")

    stopped(system, pid, returned)


def test_a_callback_that_waits_for_the_bus_is_told_so_at_once(project: Path) -> None:
    """``sync_events`` and ``Subscription.cancel`` wait for the event bus, whose thread runs
    the callback: there they raise `WouldDeadlock` (naming what to do instead) rather than
    wait on themselves until a timeout."""
    system = System(project).start()
    agent(system, "worker", lambda request: "done")
    raised: list[BaseException] = []
    done = threading.Event()

    def on_exit(event: Event) -> None:
        for call_ in (system.sync_events, subscription.cancel):
            try:
                call_()
            except WouldDeadlock as exc:
                raised.append(exc)
        subscription.cancel_soon()  # what the error says to do
        done.set()

    subscription = system.subscribe(on_exit, ["Exit"])
    system.run("worker", "finish", timeout=WAIT)

    assert done.wait(WAIT)
    assert len(raised) == 2
    assert "event bus" in str(raised[0]) and "cancel_soon" in str(raised[1])
    system.sync_events()  # from outside, as ever
    system.stop()
