"""providers.yaml: the shipped example, project overrides, strict errors, the retry policy."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors import System
from rnix_actors.drivers.providers import (
    ProviderConfig,
    backoff_delay,
    load_providers,
    parse_retry_after,
)
from rnix_actors.errors import ConfigError
from rnix_actors.paths import shipped_conf_dir

SHIPPED = shipped_conf_dir() / "providers.yaml"

BASE = """\
version: "1"
providers:
  - name: local
    base_url: http://127.0.0.1:8000/v1
    model: small
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path / "providers.yaml", text)
    with pytest.raises(ConfigError) as raised:
        load_providers(path)
    return raised.value


def test_shipped_example_has_a_local_server_and_a_hosted_api() -> None:
    providers = load_providers(SHIPPED, None)
    ollama, openai = providers["ollama"], providers["openai"]

    assert ollama.base_url == "http://127.0.0.1:11434/v1" and ollama.api_key_env == ""
    assert openai.api_key_env == "OPENAI_API_KEY" and openai.fallback == "ollama"
    assert openai.cost(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert openai.source.startswith(f"{SHIPPED}:")


def test_shipped_agents_stay_offline(project: Path) -> None:
    system = System(project)
    providers = load_providers(SHIPPED, None)
    assert {t.driver for t in system.templates.values()} == {"replay"}
    assert not set(providers) & {t.driver for t in system.templates.values()}


def test_project_file_merges_by_name_and_field(tmp_path: Path) -> None:
    shipped = write(tmp_path / "shipped.yaml", BASE)
    project = write(
        tmp_path / "project.yaml",
        """\
        providers:
          - name: local
            model: bigger
            retries: {max: 5}
          - name: hosted
            base_url: https://llm.example.com/v1
            api_key_env: HOSTED_KEY
            fallback: local
            cost: {input: 3, output: 15}
        """,
    )
    providers = load_providers(shipped, project)

    local = providers["local"]
    assert (local.base_url, local.model, local.max_retries) == (
        "http://127.0.0.1:8000/v1",
        "bigger",
        5,
    )
    assert local.source == f"{project}:2"
    hosted = providers["hosted"]
    assert hosted.cost_per_input_token == pytest.approx(3e-6)
    assert hosted.cost_per_output_token == pytest.approx(15e-6)
    assert list(providers) == ["local", "hosted"]


def test_a_missing_project_file_is_skipped(tmp_path: Path) -> None:
    shipped = write(tmp_path / "shipped.yaml", BASE)
    assert list(load_providers(shipped, tmp_path / "absent.yaml")) == ["local"]


def test_defaults_and_every_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "providers.yaml",
        BASE
        + """\
    tool_calling: text
    timeouts: {connect: 2, read: 30.5, request: 90}
    retries: {max: 0, backoff: 0.25, backoff_max: 3, max_wait: 10}
""",
    )
    local = load_providers(path)["local"]
    assert local == ProviderConfig(
        name="local",
        base_url="http://127.0.0.1:8000/v1",
        model="small",
        tool_calling="text",
        connect_timeout=2.0,
        read_timeout=30.5,
        timeout=90.0,
        max_retries=0,
        backoff=0.25,
        backoff_max=3.0,
        max_retry_wait=10.0,
    )
    assert ProviderConfig(name="x", base_url="http://h").max_retries == 2


@pytest.mark.parametrize(
    ("extra", "line", "field", "needle"),
    [
        ("    modle: x\n", 6, "providers[0].modle", "did you mean 'model'?"),
        ("    tool_calling: json\n", 6, "providers[0].tool_calling", "'json' is not valid"),
        ("    timeouts: {connect: 0}\n", 6, "providers[0].timeouts.connect", "a number > 0"),
        ("    timeouts: {total: 5}\n", 6, "providers[0].timeouts.total", "unknown key"),
        ("    retries: {max: -1}\n", 6, "providers[0].retries.max", "an integer >= 0"),
        ("    cost: {input: cheap}\n", 6, "providers[0].cost.input", "must be a number"),
        ("    fallback: nowhere\n", 6, "providers[0].fallback", "unknown provider 'nowhere'"),
        ("    fallback: local\n", 6, "providers[0].fallback", "fallback cycle local → local"),
    ],
)
def test_field_errors_name_file_line_and_field(
    tmp_path: Path, extra: str, line: int, field: str, needle: str
) -> None:
    exc = load_error(tmp_path, BASE + extra)
    assert exc.source == f"{tmp_path / 'providers.yaml'}:{line}"
    assert exc.field == field
    assert needle in str(exc)


def test_bad_base_url(tmp_path: Path) -> None:
    exc = load_error(tmp_path, BASE.replace("http://127.0.0.1:8000/v1", "127.0.0.1:8000"))
    assert (exc.field, exc.source.rsplit(":", 1)[1]) == ("providers[0].base_url", "4")
    assert "http:// or https://" in str(exc)


def test_missing_base_url_after_merge(tmp_path: Path) -> None:
    exc = load_error(tmp_path, "providers:\n  - name: lonely\n    model: m\n")
    assert exc.field == "providers[0].base_url" and "provider 'lonely' has no base_url" in str(exc)


def test_fallback_cycle_across_providers(tmp_path: Path) -> None:
    exc = load_error(
        tmp_path,
        """\
        providers:
          - {name: a, base_url: "http://a", fallback: b}
          - {name: b, base_url: "http://b", fallback: c}
          - {name: c, base_url: "http://c", fallback: b}
        """,
    )
    assert "fallback cycle b → c → b" in str(exc)
    assert exc.source.endswith(":4") and exc.field == "providers[2].fallback"


def test_duplicate_names_in_one_file(tmp_path: Path) -> None:
    exc = load_error(tmp_path, BASE + "  - name: local\n    base_url: http://x\n")
    assert exc.source.endswith(":6") and "defined twice" in str(exc)


def test_reserved_and_invalid_names(tmp_path: Path) -> None:
    assert "'replay' is reserved" in str(load_error(tmp_path, BASE.replace("local", "replay")))
    assert "is not valid" in str(load_error(tmp_path, BASE.replace("local", "a/b")))


def test_keys_are_never_written_in_the_file(tmp_path: Path) -> None:
    secret = "sk-live-0123456789abcdef"
    exc = load_error(tmp_path, BASE + f"    api_key: {secret}\n")
    assert exc.field == "providers[0].api_key" and "api_key_env" in str(exc)
    pasted = load_error(tmp_path, BASE + f"    api_key_env: {secret}\n")
    assert "not the key itself" in str(pasted)
    assert secret not in str(pasted) and secret not in repr(pasted.args)
    with pytest.raises(ValueError) as raised:
        ProviderConfig(name="x", base_url="http://h", api_key_env=secret)
    assert secret not in str(raised.value)


def test_bad_version_and_top_level(tmp_path: Path) -> None:
    assert "unsupported version" in str(load_error(tmp_path, 'version: "2"\nproviders: []\n'))
    assert "unknown key" in str(load_error(tmp_path, "provider: []\n"))
    assert "file not found" in str(load_error_missing(tmp_path))


def load_error_missing(tmp_path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load_providers(tmp_path / "nope.yaml")
    return raised.value


# -- retry policy (pure) ----------------------------------------------------------------------


@given(
    attempt=st.integers(1, 200),
    base=st.floats(0, 10),
    cap=st.floats(0, 100),
    seed=st.integers(0, 2**32),
)
def test_backoff_doubles_up_to_the_cap_with_bounded_jitter(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    delay = backoff_delay(attempt, base, cap, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "12"}) == 12.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after({"retry-after": date}, now=1445412470.0) == 10.0
    assert parse_retry_after({"retry-after": date}, now=1445412490.0) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "-3"}) is None
    assert parse_retry_after({}) is None
