"""A replay agent spawned by another agent (or a supervisor) whose script nobody loaded yet:
the script is parsed once, by the spawner's thread, never on the kernel's thread, and never read
again, even when the file changes afterwards; a bad script reaches the spawning model as an
error naming the file, the field and the fix."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers import agent, call, respond

from rnix_actors import AgentTemplate, ChildSpec, LLMRequest, LLMResponse, SupervisorSpec, System
from rnix_actors.drivers import replay
from rnix_actors.kernel.devices import DeviceCall, Effect

GOOD = """version: "1"
responses:
  - tool_calls:
      - {name: complete, input: {result: "the child's own answer"}}
"""
BAD = """version: "1"
responses:
  - tool_calls:
      - {nmae: complete, input: {result: never}}
"""
GARBAGE = "version: [this is not\n"


class Parses:
    """Records the thread of every replay-script parse; ``then`` runs after the first one
    (the attacker's move: the file changes right after it was read)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, then: Path, text: str) -> None:
        self.threads: list[str] = []
        self._then, self._text = then, text
        real = replay.parse_replay_script

        def parse(path: Path) -> replay.ReplayScript:
            self.threads.append(threading.current_thread().name)
            try:
                return real(path)
            finally:
                if len(self.threads) == 1:
                    self._then.write_text(self._text)

        monkeypatch.setattr(replay, "parse_replay_script", parse)


def spawner(system: System, child: str, answers: list[str]) -> None:
    """A parent that spawns ``child`` twice, keeping every tool result it is shown."""

    def brain(request: LLMRequest) -> LLMResponse | str:
        answers[:] = [m.content for m in request.messages if m.role == "tool"]
        if request.step <= 2:
            return respond(call("spawn", agent=child, intent=f"go {request.step}"))
        return "done"

    agent(system, "parent", brain, devices=())


def test_an_agents_spawn_parses_a_new_script_once_off_the_kernel_thread(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = project / "child.yaml"
    script.write_text(GOOD)
    parses = Parses(monkeypatch, script, GARBAGE)  # the file turns bad once it was read
    answers: list[str] = []
    with System(project) as system:
        system.add_template(AgentTemplate("child", model=str(script)))
        spawner(system, "child", answers)
        parent = system.run("parent", "delegate", timeout=30)
        children = [p for p in system.ps(all=True) if p.template == "child"]
    assert parent.exit_code == 0, parent.exit_reason
    assert answers == ["the child's own answer"] * 2  # the script as it was read
    assert [c.exit_code for c in children] == [0, 0]
    assert len(parses.threads) == 1, parses.threads
    assert not parses.threads[0].startswith("Kernel")


def test_a_bad_script_reaches_the_spawning_model_with_file_field_and_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = project / "child.yaml"
    script.write_text(BAD)
    # The file changes after the spawner's parse: the kernel must not read it again.
    parses = Parses(monkeypatch, script, BAD + "# edited\n")
    answers: list[str] = []
    with System(project) as system:
        system.add_template(AgentTemplate("child", model=str(script)))
        spawner(system, "child", answers)
        parent = system.run("parent", "delegate", timeout=30)
        started = {p.template for p in system.ps(all=True)}
    assert parent.exit_code == 0, parent.exit_reason
    first = answers[0]
    assert f"{script}:4" in first  # the file and the line
    assert "'responses[0].tool_calls[0]" in first and "nmae" in first  # the field
    assert "name" in first.split("(")[-1]  # the fix lists the allowed keys
    assert started == {"parent"}  # nothing half-started
    assert not any(t.startswith("Kernel") for t in parses.threads), parses.threads
    # Once for each spawn: the second sees the edited file, again in the spawner's thread.
    assert len(parses.threads) == 2, parses.threads


def test_a_supervisor_parses_its_childs_script_in_its_own_thread(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = project / "child.yaml"
    script.write_text(GOOD)
    parses = Parses(monkeypatch, script, GARBAGE)
    with System(project) as system:
        system.add_template(AgentTemplate("child", model=str(script)))
        spec = SupervisorSpec(
            "team", children=(ChildSpec("c", agent="child", intent="go", restart="transient"),)
        )
        final = system.supervise(spec).wait(timeout=30)
        (child,) = [p for p in system.ps(all=True) if p.template == "child"]
    assert final.status == "completed"
    assert child.result == "the child's own answer"
    assert len(parses.threads) == 1 and parses.threads[0].startswith("Supervisor")


@pytest.mark.parametrize("by", ["the caller", "a supervisor"])
def test_a_resume_parses_its_script_off_the_kernel_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by: str
) -> None:
    script = tmp_path / "held.yaml"
    hold = "  - tool_calls: [{name: call_device, input: {device: /dev/hold}}]\n"
    script.write_text('version: "1"\nresponses:\n' + hold + "  - content: finished\n")
    (tmp_path / ".rnix").mkdir()
    (tmp_path / ".rnix" / "supervisors.yaml").write_text(
        "supervisors:\n  - name: crew\n    autostart: true\n    children:\n"
        "      - {name: keeper, agent: held, intent: go, resume: true}\n"
    )
    held, release = threading.Event(), threading.Event()

    def holding(call: DeviceCall) -> str:
        held.set()
        return "released" if release.wait(30) else "timed out"

    def started() -> System:
        system = System(tmp_path, state_dir=tmp_path / "state", load_project=False)
        system.register_device("/dev/hold", holding, effect=Effect.READ)
        system.add_template(AgentTemplate("held", devices=("/dev/hold",), model=str(script)))
        return system.start()

    system = started()
    try:
        if by == "the caller":
            pid = system.spawn("held", "go")
        else:
            system.autostart()
            pid = int(system.supervisor("/crew").view().children[0].pid or 0)
        assert held.wait(30)
        system.pause(pid)
        release.set()  # the call returns; the process suspends before its next step
        paused = system.wait(pid, 30)
        assert paused.state.value == "suspended", paused.exit_reason
    finally:
        release.set()
        system.stop(checkpoint=True)
    parses = Parses(monkeypatch, script, script.read_text())
    system = started()  # a new driver: the script is not loaded yet
    try:
        if by == "the caller":
            system.resume_from(pid)
        else:
            system.autostart()
        final = system.table.wait_for(pid, lambda p: p.result == "finished", 30)
        assert final is not None and final.pid == pid
    finally:
        system.stop()
    assert len(parses.threads) == 1, parses.threads
    expected = "MainThread" if by == "the caller" else "Supervisor"
    assert parses.threads[0].startswith(expected), parses.threads
