"""LLM providers: ``providers.yaml`` and the retry policy it sets (issue 7).

The shipped ``conf/providers.yaml`` lists example providers; a project's ``.rnix/providers.yaml``
is merged over it provider by provider (by ``name``) and field by field, so a project can change
one provider's ``model`` without repeating its URL::

    version: "1"
    providers:
      - name: openai
        base_url: https://api.openai.com/v1
        model: gpt-4o-mini
        api_key_env: OPENAI_API_KEY     # the *name* of the variable; the key is never in a file
        tool_calling: native            # native | text (models without function calling)
        timeouts: {connect: 10, read: 120, request: 300}   # seconds
        retries: {max: 2, backoff: 1.0, backoff_max: 20, max_wait: 60}
        cost: {input: 0.15, output: 0.60}   # USD per million tokens; 0 = not tracked
        fallback: local                 # another provider, tried once after the retries

Every problem is a `ConfigError` naming ``file:LINE``, the field and the fix. The API key is read
from the environment at call time by the driver; nothing here ever holds it.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from rnix_actors.errors import ConfigError
from rnix_actors.yamlsrc import YamlMap, load_yaml

FILE_VERSION = "1"
TOP_KEYS = ("version", "providers")
PROVIDER_KEYS = (
    "name",
    "base_url",
    "model",
    "api_key_env",
    "tool_calling",
    "timeouts",
    "retries",
    "cost",
    "fallback",
)
# Section → YAML key → ProviderConfig attribute.
SECTIONS: Mapping[str, Mapping[str, str]] = {
    "timeouts": {"connect": "connect_timeout", "read": "read_timeout", "request": "timeout"},
    "retries": {
        "max": "max_retries",
        "backoff": "backoff",
        "backoff_max": "backoff_max",
        "max_wait": "max_retry_wait",
    },
    "cost": {"input": "cost_per_input_token", "output": "cost_per_output_token"},
}
PER_MILLION = 1_000_000
# A provider name is one segment of /dev/llm/<name> and a template's ``driver:``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_HINT = "use letters, digits, '.', '_' and '-', e.g. ollama or openai"
RESERVED_NAMES = frozenset({"replay"})
ENV_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TOOL_CALLING = ("native", "text")

ToolCalling = Literal["native", "text"]

_non_negative = attrs.validators.ge(0.0)
_positive = attrs.validators.gt(0.0)


def _check_url(instance: object, attribute: object, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("base_url must be an http:// or https:// URL with a host")


def _check_env_name(instance: object, attribute: object, value: str) -> None:
    # The message must not echo the value: it may be a pasted key.
    if value and not ENV_PATTERN.fullmatch(value):
        raise ValueError("api_key_env must name an environment variable, not hold the key")


@attrs.frozen
class ProviderConfig:
    """One OpenAI-compatible provider. Times are seconds; costs are USD per token.

    ``timeout`` bounds one attempt (connect to last byte); ``read_timeout`` is the longest
    silence tolerated while reading. ``max_retries`` more attempts follow a 429, a 5xx, a
    timeout or a connection failure. ``api_key_env`` names the environment variable holding
    the key ("" = no key); the key itself is never stored here. ``source`` is ``file:LINE``.
    """

    name: str = attrs.field(validator=attrs.validators.matches_re(NAME_PATTERN))
    base_url: str = attrs.field(validator=_check_url)
    model: str = ""
    api_key_env: str = attrs.field(default="", validator=_check_env_name)
    tool_calling: ToolCalling = attrs.field(
        default="native", validator=attrs.validators.in_(TOOL_CALLING)
    )
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    read_timeout: float = attrs.field(default=120.0, validator=_positive)
    timeout: float = attrs.field(default=300.0, validator=_positive)
    max_retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    backoff: float = attrs.field(default=1.0, validator=_non_negative)
    backoff_max: float = attrs.field(default=20.0, validator=_non_negative)
    max_retry_wait: float = attrs.field(default=60.0, validator=_non_negative)
    cost_per_input_token: float = attrs.field(default=0.0, validator=_non_negative)
    cost_per_output_token: float = attrs.field(default=0.0, validator=_non_negative)
    fallback: str = ""
    source: str = attrs.field(default="<python>", eq=False)

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one response (0.0 when the provider has no prices)."""
        return input_tokens * self.cost_per_input_token + output_tokens * self.cost_per_output_token


# -- retry policy (pure) -------------------------------------------------------------------------
def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): exponential with equal jitter.

    The ceiling doubles per attempt from ``base`` up to ``cap``; the result lies in
    ``[ceiling / 2, ceiling]`` so concurrent processes spread out but never retry at once.
    """
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a server asked for, in seconds, or None when it asked for none we can read.

    Reads ``retry-after-ms`` (OpenAI), then ``Retry-After`` as seconds or as an HTTP date.
    ``headers`` must look names up case-insensitively (httpx headers do).
    """
    millis = headers.get("retry-after-ms")
    if millis is not None:
        seconds = _number(millis)
        if seconds is not None:
            return seconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


# -- providers.yaml ------------------------------------------------------------------------------
@attrs.define
class _Entry:
    """One provider as merged so far: attribute → value, and attribute → ``file:LINE``."""

    values: dict[str, Any]
    origins: dict[str, str]
    source: str
    prefix: str  # the entry's dotted field, e.g. providers[1]


def load_providers(shipped: Path, project: Path | None = None) -> dict[str, ProviderConfig]:
    """Read ``shipped`` (must exist) and merge ``project`` over it when that file exists.

    Providers merge by ``name``, field by field; a project may also add providers. Raises
    `ConfigError` (``file:LINE``, field, fix) for bad YAML, unknown keys, wrong types, a
    duplicate name within one file, a missing ``base_url``, an unknown ``fallback`` or a
    fallback cycle. Never reads the API keys themselves.
    """
    merged: dict[str, _Entry] = {}
    files = [shipped] + ([project] if project is not None and project.exists() else [])
    for path in files:
        for name, entry in _read_file(load_yaml(path)).items():
            below = merged.get(name)
            if below is None:
                merged[name] = entry
            else:
                below.values.update(entry.values)
                below.origins.update(entry.origins)
                below.source, below.prefix = entry.source, entry.prefix
    providers = {name: _build(name, entry) for name, entry in merged.items()}
    _check_fallbacks(providers, merged)
    return providers


def _read_file(fields: YamlMap) -> dict[str, _Entry]:
    fields.check_keys(TOP_KEYS)
    if fields.has("version"):
        version = fields.get_plain("version")
        if isinstance(version, bool) or str(version) != FILE_VERSION:
            fix = f'write version: "{FILE_VERSION}"'
            raise fields.error("version", f"unsupported version {version!r}", fix)
    entries: dict[str, _Entry] = {}
    for item in fields.get_map_list("providers"):
        name, entry = _read_provider(item)
        if name in entries:
            fix = f"it is also defined at {entries[name].source}; keep one"
            raise item.error("name", f"provider '{name}' is defined twice in this file", fix)
        entries[name] = entry
    return entries


def _read_provider(fields: YamlMap) -> tuple[str, _Entry]:
    if fields.has("api_key"):
        problem = "an API key must not be written in providers.yaml"
        fix = "remove it and set api_key_env: to the name of the environment variable holding it"
        raise fields.error("api_key", problem, fix)
    fields.check_keys(PROVIDER_KEYS, required=("name",))
    name = fields.get_str("name", required=True, pattern=NAME_PATTERN, hint=NAME_HINT)
    if name in RESERVED_NAMES:
        fix = "the built-in replay driver uses this name; pick another"
        raise fields.error("name", f"'{name}' is reserved", fix)
    entry = _Entry({}, {}, fields.source(), fields.prefix)
    for key in ("base_url", "model", "api_key_env", "tool_calling", "fallback"):
        if fields.has(key):
            entry.values[key] = _read_text(fields, key)
            entry.origins[key] = fields.source(key)
    for section, keys in SECTIONS.items():
        sub = fields.get_map(section)
        sub.check_keys(keys)
        for key in sub:
            entry.values[keys[key]] = _read_number(sub, section, key)
            entry.origins[keys[key]] = sub.source(key)
    return name, entry


def _read_text(fields: YamlMap, key: str) -> str:
    if key == "base_url":
        value = fields.get_str(key, required=True)
        try:
            _check_url(None, None, value)
        except ValueError as exc:
            raise fields.error(key, f"{value!r} is not valid", str(exc)) from None
        return value
    if key == "api_key_env":
        # No pattern= here: a pasted key must not be echoed back into an error message.
        value = fields.get_str(key)
        if value and not ENV_PATTERN.fullmatch(value):
            problem = "must be the name of an environment variable, not the key itself"
            fix = "write e.g. api_key_env: OPENAI_API_KEY and export the key in that variable"
            raise fields.error(key, problem, fix)
        return value
    if key == "tool_calling":
        hint = "write native (function calling) or text (JSON actions in plain text)"
        return fields.get_str(key, pattern=re.compile("native|text"), hint=hint)
    if key == "fallback":
        return fields.get_str(key, pattern=NAME_PATTERN, hint=NAME_HINT)
    return fields.get_str(key)


def _read_number(fields: YamlMap, section: str, key: str) -> float | int:
    if section == "retries" and key == "max":
        return fields.get_int(key, 0, minimum=0)
    if section == "cost":
        return fields.get_float(key, 0.0, minimum=0.0) / PER_MILLION
    if section == "timeouts":
        return fields.get_float(key, 0.0, minimum=0.0, exclusive_minimum=True)
    return fields.get_float(key, 0.0, minimum=0.0)


def _build(name: str, entry: _Entry) -> ProviderConfig:
    if "base_url" not in entry.values:
        fix = "add base_url: e.g. http://127.0.0.1:11434/v1 (Ollama) or https://api.openai.com/v1"
        problem = f"provider '{name}' has no base_url"
        raise ConfigError(entry.source, f"{entry.prefix}.base_url", problem, fix)
    try:
        return ProviderConfig(name=name, source=entry.source, **entry.values)
    except (TypeError, ValueError) as exc:  # the readers above make this unreachable
        raise ConfigError(entry.source, entry.prefix, f"provider '{name}': {exc}") from None


def _check_fallbacks(
    providers: Mapping[str, ProviderConfig], entries: Mapping[str, _Entry]
) -> None:
    def fail(name: str, problem: str, fix: str) -> ConfigError:
        entry = entries[name]
        origin = entry.origins.get("fallback", entry.source)
        return ConfigError(origin, f"{entry.prefix}.fallback", problem, fix)

    for name, config in providers.items():
        if config.fallback and config.fallback not in providers:
            problem = f"provider '{name}' falls back to unknown provider '{config.fallback}'"
            raise fail(name, problem, f"known providers: {', '.join(sorted(providers))}")
    for name in providers:
        chain = [name]
        while providers[chain[-1]].fallback:
            following = providers[chain[-1]].fallback
            if following in chain:
                loop = " → ".join([*chain[chain.index(following) :], following])
                fix = "a fallback chain must end; remove one of these fallback: entries"
                raise fail(chain[-1], f"fallback cycle {loop}", fix)
            chain.append(following)
