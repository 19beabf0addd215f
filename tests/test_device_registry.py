"""Tests of the device registry lookup and the permission check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import (
    DeviceCall,
    DeviceRegistry,
    HostDevice,
    path_within,
    permission_error,
)


def named(name: str) -> HostDevice:
    def handler(call: DeviceCall) -> str:
        return name

    return HostDevice(handler)


@pytest.fixture
def registry() -> DeviceRegistry:
    reg = DeviceRegistry()
    for path in ("/dev", "/dev/fs", "/dev/llm", "/dev/llm/openai", "/proc"):
        reg.register(path, named(path))
    return reg


# -- lookup -------------------------------------------------------------------------------------


def test_exact_match_beats_a_prefix(registry: DeviceRegistry) -> None:
    path, device, subpath = registry.lookup("/dev/llm/openai")
    assert (path, subpath) == ("/dev/llm/openai", "")
    assert isinstance(device, HostDevice)


def test_longest_prefix_wins_and_the_rest_is_the_subpath(registry: DeviceRegistry) -> None:
    assert registry.lookup("/dev/fs/src/a.py")[::2] == ("/dev/fs", "/src/a.py")
    assert registry.lookup("/dev/llm/openai/gpt")[::2] == ("/dev/llm/openai", "/gpt")
    assert registry.lookup("/dev/llm/anthropic")[::2] == ("/dev/llm", "/anthropic")
    assert registry.lookup("/proc/3/status")[::2] == ("/proc", "/3/status")


def test_a_shared_name_prefix_is_not_a_path_prefix() -> None:
    reg = DeviceRegistry()
    reg.register("/dev/fs", named("fs"))
    with pytest.raises(DeviceError) as info:
        reg.lookup("/dev/fsx")
    assert info.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(DeviceError):
        reg.lookup("/dev/fsx/a")


def test_falls_back_to_a_shorter_prefix(registry: DeviceRegistry) -> None:
    # /dev/fsx is not under /dev/fs but is under /dev.
    assert registry.lookup("/dev/fsx")[::2] == ("/dev", "/fsx")


def test_unknown_device_is_not_found(registry: DeviceRegistry) -> None:
    with pytest.raises(DeviceError) as info:
        registry.lookup("/sys/kernel")
    assert info.value.code == ErrorCode.NOT_FOUND
    assert info.value.path == "/sys/kernel"


@pytest.mark.parametrize("path", ["dev/fs", "/dev/../etc", "/dev/./fs", "/", ""])
def test_malformed_lookup_path_is_invalid(registry: DeviceRegistry, path: str) -> None:
    with pytest.raises(DeviceError) as info:
        registry.lookup(path)
    assert info.value.code == ErrorCode.INVALID


def test_lookup_normalises_trailing_and_double_slashes(registry: DeviceRegistry) -> None:
    assert registry.lookup("/dev/fs/")[::2] == ("/dev/fs", "")
    assert registry.lookup("/dev//fs//a")[::2] == ("/dev/fs", "/a")


def test_duplicate_registration_is_refused(registry: DeviceRegistry) -> None:
    with pytest.raises(ValueError, match="already registered at /dev/fs"):
        registry.register("/dev/fs", named("again"))
    with pytest.raises(ValueError, match="already registered"):
        registry.register("/dev/fs/", named("again"))


def test_register_refuses_bad_paths_and_non_devices() -> None:
    reg = DeviceRegistry()
    with pytest.raises(ValueError, match="absolute"):
        reg.register("dev/x", named("x"))
    with pytest.raises(TypeError, match="handle"):
        reg.register("/dev/x", object())  # type: ignore[arg-type]


def test_unregister_and_paths(registry: DeviceRegistry) -> None:
    registry.unregister("/dev/llm/openai")
    registry.unregister("/dev/never-registered")
    assert registry.paths() == ["/dev", "/dev/fs", "/dev/llm", "/proc"]
    assert registry.lookup("/dev/llm/openai")[::2] == ("/dev/llm", "/openai")


# -- permission_error ---------------------------------------------------------------------------


def test_denied_is_checked_before_allowed() -> None:
    message = permission_error("/dev/shell", allowed=["/dev/shell"], denied=["/dev/shell"])
    assert message is not None
    assert "denied to this process" in message
    assert "spawn" in message


def test_empty_whitelist_denies_everything() -> None:
    for path in ("/dev/fs", "/proc", "/dev/llm/openai"):
        message = permission_error(path, allowed=[], denied=[])
        assert message is not None
        assert "not in allowed list []" in message


def test_allowed_entries_cover_their_subtree_only() -> None:
    allowed = ["/dev/fs", "/dev/llm"]
    assert permission_error("/dev/fs", allowed, []) is None
    assert permission_error("/dev/fs/src/a.py", allowed, []) is None
    assert permission_error("/dev/llm/openai", allowed, []) is None
    assert permission_error("/dev/fsx", allowed, []) is not None
    assert permission_error("/dev", allowed, []) is not None


def test_denied_entries_cover_their_subtree() -> None:
    allowed = ["/dev"]
    assert permission_error("/dev/shell/x", allowed, ["/dev/shell"]) is not None
    assert permission_error("/dev/shellx", allowed, ["/dev/shell"]) is None


_segments = st.sampled_from(["dev", "fs", "fsx", "f", "shell", "llm", "openai", "proc", "3"])
_paths = st.lists(_segments, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))


@given(path=_paths, allowed=st.lists(_paths, max_size=4), denied=st.lists(_paths, max_size=3))
def test_permission_never_allows_a_path_outside_every_allowed_entry(
    path: str, allowed: list[str], denied: list[str]
) -> None:
    verdict = permission_error(path, allowed, denied)
    inside_allowed = any(path == a or path.startswith(a + "/") for a in allowed)
    inside_denied = any(path == d or path.startswith(d + "/") for d in denied)
    if verdict is None:
        assert inside_allowed
        assert not inside_denied
    else:
        assert not inside_allowed or inside_denied


@given(path=_paths, entry=_paths)
def test_path_within_matches_whole_segments(path: str, entry: str) -> None:
    expected = path.split("/")[: len(entry.split("/"))] == entry.split("/")
    assert path_within(path, entry) == expected


# -- effects ---------------------------------------------------------------------------------


def test_builtin_devices_declare_their_effects() -> None:
    from rnix_actors.kernel.devices import Effect, device_effect
    from rnix_actors.kernel.fs import FileSystemDevice
    from rnix_actors.kernel.shell import ShellDevice

    fs = FileSystemDevice()
    assert device_effect(fs, "read") is Effect.READ
    assert device_effect(fs, "list") is Effect.READ
    assert device_effect(fs, "write") is Effect.WRITE
    assert device_effect(ShellDevice(), "exec") is Effect.EXTERNAL


def test_a_device_that_does_not_say_is_external() -> None:
    from rnix_actors.kernel.devices import Effect, HostDevice, device_effect

    class Bare:
        def handle(self, call: DeviceCall) -> str:
            return ""

    class Lying:
        effect = "read"  # a string, not an Effect: not trusted

        def handle(self, call: DeviceCall) -> str:
            return ""

    assert device_effect(Bare(), "call") is Effect.EXTERNAL
    assert device_effect(Lying(), "call") is Effect.EXTERNAL
    assert device_effect(HostDevice(lambda c: "x"), "call") is Effect.EXTERNAL
    assert device_effect(HostDevice(lambda c: "x", effect=Effect.READ), "call") is Effect.READ
    with pytest.raises(TypeError, match="effect must be an Effect"):
        HostDevice(lambda c: "x", effect="read")  # type: ignore[arg-type]
