"""An asyncio web service that embeds rnix-actors: a help desk whose tickets agents triage.

    .venv/bin/python demos/async_helpdesk.py                 # serve on 127.0.0.1:8765
    .venv/bin/python demos/async_helpdesk.py --self-test     # serve on a free port, act as a
                                                             # client, check, stop (exit 0/1)

Everything goes through `rnix_actors.aio.AsyncSystem` on the service's own event loop, with
``state="memory"`` (no file is written) and no network beyond the loopback listener:

- ``POST /tickets`` with ``{"text": ...}`` spawns a ``triage`` agent; its brain is an
  ``async def`` that looks the ticket up through an ``async def`` host device
  (``/dev/helpdesk/kb``), then answers. The reply is ``{"pid": N}`` at once.
- ``GET /tickets/N`` awaits the agent (up to 10 s) and returns its state and result.
- ``GET /stats`` shows what a background task counted from ``system.events()`` (tool calls,
  exits, events dropped because the consumer lagged) and the supervision tree.
- At start the service supervises a ``kb-indexer`` whose first attempt fails (a flaky model);
  its supervisor restarts it, and a task awaits the tree's end (``handle.wait()``).

The HTTP handling is a few lines of ``asyncio.start_server``: the demo is about the embedding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from typing import Any

from rnix_actors import (
    AgentTemplate,
    ChildSpec,
    DeviceCall,
    Event,
    Limits,
    LLMRequest,
    LLMResponse,
    Strategy,
    SupervisorSpec,
    ToolCall,
)
from rnix_actors.aio import AsyncSupervisorHandle, AsyncSystem, EventsDropped

KNOWLEDGE = {
    "password": "Reset it at /account/reset; links expire after 15 minutes.",
    "invoice": "Invoices are under Billing > History; PDFs are kept for 7 years.",
    "slow": "Check status.example.com; if it is green, send us a HAR file.",
}


class HelpDesk:
    def __init__(self, system: AsyncSystem) -> None:
        self.system = system
        self.counts: Counter[str] = Counter()
        self.indexer: AsyncSupervisorHandle | None = None
        self.indexer_outcome = "running"
        self.index_attempts = 0
        self.events: Any = None  # the EventStream watch_events reads

    # -- the agents' side (runs on this loop) --------------------------------------------------
    async def kb(self, call: DeviceCall) -> str:
        """The host device /dev/helpdesk/kb: a lookup that awaits, as real I/O would."""
        text = str(call.args.get("query", "")).lower()
        await asyncio.sleep(0.01)
        found = [answer for key, answer in KNOWLEDGE.items() if key in text]
        return json.dumps(found or ["No article matches; a human will answer."])

    async def triage_brain(self, request: LLMRequest) -> LLMResponse | str:
        if request.step == 1:
            lookup = ToolCall(
                "kb-1",
                "call_device",
                {"device": "/dev/helpdesk/kb", "input": {"query": request.intent}},
            )
            return LLMResponse(tool_calls=(lookup,), input_tokens=40, output_tokens=8)
        articles = json.loads(request.messages[-1].content)
        return f"Ticket {request.intent!r}: {articles[0]}"

    async def indexer_brain(self, request: LLMRequest) -> str:
        self.index_attempts += 1
        if self.index_attempts == 1:
            raise ConnectionError("model endpoint reset the connection")  # a flaky model
        await asyncio.sleep(0)
        return f"indexed {len(KNOWLEDGE)} articles"

    # -- the service's side --------------------------------------------------------------------
    async def start(self) -> None:
        system = self.system
        system.register_device("/dev/helpdesk/kb", self.kb, "knowledge-base lookup")
        system.register_llm("triage-brain", self.triage_brain)
        system.add_template(
            AgentTemplate("triage", devices=("/dev/helpdesk",), driver="triage-brain",
                          limits=Limits(max_steps=4))
        )  # fmt: skip
        spec = SupervisorSpec(
            "kb", Strategy.ONE_FOR_ONE,
            children=(ChildSpec("kb-indexer", agent=self.indexer_brain, intent="index the kb",
                                devices=("/dev/helpdesk",)),),
        )  # fmt: skip
        self.indexer = await system.supervise(spec)

    async def watch_indexer(self) -> None:
        assert self.indexer is not None
        final = await self.indexer.wait()
        self.indexer_outcome = f"{final.status} after {self.index_attempts} attempts"

    async def watch_events(self) -> None:
        async with self.system.events(maxsize=1_000) as events:
            self.events = events
            async for item in events:
                if isinstance(item, EventsDropped):
                    self.counts["dropped"] += item.count
                elif isinstance(item, Event):
                    self.counts[item.syscall] += 1

    async def route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if method == "POST" and path == "/tickets":
            text = str(json.loads(body or b"{}").get("text", "")).strip()
            if not text:
                return 400, {"error": 'send {"text": "..."}'}
            return 202, {"pid": await self.system.spawn("triage", text)}
        if method == "GET" and path.startswith("/tickets/") and path[9:].isdigit():
            try:
                info = await self.system.wait(int(path[9:]), timeout=10)
            except TimeoutError:
                return 202, {"state": "running"}
            return 200, {"state": str(info.state), "exit_code": info.exit_code,
                         "result": info.result, "reason": info.exit_reason}  # fmt: skip
        if method == "GET" and path == "/stats":
            view = await self.indexer.view() if self.indexer else None
            tree = None if view is None else {"status": view.status, "restarts": view.restarts}
            return 200, {"events": dict(self.counts), "indexer": self.indexer_outcome, "tree": tree}
        return 404, {"error": f"no route {method} {path}"}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
            status, payload = await self.route(method, path, await reader.readexactly(length))
        except (ValueError, asyncio.IncompleteReadError) as exc:
            status, payload = 400, {"error": str(exc)}
        data = json.dumps(payload).encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n" % status)
        writer.write(b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(data), data))
        await writer.drain()
        writer.close()


async def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A minimal HTTP client for the self-test."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = b"" if body is None else json.dumps(body).encode()
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    response = await reader.read()
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


async def self_test(port: int, desk: HelpDesk) -> bool:
    tickets = ["password reset link expired", "where is my invoice", "the app is slow", "hello?"]
    pids = [(await request(port, "POST", "/tickets", {"text": t}))[1]["pid"] for t in tickets]
    answers = await asyncio.gather(*(request(port, "GET", f"/tickets/{pid}") for pid in pids))
    for ticket, (status, answer) in zip(tickets, answers, strict=True):
        print(f"{status} {ticket!r}: {answer['result'] or answer['reason']}")
    assert desk.indexer is not None
    await asyncio.wait_for(desk.indexer.wait(), 10)
    await desk.system.sync_events()  # every event so far is in the watcher's queue...
    while desk.events.pending():
        await asyncio.sleep(0)  # ...and the watcher has taken them in
    status, stats = await request(port, "GET", "/stats")
    print(f"stats: {json.dumps(stats, sort_keys=True)}")
    bad = await request(port, "POST", "/tickets", {"text": ""})
    ok = all(s == 200 and a["exit_code"] == 0 for s, a in answers) and bad[0] == 400
    ok = ok and stats["indexer"].startswith("completed") and stats["events"].get("Exit", 0) >= 5
    print("self-test:", "ok" if ok else "FAILED")
    return ok


async def main_async(port: int, test: bool) -> bool:
    async with AsyncSystem(state="memory", load_project=False) as system:
        desk = HelpDesk(system)
        await desk.start()
        watchers = [
            asyncio.create_task(desk.watch_events()),
            asyncio.create_task(desk.watch_indexer()),
        ]
        server = await asyncio.start_server(desk.handle, "127.0.0.1", 0 if test else port)
        bound = server.sockets[0].getsockname()[1]
        print(f"help desk on http://127.0.0.1:{bound} (Ctrl-C stops)", flush=True)
        try:
            async with server:
                ok = await self_test(bound, desk) if test else await server.serve_forever()
        finally:
            server.close()
    # The system stopped: the event stream ended and the tree's wait returned.
    await asyncio.gather(*watchers)
    return bool(ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rnix-actors embedded in an asyncio web service")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--self-test", action="store_true", help="act as a client, check, stop")
    args = parser.parse_args(argv)
    try:
        return 0 if asyncio.run(main_async(args.port, args.self_test)) else 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
