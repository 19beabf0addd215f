"""``mcp.yaml``: the MCP servers a system mounts as devices (``/dev/mcp/<server>``).

The shipped ``conf/mcp.yaml`` is an annotated example whose servers are disabled; a project's
``.rnix/mcp.yaml`` adds servers, and an entry with the name of a shipped one replaces it::

    version: "1"
    servers:
      notes:                          # the device is /dev/mcp/notes
        command: python               # stdio: a subprocess speaking MCP on stdin/stdout
        args: [-m, notes_server]
        env: {NOTES_TOKEN: MY_NOTES_TOKEN}   # the server's variable: the variable it comes from
        cwd: tools                    # relative to the project directory
        timeout: 30                   # seconds for each call
        start_timeout: 60             # seconds for the server to start and answer the handshake
        start: lazy                   # lazy (on first use) | eager (when the system starts)
      tracker:
        url: https://mcp.example.com/mcp       # streamable HTTP
        headers:
          Authorization: {env: TRACKER_TOKEN, prefix: "Bearer "}
          X-Team: TEAM_ID_VAR                 # a plain string names the variable too
        enabled: false

Values of ``env`` and ``headers`` are *names* of environment variables, read when the server
starts, never stored here, never logged. Every problem is a `ConfigError` naming ``file:LINE``,
the field and the fix; one bad entry fails the whole file, so nothing starts half-configured.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import attrs

from rnix_actors.errors import ConfigError
from rnix_actors.yamlsrc import YamlMap, load_yaml

FILE_VERSION = "1"
TOP_KEYS = ("version", "servers")
SERVER_KEYS = (
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "timeout",
    "start_timeout",
    "enabled",
    "start",
)
# One segment of /dev/mcp/<name>, and part of the function names models see (mcp__<name>__tool).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
NAME_HINT = "use letters, digits, '_' and '-' (at most 40), e.g. github or notes"
ENV_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEADER_PATTERN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_TIMEOUT = 60.0

Transport = Literal["stdio", "http"]
Start = Literal["lazy", "eager"]


@attrs.frozen
class EnvRef:
    """A value taken from the environment variable ``var`` when the server starts
    (``prefix`` first: ``Bearer ``). Its value is never held here."""

    var: str
    prefix: str = ""


@attrs.frozen
class McpServerConfig:
    """One server. ``env`` maps the server's variables and ``headers`` the HTTP headers to
    `EnvRef` values; ``source`` is ``file:LINE`` of the entry."""

    name: str
    transport: Transport
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, EnvRef] = attrs.field(factory=dict)
    cwd: Path | None = None
    url: str = ""
    headers: Mapping[str, EnvRef] = attrs.field(factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    start_timeout: float = DEFAULT_START_TIMEOUT
    enabled: bool = True
    start: Start = "lazy"
    source: str = attrs.field(default="<python>", eq=False)

    @property
    def device(self) -> str:
        return f"/dev/mcp/{self.name}"

    def target(self) -> str:
        """What ``rnix mcp list`` shows: the command or the URL (never a secret: values of
        variables are not part of either)."""
        return self.url if self.transport == "http" else " ".join((self.command, *self.args))


def load_mcp_config(
    shipped: Path | None, project: Path | None, project_dir: Path
) -> dict[str, McpServerConfig]:
    """Servers of ``shipped`` with ``project`` over them (each file only if it exists).

    Relative ``cwd`` values are resolved against ``project_dir``. Raises `ConfigError` for
    bad YAML, unknown keys, wrong types, an entry with both or neither of ``command`` and
    ``url``, a secret written in the file, or a plain-HTTP URL to another machine.
    """
    servers: dict[str, McpServerConfig] = {}
    for path in (shipped, project):
        if path is not None and path.exists():
            servers.update(parse_mcp_file(load_yaml(path), project_dir))
    return servers


def parse_mcp_file(fields: YamlMap, project_dir: Path) -> dict[str, McpServerConfig]:
    fields.check_keys(TOP_KEYS)
    if fields.has("version"):
        version = fields.get_plain("version")
        if isinstance(version, bool) or str(version) != FILE_VERSION:
            fix = f'write version: "{FILE_VERSION}"'
            raise fields.error("version", f"unsupported version {version!r}", fix)
    servers = fields.get_map("servers")
    found: dict[str, McpServerConfig] = {}
    for name in servers:
        if not NAME_PATTERN.fullmatch(name):
            raise servers.error(name, f"server name {name!r} is not valid", NAME_HINT)
        found[name] = _server(name, servers.get_map(name), project_dir)
    return found


def _server(name: str, fields: YamlMap, project_dir: Path) -> McpServerConfig:
    fields.check_keys(SERVER_KEYS)
    has_command, has_url = fields.has("command"), fields.has("url")
    if has_command == has_url:
        problem = "needs exactly one of command: (a stdio server) and url: (streamable HTTP)"
        fix = "write command: with args: to run a local server, or url: to reach one"
        raise ConfigError(fields.source(), fields.prefix, problem, fix)
    start = fields.get_str(
        "start", "lazy", pattern=re.compile("lazy|eager"), hint="write lazy or eager"
    )
    common = {
        "name": name,
        "timeout": fields.get_float("timeout", DEFAULT_TIMEOUT, exclusive_minimum=True),
        "start_timeout": fields.get_float(
            "start_timeout", DEFAULT_START_TIMEOUT, exclusive_minimum=True
        ),
        "enabled": fields.get_bool("enabled", True),
        "start": start,
        "source": fields.source(),
    }
    if has_url:
        for key in ("args", "env", "cwd"):
            if fields.has(key):
                fix = "only stdio servers (command:) take args, env and cwd"
                raise fields.error(key, "not allowed with url:", fix)
        url = _url(fields)
        headers = _refs(fields, "headers", HEADER_PATTERN, "an HTTP header name")
        return McpServerConfig(transport="http", url=url, headers=headers, **common)  # type: ignore[arg-type]
    if fields.has("headers"):
        raise fields.error("headers", "not allowed with command:", "headers are for url: servers")
    cwd = fields.get_str("cwd") if fields.has("cwd") else None
    return McpServerConfig(
        transport="stdio",
        command=fields.get_str("command", required=True, hint="name the program to run"),
        args=fields.get_str_list("args", unique=False),
        env=_refs(fields, "env", ENV_PATTERN, "an environment variable name"),
        cwd=None if cwd is None else (project_dir / cwd).resolve(),
        **common,  # type: ignore[arg-type]
    )


def _url(fields: YamlMap) -> str:
    url = fields.get_str("url", required=True)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fix = "write an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/mcp"
        raise fields.error("url", "is not an http(s) URL", fix)
    if parts.username or parts.password:
        problem = "must not carry credentials"
        fix = "remove them and send them in headers: whose values name environment variables"
        raise fields.error("url", problem, fix)
    if parts.scheme == "http" and not _loopback(parts.hostname):
        problem = "plain http:// is only allowed to this machine (127.0.0.1, ::1, localhost)"
        raise fields.error("url", problem, "use https:// for a server on another machine")
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refs(fields: YamlMap, key: str, names: re.Pattern[str], what: str) -> dict[str, EnvRef]:
    """``env:`` or ``headers:``: each value names an environment variable (a string) or is
    ``{env: VAR, prefix: "Bearer "}``."""
    table = fields.get_map(key)
    refs: dict[str, EnvRef] = {}
    for name in table:
        if not names.fullmatch(name):
            raise table.error(name, f"{name!r} is not {what}", f"write {what}")
        if not isinstance(table.get_plain(name), dict):
            refs[name] = EnvRef(_var(table, name, table.get_str(name)))
            continue
        ref = table.get_map(name)
        ref.check_keys(("env", "prefix"), required=("env",))
        refs[name] = EnvRef(_var(ref, "env", ref.get_str("env")), ref.get_str("prefix"))
    return refs


def _var(fields: YamlMap, key: str, value: str) -> str:
    # Never echo the value: a pasted secret must not reach an error message or a log.
    if not ENV_PATTERN.fullmatch(value):
        problem = "must name an environment variable, not hold its value"
        fix = f"write e.g. {key}: MY_TOKEN and export the secret in MY_TOKEN"
        raise fields.error(key, problem, fix)
    return value
