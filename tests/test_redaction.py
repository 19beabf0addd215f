"""Secrets are redacted in part, too: a provider that echoes most of its key leaks no fragment
into events, logs, the store, errors or --json output."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from test_http_driver import ChatServer, driver, error, finish, run, server  # noqa: F401

from rnix_actors import System
from rnix_actors.cli.main import cli
from rnix_actors.redact import (
    MIN_FRAGMENT,
    REDACTED,
    Redactor,
    install_log_filter,
    redact,
    register_secrets,
)


def fragments(key: str) -> set[str]:
    return {key[i : i + MIN_FRAGMENT] for i in range(len(key) - MIN_FRAGMENT + 1)}


def leaked(text: str, key: str) -> set[str]:
    return {f for f in fragments(key) if f in text}


def test_runs_of_eight_or_more_characters_are_redacted_shorter_ones_are_not() -> None:
    redactor = Redactor()
    key = "sk-proj-" + "Zq7" * 16
    redactor.register([key])
    text = f"got {key[:30]}***{key[-12:]} and {key[3:10]} and {key[20:28]}!"
    out = redactor.text(text)
    assert out == f"got {REDACTED}***{REDACTED} and {key[3:10]} and {REDACTED}!"
    assert redactor.text("nothing secret: task-runner-abcdefgh 2026-12-03") == (
        "nothing secret: task-runner-abcdefgh 2026-12-03"
    )


def test_secret_shapes_are_redacted_even_when_unknown() -> None:
    out = Redactor().text("Authorization: Bearer abc.def-123456789 then sk-live_1234567890")
    assert out == f"Authorization: {REDACTED} then {REDACTED}"


@given(
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=64),
    start=st.integers(0, 56),
    length=st.integers(8, 64),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_no_fragment_of_a_known_secret_survives(
    secret: str, start: int, length: int, before: str, after: str
) -> None:
    redactor = Redactor()
    redactor.register([secret])
    fragment = secret[start : start + length]
    if len(fragment) < MIN_FRAGMENT:
        return
    out = redactor.text(before + fragment + after)
    assert not any(f in out for f in fragments(secret) if f not in before + after)


def test_a_provider_echoing_part_of_the_key_leaks_no_fragment(
    project: Path,
    server: ChatServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk-proj-" + secrets.token_urlsafe(37)[:49]  # 57 characters, like a real key
    monkeypatch.setenv("RNIX_TEST_KEY", key)
    caplog.set_level(logging.DEBUG)
    echo = f"Incorrect API key provided: {key[:45]}****{key[-4:]}; Bearer {key[:49]}"
    server.script(error(500, echo), error(401, echo))
    with System(project) as system:
        chat = driver(server, api_key_env="RNIX_TEST_KEY", max_retries=1)
        info = finish(system, run(system, chat))
        system.sync_events()
        rows = json.dumps([p.to_dict() for p in system.ps(all=True)], default=str)
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {key}"  # it was sent
    assert "Incorrect API key provided: [REDACTED]" in info.exit_reason
    state = b"".join(p.read_bytes() for p in (project / ".rnix").rglob("*") if p.is_file())
    cli_json = CliRunner().invoke(cli, ["--project-dir", str(project), "ps", "--all", "--json"])
    logs = CliRunner().invoke(cli, ["--project-dir", str(project), "logs", str(info.pid)])
    seen = {
        "exit reason": info.exit_reason,
        "ps rows": rows,
        "state dir (db, wal, events.jsonl)": state.decode("utf-8", "replace"),
        "log records": caplog.text,
        "ps --all --json": cli_json.output,
        "rnix logs": logs.output,
    }
    assert {where: leaked(text, key) for where, text in seen.items()} == {w: set() for w in seen}


def test_environment_secrets_are_known_without_a_provider(
    monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    token = "ghp_" + secrets.token_hex(18)
    monkeypatch.setenv("GITHUB_TOKEN", token)
    System(project)  # registers what the environment holds
    assert redact(f"cloning with {token[5:30]}") == f"cloning with {REDACTED}"
    register_secrets(["short"])  # under 8 characters: ignored, it would redact ordinary words
    assert redact("a short note") == "a short note"


def test_the_log_filter_redacts_messages_and_tracebacks() -> None:
    key = "tok_" + secrets.token_hex(12)
    register_secrets([key])
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    install_log_filter([handler])
    logger = logging.getLogger("rnix_actors.test_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("retrying after %s", f"denied for {key[:20]}")
        try:
            raise RuntimeError(f"bad token {key}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert records and not any(leaked(r, key) for r in records)
    assert "retrying after denied for [REDACTED]" in records[0]
