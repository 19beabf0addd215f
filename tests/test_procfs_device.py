"""Tests of the read-only /proc device."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall
from rnix_actors.kernel.procfs import ProcDevice

TABLE: dict[int, dict[str, Any]] = {
    3: {"pid": 3, "state": "running", "intent": "fix the failing test", "step": 4},
    5: {"pid": 5, "state": "waiting"},
}


def lookup(pid: int) -> Mapping[str, Any] | None:
    return TABLE.get(pid)


def read(subpath: str, op: str = "read") -> str:
    call = DeviceCall(pid=1, device="/proc", subpath=subpath, op=op, args={}, workdir=Path("."))
    return ProcDevice(lookup).handle(call)


def test_status_is_sorted_indented_json() -> None:
    text = read("/3/status")
    assert text == json.dumps(TABLE[3], indent=2, sort_keys=True)
    assert json.loads(text) == TABLE[3]


def test_intent_is_the_plain_value() -> None:
    assert read("/3/intent") == "fix the failing test"
    assert read("/5/intent") == ""


def test_unknown_pid_is_not_found() -> None:
    with pytest.raises(DeviceError) as info:
        read("/99/status")
    assert info.value.code == ErrorCode.NOT_FOUND
    assert "99" in info.value.message


@pytest.mark.parametrize(
    # "٣" is an Arabic-Indic digit: str.isdigit() accepts it, a PID must not.
    "subpath",
    ["", "/3", "/3/environ", "/abc/status", "/3/status/x", "/٣/status", "/-3/status"],
)
def test_bad_subpath_is_not_found_and_names_the_valid_forms(subpath: str) -> None:
    with pytest.raises(DeviceError) as info:
        read(subpath)
    assert info.value.code == ErrorCode.NOT_FOUND
    assert "/proc/<pid>/status" in info.value.message


@pytest.mark.parametrize("op", ["write", "exec", "list"])
def test_every_other_op_is_refused(op: str) -> None:
    with pytest.raises(DeviceError) as info:
        read("/3/status", op=op)
    assert info.value.code == ErrorCode.PERMISSION
    assert "/proc is read-only" in info.value.message
