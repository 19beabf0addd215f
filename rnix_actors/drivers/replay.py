"""The replay driver: scripted LLM responses, the offline default.

A replay script is a YAML file (``conf/replay/*.yaml``)::

    version: "1"
    responses:
      - content: "Let me look at the layout first."
        tool_calls:
          - {name: list_files, input: {path: "."}}
        usage: {input_tokens: 420, output_tokens: 35}
      - tool_calls:
          - {name: complete, input: {result: "done"}}

Every process (PID) walks the script from its first response with its own cursor, so many
processes can replay one script at once. A response may carry ``delay_ms`` to simulate latency
(honouring cancellation) and ``usage``; without ``usage`` the token counts are estimated from the
request and the response text, so token metrics vary the way real ones do.

Hosts and benchmarks can build a `ReplayScript` in Python and register it under a key with
`ReplayDriver.add_script`; a request whose ``model`` is that key replays it without any file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from rnix_actors.cancel import Cancelled, CancelToken
from rnix_actors.drivers.base import LLMRequest, LLMResponse, ToolCall
from rnix_actors.errors import ConfigError, DriverError
from rnix_actors.yamlsrc import YamlMap, load_yaml, parse_yaml

SCRIPT_VERSION = "1"
SCRIPT_KEYS = ("version", "responses")
RESPONSE_KEYS = ("content", "tool_calls", "usage", "stop_reason", "delay_ms")
TOOL_CALL_KEYS = ("name", "input", "id")
USAGE_KEYS = ("input_tokens", "output_tokens")
CHARS_PER_TOKEN = 4

_optional_count = attrs.validators.optional(attrs.validators.ge(0))


def _tool_calls(calls: Iterable[ToolCall]) -> tuple[ToolCall, ...]:
    return tuple(calls)


@attrs.frozen
class ReplayResponse:
    """One scripted model answer. It needs non-empty ``content`` or at least one tool call.

    ``input_tokens``/``output_tokens`` of None are estimated per request; ``delay_ms`` is
    simulated latency.
    """

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = attrs.field(default=(), converter=_tool_calls)
    input_tokens: int | None = attrs.field(default=None, validator=_optional_count)
    output_tokens: int | None = attrs.field(default=None, validator=_optional_count)
    stop_reason: str = ""
    delay_ms: int = attrs.field(default=0, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self) -> None:
        if not self.content and not self.tool_calls:
            raise ValueError("a replay response needs content or tool_calls")


def _with_ids(responses: Iterable[ReplayResponse]) -> tuple[ReplayResponse, ...]:
    """Give every tool call without an id the deterministic id ``replay-s<i>-c<j>``."""
    filled = []
    for i, response in enumerate(responses):
        calls = tuple(
            call if call.id else attrs.evolve(call, id=f"replay-s{i}-c{j}")
            for j, call in enumerate(response.tool_calls)
        )
        filled.append(attrs.evolve(response, tool_calls=calls))
    return tuple(filled)


def _non_empty(instance: object, attribute: object, value: tuple[ReplayResponse, ...]) -> None:
    if not value:
        raise ValueError("a replay script needs at least one response")


@attrs.frozen
class ReplayScript:
    """A parsed replay script; ``source`` names its file (or ``<python>``)."""

    responses: tuple[ReplayResponse, ...] = attrs.field(converter=_with_ids, validator=_non_empty)
    source: str = "<python>"


def parse_replay_script(path: Path) -> ReplayScript:
    """Read and validate a replay script file.

    Raises `ConfigError` naming ``file:LINE``, the field and the fix for any problem: bad YAML,
    unknown keys, wrong types, a missing or unsupported ``version``, an empty ``responses`` list
    or a response with neither content nor tool calls.
    """
    return script_from_fields(load_yaml(path))


def parse_replay_text(text: str, source: str = "<string>") -> ReplayScript:
    """Like `parse_replay_script` for YAML text already in memory."""
    return script_from_fields(parse_yaml(text, source))


def script_from_fields(fields: YamlMap) -> ReplayScript:
    """Build a `ReplayScript` from a parsed top-level mapping."""
    fields.check_keys(SCRIPT_KEYS, required=SCRIPT_KEYS)
    version = fields.get_plain("version")
    if isinstance(version, bool) or str(version) != SCRIPT_VERSION:
        problem = f"unsupported version {version!r}"
        raise fields.error("version", problem, f'write version: "{SCRIPT_VERSION}"')
    items = fields.get_map_list("responses")
    if not items:
        fix = "add at least one '- content: ...' or '- tool_calls: ...' entry"
        raise fields.error("responses", "must list at least one response", fix)
    return ReplayScript(tuple(_response(item) for item in items), source=fields.file)


def _response(fields: YamlMap) -> ReplayResponse:
    fields.check_keys(RESPONSE_KEYS)
    content = fields.get_str("content")
    calls: list[ToolCall] = []
    for item in fields.get_map_list("tool_calls"):
        call = _tool_call(item)
        if call.id and any(other.id == call.id for other in calls):
            fix = "tool call ids must be unique within a response"
            raise item.error("id", f"duplicate id {call.id!r}", fix)
        calls.append(call)
    if not content and not calls:
        problem = "has neither content nor tool_calls"
        fix = "add content: (a final answer) or tool_calls: (a list of tool calls)"
        raise ConfigError(fields.source(), fields.prefix, problem, fix)
    usage = fields.get_map("usage")
    usage.check_keys(USAGE_KEYS)
    return ReplayResponse(
        content=content,
        tool_calls=tuple(calls),
        input_tokens=_optional_int(usage, "input_tokens"),
        output_tokens=_optional_int(usage, "output_tokens"),
        stop_reason=fields.get_str("stop_reason"),
        delay_ms=fields.get_int("delay_ms", 0, minimum=0),
    )


def _optional_int(fields: YamlMap, key: str) -> int | None:
    return fields.get_int(key, 0, minimum=0) if fields.has(key) else None


def _tool_call(fields: YamlMap) -> ToolCall:
    fields.check_keys(TOOL_CALL_KEYS, required=("name",))
    name = fields.get_str("name", required=True)
    fields.get_map("input")  # only to reject a non-mapping with a clear message
    tool_input: dict[str, Any] = fields.get_plain("input") or {}
    return ToolCall(id=fields.get_str("id"), name=name, input=tool_input)


def script_to_mapping(script: ReplayScript) -> dict[str, Any]:
    """Plain data that `dump_replay_script` writes and `parse_replay_script` reads back."""
    return {"version": SCRIPT_VERSION, "responses": [_response_data(r) for r in script.responses]}


class _ScriptDumper(yaml.SafeDumper):
    """Readable output that also survives a round trip."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # PyYAML writes NEL/LS/PS unescaped in plain and single-quoted scalars and then reads them
    # back as line breaks; double quotes escape them. Multi-line text reads best as a block.
    style = '"' if any(c in data for c in "\x85\u2028\u2029") else "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_ScriptDumper.add_representer(str, _represent_str)


def dump_replay_script(script: ReplayScript) -> str:
    """The script as replay YAML text (e.g. to record a Python-built script to a file)."""
    return yaml.dump(
        script_to_mapping(script), Dumper=_ScriptDumper, sort_keys=False, allow_unicode=True
    )


def _response_data(response: ReplayResponse) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if response.content:
        data["content"] = response.content
    if response.tool_calls:
        data["tool_calls"] = [
            {"id": c.id, "name": c.name, "input": dict(c.input)} for c in response.tool_calls
        ]
    usage = {"input_tokens": response.input_tokens, "output_tokens": response.output_tokens}
    if any(v is not None for v in usage.values()):
        data["usage"] = {k: v for k, v in usage.items() if v is not None}
    if response.stop_reason:
        data["stop_reason"] = response.stop_reason
    if response.delay_ms:
        data["delay_ms"] = response.delay_ms
    return data


def _call_chars(calls: Iterable[ToolCall]) -> int:
    # repr, not json.dumps: an estimate, computed over the whole context at every step.
    return sum(len(c.name) + len(repr(c.input)) for c in calls)


def estimate_input_tokens(request: LLMRequest) -> int:
    """About one token per four characters of the system prompt and messages (at least 1)."""
    chars = len(request.system_prompt) + sum(
        len(m.content) + _call_chars(m.tool_calls) for m in request.messages
    )
    return max(1, chars // CHARS_PER_TOKEN)


def estimate_output_tokens(content: str, tool_calls: Iterable[ToolCall]) -> int:
    """About one token per four characters of the answer and tool inputs (at least 1)."""
    return max(1, (len(content) + _call_chars(tool_calls)) // CHARS_PER_TOKEN)


class ReplayDriver:
    """Replays scripts; ``request.model`` is a script path (absolute) or an `add_script` key.

    Thread-safe: one driver serves every agent thread. Scripts are parsed once and cached; each
    PID has its own cursor, forgotten by `release`.
    """

    name: str = "replay"

    def __init__(self) -> None:
        # The scripts and the cursors: agent threads advance their PID's, the kernel's thread
        # seeks and releases them, the host's threads add scripts.
        self._lock = threading.Lock()
        # One parse at a time: spawners' threads (and the kernel's, for an unprepared model)
        # may load the same file at once; the cursors are not held up meanwhile.
        self._parse_lock = threading.Lock()
        # model -> (the file's stamp, the error): read and written under _parse_lock
        self._failures: dict[str, tuple[tuple[int, int] | None, ConfigError]] = {}
        self._scripts: dict[str, ReplayScript] = {}
        self._cursors: dict[int, int] = {}

    def add_script(self, key: str, script: ReplayScript) -> None:
        """Serve ``script`` to requests whose ``model`` is ``key`` (replacing any cached one)."""
        with self._lock:
            self._scripts[key] = script

    def load(self, model: str) -> ReplayScript:
        """The script for ``model``, parsing and caching the file on first use.

        Raises `ConfigError` when the file is missing or invalid (a failure is kept only while
        the file is unchanged, so a fixed file is picked up on the next call). Call it before
        spawning to fail early.
        """
        if not model:
            fix = "set model: to the path of a replay script in the agent template"
            raise ConfigError("<replay>", "model", "no replay script given", fix)
        with self._lock:
            script = self._scripts.get(model)
        if script is not None:
            return script
        # A separate lock keeps "parsed once" true when many agents start together without
        # stalling the cursors of agents that are already running.
        with self._parse_lock:
            with self._lock:
                script = self._scripts.get(model)
            if script is None:
                script = self._parse(model)
                with self._lock:
                    self._scripts.setdefault(model, script)
            return script

    def check_prepared(self, model: str) -> None:
        """The kernel's check before a spawn: the outcome of the last `prepare` of ``model``
        (in the spawner's thread), without reading the file again, so the kernel's thread
        parses nothing and checks what the spawner read even if the file changed since.

        A model nobody prepared (a host that sends the kernel a spawn request of its own) is
        loaded here, within the parser's bounds."""
        with self._lock:
            if model in self._scripts:
                return
        with self._parse_lock:
            failed = self._failures.get(model)
        if failed is not None:
            raise failed[1]
        self.load(model)

    def _parse(self, model: str) -> ReplayScript:
        """Parse the file; an error is kept for as long as the file is unchanged (same size
        and mtime, or still missing), so a bad file is not parsed again on every spawn
        attempt."""
        path = Path(model)
        try:
            info = path.stat()
            stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
        except OSError:
            stamp = None
        failed = self._failures.get(model)
        if failed is not None and failed[0] == stamp:
            raise failed[1]
        try:
            script = parse_replay_script(path)
        except ConfigError as exc:
            self._failures[model] = (stamp, exc)
            raise
        self._failures.pop(model, None)
        return script

    def complete(self, request: LLMRequest, cancel: CancelToken) -> LLMResponse:
        """The next scripted response for ``request.pid``.

        Raises `DriverError` when the script is invalid or exhausted (and keeps raising it for
        that PID), `Cancelled` when ``cancel`` fires before or during the simulated delay; a
        cancelled response is not consumed.
        """
        cancel.raise_if_cancelled()
        try:
            script = self.load(request.model)
        except ConfigError as exc:
            raise DriverError(f"replay driver cannot load its script: {exc}") from exc
        with self._lock:
            index = self._cursors.get(request.pid, 0)
        if index >= len(script.responses):
            count = len(script.responses)
            raise DriverError(
                f"replay script {request.model} exhausted after {count} responses "
                f"(PID {request.pid} asked for response {count + 1}): "
                "add responses to the script or lower max_steps"
            )
        response = script.responses[index]
        if response.delay_ms and cancel.wait(response.delay_ms / 1000):
            raise Cancelled(cancel.reason)
        with self._lock:
            self._cursors[request.pid] = index + 1
        return _to_llm_response(response, request)

    def prepare(self, model: str) -> None:
        """Fail before a spawn if the script is missing or invalid (`ConfigError`). Parses
        the file on first use: called in the spawner's thread (`check_prepared` is the
        kernel's)."""
        self.load(model)

    def release(self, pid: int) -> None:
        """Forget the cursor of ``pid`` (a new process with that PID would start over)."""
        with self._lock:
            self._cursors.pop(pid, None)

    def position(self, pid: int) -> int:
        """How many responses ``pid`` consumed: its next response's index (checkpoints keep
        it, so that a resumed process continues at the right response)."""
        with self._lock:
            return self._cursors.get(pid, 0)

    def seek(self, pid: int, index: int) -> None:
        """Make ``pid``'s next response the one at ``index`` (a process resuming)."""
        with self._lock:
            self._cursors[pid] = max(0, index)

    def cursors(self) -> Mapping[int, int]:
        """PID → number of responses consumed (a snapshot, for tests and `/proc`)."""
        with self._lock:
            return dict(self._cursors)


def _to_llm_response(response: ReplayResponse, request: LLMRequest) -> LLMResponse:
    input_tokens = response.input_tokens
    if input_tokens is None:
        input_tokens = estimate_input_tokens(request)
    output_tokens = response.output_tokens
    if output_tokens is None:
        output_tokens = estimate_output_tokens(response.content, response.tool_calls)
    stop_reason = response.stop_reason or ("tool_use" if response.tool_calls else "end_turn")
    return LLMResponse(
        content=response.content,
        tool_calls=response.tool_calls,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        stop_reason=stop_reason,
    )
