"""MCP tool calls through the device layer against the same calls made with the SDK directly.

    .venv/bin/python bench/mcp_calls.py [--quick]

Both sides talk to the test server (``tests/mcp_server.py``, the SDK's ``MCPServer``) over
stdio, each with its own server process, and call its read-only ``search`` tool.

1. Round trip, measured in alternating rounds in one run:
   - direct: ``await client.call_tool("search", ...)`` in a loop on an asyncio loop, with the
     SDK's ``Client`` over ``stdio_client`` (the floor: no threads, no kernel);
   - agent: one agent (python driver, zero-latency brain) whose steps each return a batch of
     ``mcp__notes__search`` tool calls, so every call takes the whole syscall path (routing,
     whitelist, guards, event, the MCP loop thread, the SDK, the tool message, the breaker).
     Per call = the agent's wall time ÷ calls (its few model steps included).
   The ratio is the median of the per-round ratios agent ÷ direct (target ≤ 1.2).
2. Throughput: 8 agents sharing the one server session, each making the same number of calls
   in batches; calls/s over the wall time, beside 1 agent making as many calls in all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from rnix_actors import AgentTemplate, Limits, LLMRequest, LLMResponse, System, ToolCall
from rnix_actors.kernel.devices import DeviceCall

SERVER = Path(__file__).resolve().parent.parent / "tests" / "mcp_server.py"
TARGET = 1.2
TIMEOUT = 300.0


async def direct_round(client: Client, calls: int) -> float:
    """Seconds per call for ``calls`` sequential calls straight through the SDK."""
    started = time.perf_counter()
    for i in range(calls):
        result = await client.call_tool("search", {"query": f"milk{i % 2}"})
        assert not result.is_error
    return (time.perf_counter() - started) / calls


class Brain:
    """Answers each step with ``batch`` search calls until ``calls`` were made, then done."""

    def __init__(self, calls: int, batch: int) -> None:
        self.calls = calls
        self.batch = batch
        self.errors = 0

    def __call__(self, request: LLMRequest) -> LLMResponse | str:
        made = (request.step - 1) * self.batch
        for message in request.messages[-self.batch :]:
            if message.role == "tool" and message.content.startswith("Tool error"):
                self.errors += 1
        if made >= self.calls:
            return "done"
        count = min(self.batch, self.calls - made)
        return LLMResponse(
            tool_calls=tuple(
                ToolCall(f"c{request.step}-{j}", "mcp__notes__search", {"query": f"milk{j % 2}"})
                for j in range(count)
            )
        )


def agent_run(system: System, agents: int, calls: int, batch: int) -> tuple[float, int]:
    """Wall seconds for ``agents`` agents making ``calls`` calls each; and tool errors."""
    brains = [Brain(calls, batch) for _ in range(agents)]
    names = []
    for i, brain in enumerate(brains):
        name = f"bench-{agents}-{i}-{time.monotonic_ns()}"
        system.register_llm(name, brain)
        system.add_template(
            AgentTemplate(
                name=name,
                devices=("/dev/mcp/notes/search",),
                driver=name,
                limits=Limits(max_steps=0, context_slots=1_000_000),
            )
        )
        names.append(name)
    started = time.perf_counter()
    pids = [system.spawn(name, "search") for name in names]
    for pid in pids:
        info = system.wait(pid, timeout=TIMEOUT)
        assert info.exit_code == 0, info.exit_reason
    return time.perf_counter() - started, sum(b.errors for b in brains)


def make_project(root: Path) -> Path:
    project = root / "project"
    (project / ".rnix").mkdir(parents=True)
    server = {"command": sys.executable, "args": [str(SERVER)], "timeout": 60}
    (project / ".rnix" / "mcp.yaml").write_text(yaml.safe_dump({"servers": {"notes": server}}))
    config = {"immune": {"enabled": False}, "kernel": {"event_log": True}}
    (project / ".rnix" / "config.yaml").write_text(yaml.safe_dump(config))
    return project


def device_round(system: System, calls: int) -> float:
    """Seconds per call for ``calls`` sequential ``handle`` calls on the device, from this
    (non-loop) thread: the bridge to the MCP loop and the SDK, without an agent."""
    _, device, _ = system.devices.lookup("/dev/mcp/notes")
    started = time.perf_counter()
    for i in range(calls):
        args = {"query": f"milk{i % 2}"}
        call = DeviceCall(0, "/dev/mcp/notes", "/search", "call", args, system.project_dir)
        device.handle(call)
    return (time.perf_counter() - started) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 20 s)")
    args = parser.parse_args(argv)
    sizes = (8, 100, 25, 100) if args.quick else (24, 150, 25, 250)
    with tempfile.TemporaryDirectory() as tmp, System(make_project(Path(tmp))) as system:
        asyncio.run(report(system, *sizes))
    return 0


@attrs.define
class Side:
    """Per-call wall and CPU seconds of one way of calling, round by round."""

    wall: list[float] = attrs.field(factory=list)
    cpu: list[float] = attrs.field(factory=list)

    async def measure(self, calls: int, run: Any) -> float:
        cpu = time.process_time()
        wall = await run()
        self.wall.append(wall)
        self.cpu.append((time.process_time() - cpu) / calls)
        return wall

    def line(self, label: str) -> str:
        median = statistics.median(self.wall) * 1000
        low, high = min(self.wall) * 1000, max(self.wall) * 1000
        cpu = statistics.median(self.cpu) * 1000
        return (
            f"   {label:<28} {median:6.3f} ms/call (min {low:.3f}, max {high:.3f}); "
            f"CPU {cpu:.3f} ms/call"
        )


async def report(system: System, rounds: int, calls: int, batch: int, per_agent: int) -> None:
    """The direct client lives in this coroutine (the SDK's sessions stay in one task); the
    device and agent rounds run on a worker thread meanwhile, with this loop idle."""
    params = StdioServerParameters(command=sys.executable, args=[str(SERVER)])
    direct, device, agent = Side(), Side(), Side()
    device_ratios: list[float] = []
    agent_ratios: list[float] = []
    async with Client(stdio_client(params)) as client:
        await asyncio.to_thread(agent_run, system, 1, batch, batch)  # the server starts
        await direct_round(client, batch)

        async def agent_calls() -> float:
            wall, errors = await asyncio.to_thread(agent_run, system, 1, calls, batch)
            assert errors == 0
            return wall / calls

        for _ in range(rounds):
            d = await direct.measure(calls, lambda: direct_round(client, calls))
            v = await device.measure(calls, lambda: asyncio.to_thread(device_round, system, calls))
            a = await agent.measure(calls, agent_calls)
            device_ratios.append(v / d)
            agent_ratios.append(a / d)
    via_device = statistics.median(device_ratios)
    via_agent = statistics.median(agent_ratios)
    cores = os.cpu_count() or 1
    print(
        f"load average {os.getloadavg()[0]:.1f} on {cores} cores (a loaded machine inflates waits)"
    )
    print("1. round trip of one MCP tool call (stdio, the SDK's MCPServer, read-only search)")
    print(direct.line("direct with the SDK client"))
    print(device.line("through the device layer"))
    print(agent.line("through an agent's syscall"))
    print(f"   ratio device / direct (median of {rounds} rounds): {via_device:.2f}x")
    print(f"   ratio agent / direct  (median of {rounds} rounds): {via_agent:.2f}x")

    total = 8 * per_agent
    one_wall, one_errors = agent_run(system, 1, total, batch)
    eight_wall, eight_errors = agent_run(system, 8, per_agent, batch)
    assert one_errors == eight_errors == 0
    print("2. agents sharing one server session")
    print(f"   1 agent,  {total} calls        {total / one_wall:8.0f} calls/s")
    print(f"   8 agents, {per_agent} calls each  {total / eight_wall:8.0f} calls/s")
    print(f"   speed-up of 8 agents over 1: {one_wall / eight_wall:.2f}x")
    verdict = "PASS" if via_device <= TARGET else "BELOW TARGET"
    print(f"summary: device/direct {via_device:.2f}x ({verdict}, target <= {TARGET}x); ")
    print(f"         agent/direct {via_agent:.2f}x; {total / eight_wall:.0f} calls/s with 8 agents")


if __name__ == "__main__":
    sys.exit(main())
