"""The cost of the /dev/shell sandbox, sandboxed against unsandboxed, in one run.

    .venv/bin/python bench/shell_sandbox.py [--quick]

Two figures, each with its unsandboxed twin measured in alternating rounds:
- per command: one ``/dev/shell`` call of ``true`` through `ShellDevice.handle` (spawn, wait,
  reap), with the sandbox on and with ``shell.sandbox: off``;
- per agent step: a real `System` whose agent (python driver, zero-latency brain) makes 3 shell
  calls of ``true`` per step; the time per step from the first step to the process's exit.
Prints medians, the ratio sandboxed ÷ unsandboxed, and the sandbox's added time per step against
a typical model latency of 1 s (the bar: well under it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rnix_actors import AgentTemplate, Limits, LLMRequest, LLMResponse, System, ToolCall
from rnix_actors.kernel.devices import DeviceCall
from rnix_actors.kernel.shell import ShellDevice
from rnix_actors.shellconf import ShellSettings

MODEL_LATENCY_S = 1.0
OFF = ShellSettings(sandbox=False)


def per_command(work: Path, device: ShellDevice, calls: int) -> float:
    """Median seconds of one ``true`` through the device."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        device.handle(DeviceCall(1, "/dev/shell", "", "exec", {"command": "true"}, work))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def per_step(root: Path, sandboxed: bool, steps: int) -> float:
    """Seconds per agent step of 3 shell calls, over one process of ``steps`` steps."""
    shell = ToolCall("s", "shell", {"command": "true"})

    def brain(request: LLMRequest) -> LLMResponse | str:
        if request.step > steps:
            return "done"
        return LLMResponse(tool_calls=(shell, shell, shell))

    state = root / f"state-{time.monotonic_ns()}"
    with System(root, state_dir=state, load_project=False) as system:
        if not sandboxed:
            system.devices.unregister("/dev/shell")
            system.devices.register("/dev/shell", ShellDevice(settings=OFF))
        system.register_llm("bench-brain", brain)
        system.add_template(
            AgentTemplate(
                "sheller",
                devices=("/dev/shell",),
                driver="bench-brain",
                limits=Limits(max_steps=steps + 1, context_slots=100_000),
            )
        )
        started = time.perf_counter()
        info = system.wait(system.spawn("sheller", "run true"), timeout=300)
        elapsed = time.perf_counter() - started
        if info.exit_code != 0:
            raise SystemExit(f"bench agent failed: {info.exit_reason}")
    return elapsed / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 10 s)")
    args = parser.parse_args()
    rounds, calls, steps = (3, 20, 10) if args.quick else (7, 40, 20)
    on, off = ShellDevice(), ShellDevice(settings=OFF)
    cmd_on: list[float] = []
    cmd_off: list[float] = []
    step_on: list[float] = []
    step_off: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rnix-bench-shell-") as tmp:
        root = Path(tmp)
        per_command(root, on, 3)  # the sandbox's one-time trial run is not a command's cost
        for _ in range(rounds):  # alternate so both see the same machine
            cmd_on.append(per_command(root, on, calls))
            cmd_off.append(per_command(root, off, calls))
            step_on.append(per_step(root, True, steps))
            step_off.append(per_step(root, False, steps))
    c_on, c_off = statistics.median(cmd_on), statistics.median(cmd_off)
    s_on, s_off = statistics.median(step_on), statistics.median(step_off)
    added = s_on - s_off
    print(f"shell sandbox ({rounds} rounds; {calls} commands, {steps}-step agents per round)")
    print(
        f"  per command `true`:  sandboxed {c_on * 1e3:7.2f} ms   unsandboxed {c_off * 1e3:7.2f} ms"
    )
    print(f"    ratio sandboxed / unsandboxed: {c_on / c_off:.2f}x")
    print(
        f"  per agent step (3 shell calls): sandboxed {s_on * 1e3:7.2f} ms"
        f"   unsandboxed {s_off * 1e3:7.2f} ms"
    )
    print(f"    ratio sandboxed / unsandboxed: {s_on / s_off:.2f}x")
    verdict = "PASS" if added < 0.1 * MODEL_LATENCY_S else "ABOVE 10%"
    print(
        f"  added per step: {added * 1e3:.2f} ms = {added / MODEL_LATENCY_S:.1%} of a "
        f"{MODEL_LATENCY_S:g} s model call ({verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
