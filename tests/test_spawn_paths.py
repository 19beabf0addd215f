"""Every way a process starts keeps the same fences: no device beyond its parent's, its
template's and its request's whitelist (monotonic inheritance), depth at most 8, the work dir
inside the project (and out of ``.rnix/``), and the tree bounds (``kernel.max_processes``
here) refusing the start when reached.

`PATHS` lists the ways; `test_every_source_of_a_spawn_has_a_case` fails when the code grows a
new place that builds a spawn or restore request, so a path without a case is visible. Each
path has a property test (Hypothesis draws the whitelists and work dirs; real systems, real
threads) or, where a run is costly (migration, resume), a table of cases, and a case in
`test_the_system_wide_bound_refuses_every_path`.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import call, respond
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnix_actors
from rnix_actors import (
    AgentTemplate,
    ChildSpec,
    LLMRequest,
    LLMResponse,
    ProcessInfo,
    Skill,
    SupervisorSpec,
    System,
)
from rnix_actors.aio import AsyncSystem
from rnix_actors.compose import parse_workflow
from rnix_actors.errors import SpawnError
from rnix_actors.ipc.protocol import ApiError
from rnix_actors.ipc.service import Service
from rnix_actors.kernel.devices import DeviceCall, Effect
from rnix_actors.kernel.process import ProcessState
from rnix_actors.kernel.safety import MAX_SPAWN_DEPTH

# path -> (the module that builds its requests, the request it builds); see the source scan
PATHS = {
    # System.spawn (the CLI, the API) builds its request with System.spawn_request
    "api spawn": ("rnix_actors/system.py", "spawn_request"),
    "ipc spawn": ("rnix_actors/system.py", "spawn_request"),  # the daemon calls System.spawn
    "every System.spawn_request": ("rnix_actors/app/registry.py", "SpawnRequest"),
    "aio spawn": ("rnix_actors/aio/system.py", "spawn_request"),
    "agent spawn": ("rnix_actors/kernel/agent.py", "SpawnRequest"),  # the spawn tool
    "supervisor start and restart": ("rnix_actors/supervision/spawning.py", "SpawnRequest"),
    "compose workflow": ("rnix_actors/supervision/spawning.py", "SpawnRequest"),  # per node
    "pipe": ("rnix_actors/supervision/spawning.py", "SpawnRequest"),
    "migration": ("rnix_actors/supervision/spawning.py", "SpawnRequest"),  # the substitute
    "resume from a checkpoint": ("rnix_actors/app/signals.py", "Restore"),
    "supervisor resume of a child left by a previous system": (
        "rnix_actors/supervision/spawning.py",
        "Restore",
    ),
}
REQUEST = re.compile(r"\b(SpawnRequest|Restore)\(|\.(spawn_request)\(")

PROBE = "/dev/where"
POOL = ("/dev/fs", "/dev/fs/docs", "/dev/shell", "/dev/pay")
whitelists = st.frozensets(st.sampled_from(POOL), max_size=4).map(lambda s: s | {PROBE})
requests = st.none() | whitelists
FEW = settings(
    max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
_names = itertools.count(1)

Brain = Callable[[LLMRequest], "LLMResponse | str"]


def test_every_source_of_a_spawn_has_a_case() -> None:
    root = Path(rnix_actors.__file__).parent
    sources = set()
    for path in root.rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            code = line.strip()
            if code.startswith(("#", "class ", "def ", "case ")):
                continue  # definitions, and the kernel receiving the requests
            for found in REQUEST.finditer(code):
                kind = found.group(1) or found.group(2)
                sources.add((path.relative_to(root.parent).as_posix(), kind))
    missing = sources - set(PATHS.values())
    assert not missing, f"a new way to start a process: add a case for {missing} to PATHS"
    assert set(PATHS.values()) <= sources, "PATHS names a source that no longer spawns"


# -- the probe and the checks ---------------------------------------------------------------


class Probe:
    """A host device each test agent calls first: it records the process's work dir."""

    def __init__(self) -> None:
        self.workdirs: dict[int, Path] = {}
        self._lock = threading.Lock()

    def __call__(self, device_call: DeviceCall) -> str:
        with self._lock:
            self.workdirs[device_call.pid] = Path(device_call.workdir)
        return "noted"

    def seen(self, pid: int) -> bool:
        with self._lock:
            return pid in self.workdirs


def probing(then: Brain | str = "done") -> Brain:
    """Calls the probe at its first step, then ``then`` (an answer or a brain)."""

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(call("call_device", device=PROBE))
        return then(request) if callable(then) else then

    return brain


def make(
    system: System, devices: frozenset[str], brain: Brain, skills: tuple[str, ...] = ()
) -> str:
    name = f"t{next(_names)}"
    system.register_llm(f"brain-{name}", brain)
    system.add_template(
        AgentTemplate(name, devices=tuple(sorted(devices)), driver=f"brain-{name}", skills=skills)
    )
    return name


def covered(devices: tuple[str, ...], bound: frozenset[str]) -> bool:
    return all(any(d == b or d.startswith(b + "/") for b in bound) for d in devices)


def fenced(
    system: System,
    probe: Probe,
    pid: int,
    bounds: list[frozenset[str] | None],
    workdir: Path,
    parent: ProcessInfo | None = None,
) -> ProcessInfo:
    """Assert the fences for ``pid`` and return its final info."""
    info = system.wait(pid, 30)
    assert info.exit_code == 0, info.exit_reason
    for bound in bounds:
        if bound is not None:
            assert covered(info.allowed_devices, bound), (info.allowed_devices, bound)
    if parent is None:
        assert info.depth == 0
    else:
        assert info.depth == parent.depth + 1 <= MAX_SPAWN_DEPTH
        assert covered(info.allowed_devices, frozenset(parent.allowed_devices))
    seen = probe.workdirs[pid]
    assert seen == workdir
    project = system.project_dir.resolve()
    assert seen.resolve().is_relative_to(project)
    assert not seen.resolve().is_relative_to(project / ".rnix")
    return info


@pytest.fixture
def probe(system: System) -> Probe:
    found = Probe()
    system.register_device(PROBE, found, effect=Effect.READ)
    (system.project_dir / "sub").mkdir(exist_ok=True)
    (system.project_dir.parent / "outside").mkdir(exist_ok=True)
    return found


# Work dirs a caller may name: accepted only inside the project and outside .rnix/.
WORKDIRS = {".": True, "sub": True, "/": False, "..": False, ".rnix": False, "../outside": False}


def _resolve(system: System, name: str) -> Path:
    return Path(name) if name.startswith("/") else (system.project_dir / name).resolve()


# -- one property per path ------------------------------------------------------------------


def test_api_spawn(system: System, probe: Probe) -> None:
    @FEW
    @given(template=whitelists, requested=requests, workdir=st.sampled_from(sorted(WORKDIRS)))
    def case(template: frozenset[str], requested: frozenset[str] | None, workdir: str) -> None:
        name = make(system, template, probing())
        where = _resolve(system, workdir)
        devices = None if requested is None else sorted(requested)
        if not WORKDIRS[workdir]:
            with pytest.raises(SpawnError, match="work dir"):
                system.spawn(name, "go", devices=devices, workdir=where)
            return
        pid = system.spawn(name, "go", devices=devices, workdir=where)
        fenced(system, probe, pid, [template, requested], where)

    case()


def test_ipc_spawn(system: System, probe: Probe) -> None:
    service = Service(system)

    @FEW
    @given(template=whitelists, workdir=st.sampled_from(sorted(WORKDIRS)))
    def case(template: frozenset[str], workdir: str) -> None:
        name = make(system, template, probing())
        where = _resolve(system, workdir)
        params = {"agent": name, "intent": "go", "workdir": str(where)}
        if not WORKDIRS[workdir]:
            with pytest.raises(ApiError, match="work dir"):
                service.call("spawn", params)
            return
        pid = int(service.call("spawn", params)["pid"])
        fenced(system, probe, pid, [template], where)

    case()


def test_aio_spawn(project: Path) -> None:
    probe = Probe()
    (project / "sub").mkdir()

    async def main() -> list[tuple[ProcessInfo, frozenset[str]]]:
        async with AsyncSystem(project) as aio:
            aio.system.register_device(PROBE, probe, effect=Effect.READ)
            seen = []
            for template, requested in (
                (frozenset({PROBE, "/dev/fs", "/dev/shell"}), ["/dev/fs/docs", PROBE]),
                (frozenset({PROBE}), None),
            ):
                name = make(aio.system, template, probing())
                pid = await aio.spawn(name, "go", devices=requested, workdir=project / "sub")
                info = await aio.wait(pid, 30)
                seen.append((info, template))
                if requested is not None:
                    assert covered(info.allowed_devices, frozenset(requested))
            with pytest.raises(SpawnError, match="work dir"):
                await aio.spawn(name, "go", workdir="/")
            return seen

    for info, template in asyncio.run(main()):
        assert info.exit_code == 0 and info.depth == 0
        assert covered(info.allowed_devices, template)
        assert probe.workdirs[info.pid] == project / "sub"


def test_agent_spawn(system: System, probe: Probe) -> None:
    @FEW
    @given(parent_set=whitelists, template=whitelists, requested=requests)
    def case(
        parent_set: frozenset[str], template: frozenset[str], requested: frozenset[str] | None
    ) -> None:
        child = make(system, template, probing())
        args: dict[str, Any] = {"agent": child, "intent": "help"}
        if requested is not None:
            args["devices"] = sorted(requested)

        def parent_brain(request: LLMRequest) -> LLMResponse | str:
            return respond(call("spawn", **args)) if request.step == 2 else "done"

        parent = make(system, parent_set, probing(parent_brain))
        where = system.project_dir / "sub"
        pid = system.spawn(parent, "delegate", workdir=where)
        parent_info = fenced(system, probe, pid, [parent_set], where)
        (child_pid,) = [p.pid for p in system.ps(all=True) if p.ppid == pid]
        # The child works in its parent's work dir: the spawn tool cannot name another.
        fenced(system, probe, child_pid, [template, requested], where, parent=parent_info)

    case()


def test_agent_spawn_chain_stops_at_depth_8(system: System, probe: Probe) -> None:
    name = f"t{next(_names)}"

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            return respond(call("spawn", agent=name, intent="deeper"))
        return "done"

    system.register_llm(f"brain-{name}", brain)
    system.add_template(AgentTemplate(name, devices=(PROBE,), driver=f"brain-{name}"))
    root = system.spawn(name, "dive")
    system.wait(root, 60)
    depths = [p.depth for p in system.ps(all=True) if p.template == name]
    assert max(depths) == MAX_SPAWN_DEPTH and len(depths) == MAX_SPAWN_DEPTH + 1


def test_supervisor_start_and_restart(system: System, probe: Probe) -> None:
    @FEW
    @given(template=whitelists, requested=requests)
    def case(template: frozenset[str], requested: frozenset[str] | None) -> None:
        crashed = threading.Event()

        def then(request: LLMRequest) -> LLMResponse | str:
            if not crashed.is_set():
                crashed.set()
                raise RuntimeError("first incarnation crashes")
            return "done"

        name = make(system, template, probing(then))
        devices = None if requested is None else tuple(sorted(requested))
        spec = SupervisorSpec(
            f"sup{next(_names)}",
            children=(ChildSpec("c", agent=name, intent="go", devices=devices),),
        )
        final = system.supervise(spec).wait(timeout=30)
        assert final.status == "completed" and final.restarts == 1
        runs = [p for p in system.ps(all=True) if p.template == name]
        assert len(runs) == 2  # the first incarnation and its restart
        for run in runs:
            assert covered(run.allowed_devices, template)
            if requested is not None:
                assert covered(run.allowed_devices, requested)
            assert run.depth == 0 and probe.workdirs[run.pid] == system.project_dir

    case()


def test_compose_workflow_and_pipe(system: System, probe: Probe) -> None:
    @FEW
    @given(first=whitelists, second=whitelists, as_pipe=st.booleans())
    def case(first: frozenset[str], second: frozenset[str], as_pipe: bool) -> None:
        a, b = make(system, first, probing()), make(system, second, probing())
        if as_pipe:
            result = system.compose.pipe(f"{a} | {b}", "go", timeout=60)
        else:
            text = f"name: w{next(_names)}\nagents:\n  x: {{agent: {a}, intent: go}}\n"
            text += f"  y: {{agent: {b}, intent: next, depends_on: [x]}}\n"
            workflow = parse_workflow(text, lambda n: n in system.templates, "wf.yaml")
            result = system.compose.run(workflow, lambda p: None, timeout=60)
        assert result.ok
        for name, template in ((a, first), (b, second)):
            (run,) = [p for p in system.ps(all=True) if p.template == name]
            assert covered(run.allowed_devices, template) and run.depth == 0
            assert probe.workdirs[run.pid] == system.project_dir

    case()


@pytest.mark.parametrize(
    ("original", "substitute"),
    [
        ({PROBE, "/dev/fs"}, {PROBE, "/dev/fs", "/dev/shell", "/dev/pay"}),
        ({PROBE, "/dev/fs/docs"}, {PROBE, "/dev/fs"}),
        ({PROBE}, {PROBE, "/dev/shell"}),
    ],
)
def test_migration(system: System, probe: Probe, original: set[str], substitute: set[str]) -> None:
    system.add_skill(Skill("pondering", "thinks it over"))

    def broken(request: LLMRequest) -> LLMResponse | str:
        raise RuntimeError("the model is down")

    orig = make(system, frozenset(original), broken, skills=("pondering",))
    sub = make(system, frozenset(substitute), probing(), skills=("pondering",))
    text = (
        f"name: m{next(_names)}\nagents:\n  work: {{agent: {orig}, intent: go, max_restarts: 1}}\n"
    )
    workflow = parse_workflow(text, lambda n: n in system.templates, "wf.yaml")
    result = system.compose.run(workflow, lambda p: None, timeout=60)
    (node,) = result.nodes
    assert node.status == "migrated" and node.ran == sub, node
    (run,) = [p for p in system.ps(all=True) if p.template == sub]
    assert covered(run.allowed_devices, frozenset(original))
    assert covered(run.allowed_devices, frozenset(substitute))
    assert run.depth == 0 and probe.workdirs[run.pid] == system.project_dir


def _suspended_worker(
    tmp_path: Path, probe: Probe, devices: set[str], requested: set[str] | None
) -> ProcessInfo:
    """A worker of a previous system, suspended with its checkpoint (the system stopped)."""
    hold = threading.Event()

    def pacing(request: LLMRequest) -> LLMResponse | str:
        hold.wait(0.05)  # until paused
        return respond(call("call_device", device=PROBE))

    system = _worker_system(tmp_path, probe, devices, probing(pacing))
    try:
        listed = None if requested is None else sorted(requested)
        pid = system.spawn("worker", "count", devices=listed, workdir=tmp_path / "project" / "sub")
        assert _eventually(lambda: probe.seen(pid))
        system.pause(pid)
        original = system.wait(pid, 30)
        assert original.state is ProcessState.SUSPENDED
    finally:
        hold.set()
        system.stop(checkpoint=True)
    probe.workdirs.clear()
    return original


def _worker_system(
    tmp_path: Path, probe: Probe, devices: set[str], brain: Brain, config: str = ""
) -> System:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True, exist_ok=True)
    (project / ".rnix").mkdir(exist_ok=True)
    (project / ".rnix" / "config.yaml").write_text(config)
    system = System(project, state_dir=tmp_path / "state")
    system.register_device(PROBE, probe, effect=Effect.READ)
    system.register_llm("brain-worker", brain)
    system.add_template(
        AgentTemplate("worker", devices=tuple(sorted(devices)), driver="brain-worker")
    )
    return system.start()


@pytest.mark.parametrize(
    ("before", "requested", "after"),
    [
        ({PROBE, "/dev/fs"}, None, {PROBE, "/dev/fs", "/dev/shell"}),  # template widened
        ({PROBE, "/dev/fs", "/dev/shell"}, {PROBE, "/dev/fs"}, {PROBE, "/dev/fs", "/dev/shell"}),
        ({PROBE, "/dev/fs", "/dev/shell"}, None, {PROBE, "/dev/shell"}),  # template narrowed
    ],
)
def test_resume_from_a_checkpoint(
    tmp_path: Path, before: set[str], requested: set[str] | None, after: set[str]
) -> None:
    probe = Probe()
    original = _suspended_worker(tmp_path, probe, before, requested)
    system = _worker_system(tmp_path, probe, after, probing())
    try:
        system.resume(original.pid)
        info = system.wait(original.pid, 30)
        assert info.exit_code == 0, info.exit_reason
        assert covered(info.allowed_devices, frozenset(original.allowed_devices))
        assert covered(info.allowed_devices, frozenset(after))
        assert info.depth == 0 and info.ppid == 0
        # Its own work dir, checked when it was first spawned.
        assert probe.workdirs[original.pid] == tmp_path / "project" / "sub"
    finally:
        system.stop()


def _eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    tick = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        tick.wait(0.01)
    return predicate()


# -- the system-wide bound refuses a start on every path -------------------------------------

LIMIT = "kernel.max_processes"


def _holding(system: System, gates: list[threading.Event]) -> int:
    """Start a process that keeps its slot until its gate is set."""
    gate = threading.Event()
    gates.append(gate)

    def hold(request: LLMRequest) -> LLMResponse | str:
        return "done" if gate.wait(0.05) else respond(call("list_files"))

    return system.spawn(make(system, frozenset({PROBE, "/dev/fs"}), hold), "hold a slot")


def refusal(path: str, system: System, gates: list[threading.Event]) -> str:
    """With ``kernel.max_processes: 2``, start one process by ``path`` while the system is
    full; return the refusal it got."""
    name = make(system, frozenset({PROBE}), probing())
    _holding(system, gates)
    if path == "agent spawn":  # the parent takes the second slot
        seen: list[str] = []

        def parent(request: LLMRequest) -> LLMResponse | str:
            seen[:] = [m.content for m in request.messages if m.role == "tool"]
            return respond(call("spawn", agent=name, intent="x"))  # again and again

        pid = system.spawn(make(system, frozenset({PROBE}), parent), "delegate")
        ended = system.wait(pid, 30)
        # Each refusal counts for the parent's circuit breaker: the third in a row ends it
        # before the model is asked again.
        assert len(seen) == 2 and "INTERNAL|spawn" in ended.exit_reason, ended.exit_reason
        assert ended.exit_reason.startswith("circuit_breaker"), ended.exit_reason
        return seen[0]
    _holding(system, gates)
    if path == "api spawn":
        with pytest.raises(SpawnError) as info:
            system.spawn(name, "go")
        return str(info.value)
    if path == "ipc spawn":
        with pytest.raises(ApiError) as api:
            Service(system).call("spawn", {"agent": name, "intent": "go"})
        return str(api.value)
    if path == "supervisor start and restart":
        spec = SupervisorSpec("full", children=(ChildSpec("c", agent=name, intent="go"),))
        final = system.supervise(spec).wait(timeout=30)
        assert final.status == "escalated" and final.restarts == final.max_restarts, final
        return final.reason
    if path == "pipe":
        return system.compose.pipe(name, "go", timeout=60).nodes[0].reason
    if path == "compose workflow":
        text = f"name: full\nagents:\n  x: {{agent: {name}, intent: go}}\n"
        workflow = parse_workflow(text, lambda n: n in system.templates, "wf.yaml")
        return system.compose.run(workflow, lambda p: None, timeout=60).nodes[0].reason
    raise AssertionError(f"no bound case for {path}")


async def _aio_refusal(project: Path) -> str:
    async with AsyncSystem(project) as aio:
        aio.system.register_device(PROBE, Probe(), effect=Effect.READ)
        gates: list[threading.Event] = []
        try:
            name = make(aio.system, frozenset({PROBE}), probing())
            _holding(aio.system, gates)
            _holding(aio.system, gates)
            with pytest.raises(SpawnError) as info:
                await aio.spawn(name, "go")
            return str(info.value)
        finally:
            for gate in gates:
                gate.set()


# Paths whose bound is tested elsewhere, and why that covers them.
BOUND_ELSEWHERE = {
    "resume from a checkpoint": "test_the_system_wide_bound_refuses_a_resume",
    "every System.spawn_request": "api spawn, ipc spawn, aio spawn",
    # A substitute starts by its supervisor's own start (Supervisor._spawn), the path of
    # 'supervisor start and restart'; the original's exit frees its slot just before, so a
    # full system cannot be set up deterministically around it.
    "migration": "supervisor start and restart",
    # The kernel's own resume, refused by the bound like the user's.
    "supervisor resume of a child left by a previous system": (
        "test_the_system_wide_bound_refuses_a_resume"
    ),
}


@pytest.mark.parametrize("path", [p for p in PATHS if p not in BOUND_ELSEWHERE])
def test_the_system_wide_bound_refuses_every_path(tmp_path: Path, path: str) -> None:
    project = tmp_path / "project"
    (project / ".rnix").mkdir(parents=True)
    (project / ".rnix" / "config.yaml").write_text("kernel:\n  max_processes: 2\n")
    if path == "aio spawn":
        assert LIMIT in asyncio.run(_aio_refusal(project))
        return
    gates: list[threading.Event] = []
    with System(project) as system:
        system.register_device(PROBE, Probe(), effect=Effect.READ)
        try:
            assert LIMIT in refusal(path, system, gates)
        finally:
            for gate in gates:
                gate.set()


def test_the_system_wide_bound_refuses_a_resume(tmp_path: Path) -> None:
    probe = Probe()
    original = _suspended_worker(tmp_path, probe, {PROBE, "/dev/fs"}, None)
    config = "kernel:\n  max_processes: 1\n"
    system = _worker_system(tmp_path, probe, {PROBE, "/dev/fs"}, probing(), config)
    gates: list[threading.Event] = []
    try:
        _holding(system, gates)
        with pytest.raises(SpawnError, match=LIMIT):
            system.resume_from(original.pid)
        assert system.info(original.pid).state is ProcessState.SUSPENDED  # nothing started
    finally:
        for gate in gates:
            gate.set()
        system.stop()


def test_a_resume_rechecks_the_work_dir_against_the_current_config(tmp_path: Path) -> None:
    outside = tmp_path / "checkout"
    outside.mkdir()
    allowed = f"kernel:\n  allowed_workdirs: [{outside}]\n"
    probe = Probe()
    hold = threading.Event()

    def pacing(request: LLMRequest) -> LLMResponse | str:
        hold.wait(0.05)  # until paused
        return respond(call("call_device", device=PROBE))

    system = _worker_system(tmp_path, probe, {PROBE}, probing(pacing), allowed)
    try:
        pid = system.spawn("worker", "count", workdir=outside)
        assert _eventually(lambda: probe.seen(pid))
        system.pause(pid)
        assert system.wait(pid, 30).state is ProcessState.SUSPENDED
    finally:
        hold.set()
        system.stop(checkpoint=True)
    probe.workdirs.clear()
    # The dir is no longer allowed: the process may not resume there.
    system = _worker_system(tmp_path, probe, {PROBE}, probing())
    try:
        with pytest.raises(SpawnError, match=f"cannot resume PID {pid}: .*outside the project"):
            system.resume_from(pid)
        assert system.info(pid).state is ProcessState.SUSPENDED and not probe.workdirs
    finally:
        system.stop()


CREW = """supervisors:
  - name: crew
    autostart: true
    children:
      - {{name: keeper, agent: worker, intent: count, resume: true, devices: {devices}}}
"""


def test_supervisor_resume_of_a_child_left_by_a_previous_system(tmp_path: Path) -> None:
    """A ``resume: true`` child continues its checkpoint under the same PID, with no more than
    its checkpoint's devices, its template's and its (since narrowed) child spec's."""
    probe = Probe()
    hold = threading.Event()

    def pacing(request: LLMRequest) -> LLMResponse | str:
        hold.wait(0.05)  # until paused
        return respond(call("call_device", device=PROBE))

    crew = tmp_path / "project" / ".rnix" / "supervisors.yaml"
    crew.parent.mkdir(parents=True)
    crew.write_text(CREW.format(devices=f"[{PROBE}, /dev/fs]"))
    before = {PROBE, "/dev/fs", "/dev/shell"}
    system = _worker_system(tmp_path, probe, before, probing(pacing))
    try:
        system.autostart()
        (child,) = system.supervisor("/crew").view().children
        pid = int(child.pid or 0)
        assert _eventually(lambda: probe.seen(pid))
        system.pause(pid)
        original = system.wait(pid, 30)
        assert original.state is ProcessState.SUSPENDED
        assert set(original.allowed_devices) == {PROBE, "/dev/fs"}
    finally:
        hold.set()
        system.stop(checkpoint=True)
    probe.workdirs.clear()
    crew.write_text(CREW.format(devices=f"[{PROBE}]"))  # the child spec narrowed since
    after = {PROBE, "/dev/fs", "/dev/shell", "/dev/pay"}  # the template widened since
    system = _worker_system(tmp_path, probe, after, probing())
    try:
        system.autostart()
        assert _eventually(lambda: probe.seen(pid))  # resumed, and working
        info = system.wait(pid, 30)
        assert info.exit_code == 0, info.exit_reason
        assert info.allowed_devices == (PROBE,), info.allowed_devices
        assert info.depth == 0 and probe.workdirs[pid] == tmp_path / "project"
    finally:
        system.stop()
