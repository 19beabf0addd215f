"""``mcp.yaml`` parsing: strict, with file:LINE, field and fix; a bad entry starts nothing."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from rnix_actors import ConfigError, System
from rnix_actors.mcp import EnvRef, load_mcp_config
from rnix_actors.paths import shipped_conf_dir


def parse(tmp_path: Path, text: str) -> dict[str, object]:
    path = tmp_path / "mcp.yaml"
    path.write_text(text)
    return dict(load_mcp_config(None, path, tmp_path))


def error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(tmp_path, text)
    return caught.value


def test_the_shipped_example_parses_and_enables_nothing(tmp_path: Path) -> None:
    servers = load_mcp_config(shipped_conf_dir() / "mcp.yaml", None, tmp_path)
    assert set(servers) == {"filesystem", "tracker"}
    assert not any(s.enabled for s in servers.values())
    tracker = servers["tracker"]
    assert tracker.transport == "http"
    assert tracker.headers == {"Authorization": EnvRef("TRACKER_TOKEN", "Bearer ")}


def test_a_full_stdio_and_http_entry(tmp_path: Path) -> None:
    servers = parse(
        tmp_path,
        """
version: "1"
servers:
  notes:
    command: python
    args: [-m, notes, "--flag"]
    env: {NOTES_TOKEN: MY_TOKEN}
    cwd: tools
    timeout: 5
    start_timeout: 9
    start: eager
  remote:
    url: http://127.0.0.1:9000/mcp
    headers: {X-Key: KEY_VAR}
    enabled: false
""",
    )
    notes, remote = servers["notes"], servers["remote"]
    assert notes.transport == "stdio" and notes.args == ("-m", "notes", "--flag")  # type: ignore[attr-defined]
    assert notes.env == {"NOTES_TOKEN": EnvRef("MY_TOKEN")}  # type: ignore[attr-defined]
    assert notes.cwd == (tmp_path / "tools").resolve()  # type: ignore[attr-defined]
    assert (notes.timeout, notes.start_timeout, notes.start) == (5.0, 9.0, "eager")  # type: ignore[attr-defined]
    assert remote.headers == {"X-Key": EnvRef("KEY_VAR")}  # type: ignore[attr-defined]
    assert remote.enabled is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "where", "field", "words"),
    [
        ("  a:\n    comand: x\n", ":3", "servers.a.comand", "did you mean 'command'"),
        ("  a:\n    command: x\n    url: http://127.0.0.1/m\n", ":3", "servers.a", "exactly one"),
        ("  a:\n    args: [x]\n", ":3", "servers.a", "exactly one"),
        ("  a:\n    command: x\n    timeout: 0\n", ":4", "servers.a.timeout", "> 0"),
        ("  a:\n    command: x\n    start: later\n", ":4", "servers.a.start", "lazy or eager"),
        ("  a:\n    command: x\n    enabled: yes\n", ":4", "servers.a.enabled", "true or false"),
        ("  a:\n    url: http://10.0.0.5/mcp\n", ":3", "servers.a.url", "https://"),
        ("  a:\n    url: ftp://x/mcp\n", ":3", "servers.a.url", "http(s)"),
        ("  a:\n    url: https://u:p@x/mcp\n", ":3", "servers.a.url", "credentials"),
        ("  a:\n    url: https://x/mcp\n    env: {A: B}\n", ":4", "servers.a.env", "stdio"),
        ("  a:\n    command: x\n    headers: {A: B}\n", ":4", "servers.a.headers", "url:"),
        ("  a.b:\n    command: x\n", ":3", "servers.a.b", "not valid"),
        (
            "  a:\n    command: x\n    env: {A: {prefix: x}}\n",
            ":4",
            "servers.a.env.A.env",
            "required",
        ),
    ],
)
def test_bad_entries_name_file_line_field_and_fix(
    tmp_path: Path, body: str, where: str, field: str, words: str
) -> None:
    exc = error(tmp_path, "servers:\n" + body)
    assert exc.source == f"{tmp_path / 'mcp.yaml'}{where}"
    assert exc.field == field
    assert words in str(exc)


def test_a_secret_written_in_the_file_is_refused_without_being_echoed(tmp_path: Path) -> None:
    secret = "ghp_8dk3JHs92kdLQ0aa"
    for text in (
        f"servers:\n  a:\n    command: x\n    env: {{TOKEN: {secret}-x}}\n",
        f"servers:\n  a:\n    url: https://h/mcp\n    headers: {{X: 'Bearer {secret}'}}\n",
        f"servers:\n  a:\n    url: https://h/mcp\n    headers: {{A: {{env: '{secret} x'}}}}\n",
    ):
        exc = error(tmp_path, text)
        assert "must name an environment variable" in str(exc)
        assert secret not in str(exc)


def test_a_bad_entry_starts_nothing(project: Path) -> None:
    rnix = project / ".rnix"
    rnix.mkdir()
    good = f"  good:\n    command: {sys.executable}\n    start: eager\n"
    (rnix / "mcp.yaml").write_text(f"servers:\n{good}  bad:\n    command: x\n    timeout: -1\n")
    before = set(threading.enumerate())
    with pytest.raises(ConfigError) as caught:
        System(project)
    assert caught.value.field == "servers.bad.timeout"
    assert set(threading.enumerate()) == before


def test_without_the_sdk_an_enabled_server_names_the_extra(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rnix = project / ".rnix"
    rnix.mkdir()
    (rnix / "mcp.yaml").write_text("servers:\n  notes:\n    command: x\n")
    for name in list(sys.modules):
        if name == "mcp" or name.startswith(("mcp.", "rnix_actors.mcp.")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mcp", None)  # what `import mcp` finds without the SDK
    with pytest.raises(ConfigError) as caught:
        System(project)
    assert "pip install 'rnix-actors[mcp]'" in str(caught.value)
    assert caught.value.source.endswith("mcp.yaml:3")
    # Disabled servers need no SDK.
    (rnix / "mcp.yaml").write_text("servers:\n  notes:\n    command: x\n    enabled: false\n")
    System(project)
