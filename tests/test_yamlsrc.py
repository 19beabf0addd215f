"""Strict YAML reading: types, line numbers, unknown keys, syntax errors, junk input."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnix_actors.errors import ConfigError
from rnix_actors.templates import Limits
from rnix_actors.yamlsrc import YamlMap, from_python, load_yaml, parse_yaml


def write(tmp_path: Path, text: str, name: str = "conf.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_typed_fields_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: demo\ncount: 3\nratio: 0.5\nwhole: 2\nflag: false\n"
        "tags: [a, b]\nsub:\n  inner: x\nplain: {k: [1, 2.5, null, true]}\n",
    )
    doc = load_yaml(path)
    assert doc.get_str("name") == "demo"
    assert doc.get_int("count", 0) == 3
    assert doc.get_float("ratio", 0.0, maximum=1.0) == 0.5
    assert doc.get_float("whole", 0.0) == 2.0
    assert doc.get_bool("flag", True) is False
    assert doc.get_str_list("tags") == ("a", "b")
    assert doc.get_map("sub").get_str("inner") == "x"
    assert doc.get_plain("plain") == {"k": [1, 2.5, None, True]}


def test_absent_fields_give_defaults(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "other: 1\nempty_map:\nempty_list:\n"))
    assert doc.get_str("name", "dflt") == "dflt"
    assert doc.get_int("count", 7) == 7
    assert doc.get_bool("flag", True) is True
    assert doc.get_str_list("tags") == ()
    assert doc.get_map("empty_map").keys() == []
    assert doc.get_map_list("empty_list") == []


def test_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    assert load_yaml(write(tmp_path, "# only a comment\n")).keys() == []


@pytest.mark.parametrize("text", ["flag: yes", "flag: on", "flag: 'true'", "flag: 1"])
def test_bool_fields_need_real_booleans(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "a: 1\n" + text + "\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path).get_bool("flag", False)
    err = info.value
    assert err.source == f"{path}:2"
    assert err.field == "flag"
    assert "true or false" in err.problem
    assert "write true or false" in err.fix


def test_yaml11_words_stay_strings() -> None:
    doc = parse_yaml("answer: no\nswitch: on\n", "x.yaml")
    assert doc.get_str("answer") == "no"
    assert doc.get_plain("switch") == "on"


def test_wrong_scalar_type_names_line_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "name: ok\nlimits:\n  max_steps: many\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path).get_map("limits").get_int("max_steps", 0, minimum=0)
    assert info.value.source == f"{path}:3"
    assert info.value.field == "limits.max_steps"
    assert "must be an integer >= 0" in str(info.value)
    assert "'many'" in str(info.value)


def test_string_field_rejects_numbers_with_quote_hint() -> None:
    with pytest.raises(ConfigError, match=r"x.yaml:1: field 'name': must be a string .*quote"):
        parse_yaml("name: 123\n", "x.yaml").get_str("name")


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        ("-1", {}, "a number >= 0"),
        ("0", {"exclusive_minimum": True}, "a number > 0"),
        ("1.5", {"maximum": 1.0}, "a number between 0 and 1"),
        (".nan", {}, "a number >= 0"),
        (".inf", {}, "a number >= 0"),
        ("'2'", {}, "a number >= 0"),
    ],
)
def test_float_ranges(value: str, kwargs: dict[str, object], expected: str) -> None:
    doc = parse_yaml(f"v: {value}\n", "f.yaml")
    with pytest.raises(ConfigError, match=re.escape(expected)):
        doc.get_float("v", 0.0, **kwargs)  # type: ignore[arg-type]


def test_int_below_minimum() -> None:
    with pytest.raises(ConfigError, match=r"must be an integer >= 4 \(got integer 2\)"):
        parse_yaml("slots: 2\n", "f.yaml").get_int("slots", 8, minimum=4)


def test_unknown_key_lists_allowed_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\ndescripton: typo\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path).check_keys(["name", "description", "skills"])
    err = info.value
    assert err.source == f"{path}:2"
    assert err.field == "descripton"
    assert "unknown key" in err.problem
    assert "did you mean 'description'" in err.fix
    assert "allowed keys: name, description, skills" in err.fix


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"field 'name': is required \(add 'name:'"):
        parse_yaml("description: x\n", "t.yaml").check_keys(["name", "description"], ["name"])


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\nb: 2\na: 3\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.source == f"{path}:3"
    assert "duplicate key" in info.value.problem
    assert f"{path}:1" in info.value.fix


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.source.startswith(f"{path}:")
    assert "invalid YAML" in info.value.problem
    assert "near line" in info.value.fix


def test_tab_indentation_error_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a:\n\tb: 1\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:2: invalid YAML")):
        load_yaml(path)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_yaml(path)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_yaml(bad)


def test_list_items_report_index_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "devices:\n  - /dev/fs\n  - 12\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(path).get_str_list("devices")
    assert info.value.source == f"{path}:3"
    assert info.value.field == "devices[1]"


def test_list_item_converter_and_duplicates() -> None:
    def upper(value: str) -> str:
        if value == "bad":
            raise ValueError("bad is not allowed")
        return value.upper()

    doc = parse_yaml("xs: [a, b]\nys: [a, bad]\nzs: [a, a]\n", "l.yaml")
    assert doc.get_str_list("xs", item=upper) == ("A", "B")
    with pytest.raises(ConfigError, match=r"field 'ys\[1\]': bad is not allowed"):
        doc.get_str_list("ys", item=upper)
    with pytest.raises(ConfigError, match="listed twice"):
        doc.get_str_list("zs")


def test_map_list_items_get_indexed_prefixes() -> None:
    doc = parse_yaml("items:\n  - a: 1\n  - a: x\n", "m.yaml")
    second = doc.get_map_list("items")[1]
    with pytest.raises(ConfigError) as info:
        second.get_int("a", 0)
    assert info.value.field == "items[1].a"
    assert info.value.source == "m.yaml:3"


def test_plain_rejects_timestamps_and_custom_tags() -> None:
    doc = parse_yaml("when: 2024-01-01\ncustom: !thing x\n", "p.yaml")
    with pytest.raises(ConfigError, match="quote it"):
        doc.get_plain("when")
    with pytest.raises(ConfigError, match="unsupported value"):
        doc.get_plain("custom")


def test_recursive_alias_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"r.yaml:1: field 'a\[0\]': recursive alias"):
        parse_yaml("a: &loop [*loop]\n", "r.yaml")  # refused before anything walks it


def test_origins_point_at_lines() -> None:
    doc = parse_yaml("kernel:\n  x: 1\nimmune:\n  y: 2\n  z: [1]\n", "o.yaml")
    assert doc.origins() == {"kernel.x": "o.yaml:2", "immune.y": "o.yaml:4", "immune.z": "o.yaml:5"}


def test_from_python_applies_the_same_checks() -> None:
    doc = from_python({"flag": "yes", "n": 3, "limits": Limits(max_steps=2)}, "<host>")
    assert doc.get_int("n", 0) == 3
    assert doc.get_map("limits").get_int("max_steps", 0) == 2
    with pytest.raises(ConfigError) as info:
        doc.get_bool("flag", False)
    assert info.value.source == "<host>"
    assert info.value.field == "flag"


def test_from_python_rejects_unsupported_values() -> None:
    @attrs.frozen
    class Opaque:
        pass

    with pytest.raises(ConfigError, match=r"field 'a.b\[0\]': unsupported value of type object"):
        from_python({"a": {"b": [object()]}}, "<host>")
    assert from_python({"o": Opaque()}, "<host>").get_map("o").keys() == []


def _exercise(doc: YamlMap) -> None:
    for key in doc:
        doc.get_plain(key)
        doc.origins()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_only_raises_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        _exercise(parse_yaml(text, "junk.yaml"))


_yamlish = st.text(alphabet=st.sampled_from(list("ab:- \n\t[]{}&*!'\"#|>,?%@`01.")), max_size=120)


@settings(max_examples=300, deadline=None)
@given(_yamlish)
def test_yamlish_junk_only_raises_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        doc = parse_yaml(text, "junk.yaml")
        _exercise(doc)
        for key in doc:
            for getter in (doc.get_str, doc.get_str_list, doc.get_map, doc.get_map_list):
                with contextlib.suppress(ConfigError):
                    getter(key)
