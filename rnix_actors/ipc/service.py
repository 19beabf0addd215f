"""`Service`: the daemon's methods on one `System`, as JSON-ready dicts.

The socket server (`rnix_actors.ipc.server`) and the in-process `LocalApi` both call it, so a
command behaves the same whether it reaches a daemon or an embedded system. Every failure is
an `ApiError` with a `Code`; nothing here prints.

Methods (params → result):

- ``ping`` → ``{version, pid}``; ``status`` → counts, immune mode, paths, uptime
- ``ps {all?}`` → ``{processes}``; ``info {pid}`` → ``{process}``; ``templates`` → ``{templates}``
- ``reload`` → ``{added, changed, removed, providers, text}`` (templates, skills and
  providers.yaml re-read from disk)
- ``events {pid, tail?}`` → ``{pid, events}`` (its event log); ``similarity {agent?}`` →
  ``{pairs, text, min_migration_similarity}``
- ``inspect {pid, tail?}`` → `ProcessDetail.to_dict` (record, children, rollup, limits,
  breaker, supervisor, context tail, immune alerts)
- ``tree`` → ``{supervisors, processes}`` (live supervision trees and every known process)
- ``supervise {text, source}`` → ``{supervisors}``; ``supervisor {path, op, child?, kill?}``
  (see `rnix_actors.ipc.supervision_api`)
- ``wait {pid, timeout?}`` → ``{process}`` once it exited or is suspended (TIMEOUT after
  ``timeout`` seconds, at most 600)
- ``spawn {agent, intent, max_steps?, workdir?, provider?, model?}`` → ``{pid}``
- ``kill {pid, signal?}``, ``pause {pid}``, ``resume {pid, retry?}`` → ``{pid, signal, outcome}``
  (``retry``: the call a guard refused when it suspended the process runs again)
- ``immune_status`` → ``{status, text}``; ``immune_resume {pid, retry?}``;
  ``immune_forget {name?|all}``
- ``mcp_list {connect?}`` → ``{servers}``; ``mcp_call {server, tool, arguments?, timeout?}`` →
  ``{ok, text}`` or ``{ok: false, code, error}`` (a tool error)
- ``dashboard {port?, stop?}`` → ``{url, port, already_running}``: serve the web dashboard
  (127.0.0.1 only; one per daemon, kept until ``stop`` or shutdown); ``stop: true`` →
  ``{stopped}``
- ``shutdown`` → ``{stopping: true}`` (the daemon then stops its system)
- streaming: ``watch {pid?}``, ``follow {pid}``, ``run {<spawn params>}`` (spawn + follow)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rnix_actors import __version__
from rnix_actors.errors import (
    BadWorkdir,
    ConfigError,
    NoSuchProcess,
    RnixError,
    SpawnError,
    SystemStopped,
    UnknownAgent,
)
from rnix_actors.introspect import read_event_log
from rnix_actors.ipc import immune_api, process_api, supervision_api
from rnix_actors.ipc.immune_api import attach_immune_if_available
from rnix_actors.ipc.process_api import KILL_ORIGINS, MAX_WAIT
from rnix_actors.ipc.protocol import (
    ApiError,
    Code,
    param_bool,
    param_int,
    param_opt_int,
    param_opt_str,
    param_str,
)
from rnix_actors.ipc.streams import EventStream
from rnix_actors.kernel.process import ProcessState, Signal
from rnix_actors.mcp.api import mcp_call, mcp_list
from rnix_actors.migration import matrix_text, ranked_text
from rnix_actors.system import System
from rnix_actors.templates import AgentTemplate, Skill, effective_devices

__all__ = [
    "KILL_ORIGINS",
    "MAX_WAIT",
    "Service",
    "api_error",
    "attach_immune_if_available",
    "template_summary",
]

log = logging.getLogger(__name__)

Params = Mapping[str, Any]
Result = dict[str, Any]


def api_error(exc: BaseException) -> ApiError:
    """Map an exception from the system onto an `ApiError` (unexpected ones: INTERNAL)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NoSuchProcess):
        return ApiError(Code.NO_SUCH_PROCESS, str(exc))
    if isinstance(exc, UnknownAgent):
        return ApiError(Code.NO_SUCH_AGENT, str(exc))
    if isinstance(exc, BadWorkdir):
        return ApiError(Code.BAD_WORKDIR, str(exc))
    if isinstance(exc, SpawnError):
        return ApiError(Code.SPAWN_ERROR, str(exc))
    if isinstance(exc, ConfigError):
        return ApiError(Code.CONFIG_ERROR, str(exc))
    if isinstance(exc, SystemStopped):
        return ApiError(Code.UNAVAILABLE, str(exc))
    if isinstance(exc, TimeoutError):
        return ApiError(Code.TIMEOUT, str(exc) or "timed out")
    if isinstance(exc, ValueError | RnixError):
        return ApiError(Code.BAD_PARAMS, str(exc))
    log.exception("internal error", exc_info=exc)
    return ApiError(Code.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")


def template_summary(template: AgentTemplate, skills: dict[str, Skill]) -> dict[str, Any]:
    """What ``rnix agents`` shows of a template (``devices``: with its skills' devices)."""
    return {
        "name": template.name,
        "description": template.description,
        "skills": list(template.skills),
        "devices": sorted(effective_devices(template, skills)),
        "driver": template.driver,
        "model": template.model,
        "max_steps": template.limits.max_steps,
        "max_tokens": template.limits.max_tokens,
        "source": template.source,
    }


class Service:
    """The methods of one running system. Thread-safe; `close` ends every open stream."""

    def __init__(self, system: System, *, immune: Any = None, socket: Path | None = None) -> None:
        self.system = system
        self.immune = immune
        self.socket = socket
        self.started_at = time.time()
        self.on_shutdown: Callable[[], None] | None = None
        # The open streams and the closed flag: connection threads open and release streams
        # while the daemon's shutdown closes them all (plain threads, no actor in between).
        self._lock = threading.Lock()
        self._streams: set[EventStream] = set()
        self._closed = False
        self._dashboard: Any = None
        # Two connections asking for the dashboard at once must not start two of them.
        self._dashboard_lock = threading.Lock()
        self._unary: dict[str, Callable[[Params], Result]] = {
            "ping": lambda p: {"version": __version__, "pid": os.getpid()},
            "status": self._status,
            "ps": self._ps,
            "nodes": lambda p: {
                "backend": self.system.backend,
                "nodes": [n.to_dict() for n in self.system.nodes()],
            },
            "info": lambda p: {"process": self.system.info(param_int(p, "pid")).to_dict()},
            "wait": lambda p: process_api.wait(self.system, p),
            "templates": self._templates,
            "events": self._events,
            "reload": self._reload,
            "similarity": self._similarity,
            "inspect": lambda p: self.system.inspect(
                param_int(p, "pid"), param_opt_int(p, "tail", minimum=1) or 10
            ).to_dict(),
            "tree": self._tree,
            "supervise": lambda p: supervision_api.supervise(self.system, p),
            "supervisor": lambda p: supervision_api.supervisor(self.system, p),
            "spawn": lambda p: {"pid": process_api.spawn(self.system, p)},
            "kill": lambda p: process_api.kill(self.system, p),
            "pause": lambda p: process_api.signal(
                self.system, param_int(p, "pid"), Signal.SIGPAUSE
            ),
            "resume": lambda p: process_api.signal(
                self.system, param_int(p, "pid"), Signal.SIGRESUME, retry=param_bool(p, "retry")
            ),
            "immune_status": lambda p: immune_api.status(self.immune, p),
            "immune_resume": lambda p: immune_api.resume(self.immune, p),
            "immune_forget": lambda p: immune_api.forget(self.immune, p),
            "dashboard": self._serve_dashboard,
            "shutdown": self._shutdown,
            "mcp_list": self._mcp_list,
            "mcp_call": self._mcp_call,
        }

    @property
    def methods(self) -> list[str]:
        return sorted([*self._unary, "watch", "follow", "run"])

    # -- dispatch ----------------------------------------------------------------------------
    def call(self, method: str, params: Params) -> Result:
        """Run a unary method; raises `ApiError`."""
        handler = self._unary.get(method)
        if handler is None:
            raise ApiError(
                Code.UNKNOWN_METHOD,
                f"unknown method: {method!r}; methods: {', '.join(self.methods)}",
            )
        try:
            return handler(params)
        except Exception as exc:
            raise api_error(exc) from None

    def open_stream(self, method: str, params: Params) -> tuple[EventStream, Result]:
        """Start a streaming method; returns the stream and the first response's result."""
        try:
            if method == "watch":
                pid = param_opt_int(params, "pid", minimum=1)
                if pid is not None:
                    self.system.info(pid)  # NoSuchProcess before anything starts
                stream = EventStream(self.system, pid)
                result: Result = {"pid": pid}
            elif method == "follow":
                pid = param_int(params, "pid")
                self.system.info(pid)
                stream = EventStream(self.system, pid, until_suspended=True)
                result = {"pid": pid}
            elif method == "run":
                stream, pid = EventStream.for_spawn(
                    self.system, lambda: process_api.spawn(self.system, params)
                )
                result = {"pid": pid}
            else:
                raise ApiError(Code.UNKNOWN_METHOD, f"{method!r} is not a streaming method")
        except Exception as exc:
            raise api_error(exc) from None
        with self._lock:
            if self._closed:
                stream.close()
                raise ApiError(Code.UNAVAILABLE, "the daemon is shutting down")
            self._streams.add(stream)
        return stream, result

    def release(self, stream: EventStream) -> None:
        """Forget a finished stream (and unsubscribe it)."""
        with self._lock:
            self._streams.discard(stream)
        stream.close()

    def close(self) -> None:
        """End every open stream with reason ``shutdown``; later streams are refused."""
        with self._lock:
            self._closed = True
            streams = list(self._streams)
        for stream in streams:
            stream.cancel("shutdown")

    # -- methods ---------------------------------------------------------------------------------
    def _status(self, params: Params) -> Result:
        live = self.system.ps()
        counts = {state.value: 0 for state in ProcessState}
        for info in live:
            counts[info.state.value] += 1
        immune: dict[str, Any] | None = None
        if self.immune is not None:
            try:
                status = self.immune.status()
                immune = {"mode": status.mode, "alerts": len(status.alerts)}
            except Exception as exc:  # a stopped immune daemon must not break status
                immune = {"mode": "unavailable", "alerts": 0, "error": str(exc)}
        return {
            "version": __version__,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "uptime_s": round(time.time() - self.started_at, 3),
            "project_dir": str(self.system.project_dir),
            "state_dir": str(self.system.state_dir),
            "socket": None if self.socket is None else str(self.socket),
            "processes": {"live": len(live), **counts},
            "live_pids": [info.pid for info in live],
            "immune": immune,
        }

    def _ps(self, params: Params) -> Result:
        procs = self.system.ps(all=param_bool(params, "all"))
        if param_bool(params, "all"):  # the table knows live state better than the store
            current = {p.pid: p for p in self.system.table.list()}
            procs = [current.get(p.pid, p) for p in procs]
        return {"processes": [p.to_dict() for p in procs]}

    def _templates(self, params: Params) -> Result:
        self.system.reload_templates()
        skills = self.system.skills
        templates = sorted(self.system.templates.items())
        return {"templates": [template_summary(t, skills) for _, t in templates]}

    def _reload(self, params: Params) -> Result:
        changes = self.system.reload_templates()
        return {
            "added": list(changes.added),
            "changed": list(changes.changed),
            "removed": list(changes.removed),
            "providers": changes.providers,
            "text": changes.text(),
        }

    def _events(self, params: Params) -> Result:
        pid = param_int(params, "pid")
        tail = param_opt_int(params, "tail", minimum=1)
        events = read_event_log(self.system.events_file(pid))
        if tail is not None:
            events = events[-tail:]
        return {"pid": pid, "events": [e.to_dict() for e in events]}

    def _similarity(self, params: Params) -> Result:
        matrix = self.system.migration.matrix()
        agent = param_opt_str(params, "agent")
        if agent is not None and agent not in matrix.agents:
            raise ApiError(
                Code.BAD_PARAMS,
                f"unknown agent {agent!r}; known agents: {', '.join(matrix.agents)}",
            )
        minimum = self.system.immune_config.min_migration_similarity
        pairs = matrix.similar(agent) if agent else matrix.pairs()
        text = ranked_text(matrix, agent, minimum) if agent else matrix_text(matrix)
        return {
            "min_migration_similarity": minimum,
            "pairs": [
                {"a": s.a, "b": s.b, "score": s.score, "skill": s.skill, "history": s.history}
                for s in pairs
            ],
            "text": text,
        }

    def _tree(self, params: Params) -> Result:
        supervisors = [view.to_dict() for view in self.system.tree()]
        if params.get("processes") is False:  # `rnix top` needs only the supervisors
            return {"supervisors": supervisors}
        return {
            "supervisors": supervisors,
            "processes": [p.to_dict() for p in self.system.ps(all=True)],
            "live": [p.to_dict() for p in self.system.ps()],
        }

    def _mcp_list(self, params: Params) -> Result:
        system = self.system
        return mcp_list(system.mcp, system.mcp_servers, param_bool(params, "connect"))

    def _mcp_call(self, params: Params) -> Result:
        arguments = params.get("arguments", {})
        if not isinstance(arguments, dict):
            raise ApiError(Code.BAD_PARAMS, "param 'arguments' must be a JSON object")
        server, tool = param_str(params, "server"), param_str(params, "tool")
        timeout = float(param_opt_int(params, "timeout", minimum=1) or MAX_WAIT)
        return mcp_call(self.system.mcp, server, tool, arguments, timeout)

    def _serve_dashboard(self, params: Params) -> Result:
        port = param_opt_int(params, "port", minimum=0)
        with self._dashboard_lock:
            board = self._dashboard
            if param_bool(params, "stop"):
                self._dashboard = None
                if board is not None:
                    board.stop()
                return {"stopped": board is not None}
            if board is not None and board.running:
                if port not in (None, 0, board.port):
                    raise ApiError(
                        Code.BAD_PARAMS,
                        f"the dashboard already serves on port {board.port}; stop it first "
                        "(rnix dashboard --stop)",
                    )
                return {"url": board.url, "port": board.port, "already_running": True}
            board = self._dashboard = self.system.serve_dashboard(port or 0)
        return {"url": board.url, "port": board.port, "already_running": False}

    def _shutdown(self, params: Params) -> Result:
        callback = self.on_shutdown
        if callback is None:
            raise ApiError(Code.UNAVAILABLE, "this system cannot be shut down over the API")
        callback()
        return {"stopping": True}
