"""Tests of the /dev/fs device, above all its sandbox (real files under tmp_path)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall
from rnix_actors.kernel.fs import MAX_GLOB_RESULTS, MAX_READ_BYTES, FileSystemDevice


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """A work dir and, beside it, an outside dir holding a secret."""
    work = tmp_path / "work"
    outside = tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    return work, outside


def call(workdir: Path, op: str, subpath: str = "", **args: Any) -> str:
    dc = DeviceCall(pid=7, device="/dev/fs", subpath=subpath, op=op, args=args, workdir=workdir)
    return FileSystemDevice().handle(dc)


def error(workdir: Path, op: str, subpath: str = "", **args: Any) -> DeviceError:
    with pytest.raises(DeviceError) as info:
        call(workdir, op, subpath, **args)
    assert info.value.path == "/dev/fs"
    return info.value


# -- ordinary operations ------------------------------------------------------------------------


def test_write_creates_parents_and_read_returns_text(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    assert call(work, "write", path="src/a.py", content="print('hé')\n") == (
        "wrote 13 bytes to src/a.py"
    )
    assert (work / "src" / "a.py").read_text(encoding="utf-8") == "print('hé')\n"
    assert call(work, "read", path="src/a.py") == "print('hé')\n"


def test_subpath_names_the_file_when_no_path_arg(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    call(work, "write", subpath="/src/b.txt", content="hello")
    assert call(work, "read", subpath="/src/b.txt") == "hello"
    # args["path"] wins over the subpath.
    (work / "other.txt").write_text("other")
    assert call(work, "read", subpath="/src/b.txt", path="other.txt") == "other"


def test_write_overwrites_existing_file(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    (work / "a.txt").write_text("a much longer original text")
    call(work, "write", path="a.txt", content="short")
    assert (work / "a.txt").read_text() == "short"


def test_read_decodes_invalid_utf8_with_replacement(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    (work / "bin.dat").write_bytes(b"ok \xff\xfe end")
    assert call(work, "read", path="bin.dat") == "ok \ufffd\ufffd end"


def test_read_truncates_large_files(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    size = MAX_READ_BYTES + 500
    (work / "big.txt").write_bytes(b"x" * size)
    text = call(work, "read", path="big.txt")
    body, marker = text.rsplit("\n", 1)
    assert body == "x" * MAX_READ_BYTES
    assert marker == f"[truncated: {size} bytes total]"


def test_read_of_exactly_the_limit_is_not_truncated(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    (work / "edge.txt").write_bytes(b"y" * MAX_READ_BYTES)
    assert call(work, "read", path="edge.txt") == "y" * MAX_READ_BYTES


def test_list_returns_sorted_entries(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    (work / "b.txt").write_text("12345")
    (work / "a_dir").mkdir()
    (work / "a_dir" / "inner.txt").write_text("x")
    entries = json.loads(call(work, "list"))
    assert entries == [
        {"name": "a_dir", "size": 0, "is_dir": True},
        {"name": "b.txt", "size": 5, "is_dir": False},
    ]
    assert json.loads(call(work, "list", path="a_dir")) == [
        {"name": "inner.txt", "size": 1, "is_dir": False}
    ]


def test_list_does_not_stat_symlink_targets_outside(sandbox: tuple[Path, Path]) -> None:
    work, outside = sandbox
    (work / "inside.txt").write_text("abc")
    (work / "good_link").symlink_to("inside.txt")
    (work / "bad_link").symlink_to(outside / "secret.txt")
    entries = {e["name"]: e for e in json.loads(call(work, "list"))}
    assert entries["good_link"]["size"] == 3
    assert entries["bad_link"]["size"] != len("TOP SECRET")


def test_glob_returns_sorted_relative_posix_paths(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    for rel in ("src/b.py", "src/a.py", "src/pkg/c.py", "README.md"):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text("")
    assert json.loads(call(work, "glob", pattern="**/*.py")) == [
        "src/a.py",
        "src/b.py",
        "src/pkg/c.py",
    ]
    assert json.loads(call(work, "glob", pattern="*.md")) == ["README.md"]
    assert json.loads(call(work, "glob", pattern="nothing/*")) == []


def test_glob_caps_the_number_of_results(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    for i in range(MAX_GLOB_RESULTS + 5):
        (work / f"f{i:05d}.txt").write_text("")
    result = json.loads(call(work, "glob", pattern="*.txt"))
    assert len(result) == MAX_GLOB_RESULTS
    assert result == sorted(result)
    assert result[0] == "f00000.txt"


def test_symlink_inside_the_sandbox_is_allowed(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    (work / "real").mkdir()
    (work / "real" / "f.txt").write_text("inside")
    (work / "alias").symlink_to("real")
    assert call(work, "read", path="alias/f.txt") == "inside"
    call(work, "write", path="alias/g.txt", content="via alias")
    assert (work / "real" / "g.txt").read_text() == "via alias"


def test_dotdot_that_stays_inside_is_allowed(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    (work / "sub").mkdir()
    (work / "top.txt").write_text("top")
    assert call(work, "read", path="sub/../top.txt") == "top"


# -- sandbox escapes ----------------------------------------------------------------------------


def test_absolute_path_is_refused(sandbox: tuple[Path, Path]) -> None:
    work, outside = sandbox
    err = error(work, "read", path=str(outside / "secret.txt"))
    assert err.code == ErrorCode.PERMISSION
    assert "outside the sandbox" in err.message
    assert "relative to the work dir" in err.message
    # Even an absolute path that points inside the work dir is refused.
    (work / "in.txt").write_text("x")
    assert error(work, "read", path=str(work / "in.txt")).code == ErrorCode.PERMISSION


def test_dotdot_escape_is_refused(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    for path in ("../outside/secret.txt", "sub/../../outside/secret.txt", ".."):
        assert error(work, "read", path=path).code == ErrorCode.PERMISSION
    err = error(work, "write", path="../outside/new.txt", content="x")
    assert err.code == ErrorCode.PERMISSION
    assert not (work.parent / "outside" / "new.txt").exists()
    assert error(work, "list", path="..").code == ErrorCode.PERMISSION


def test_symlinked_dir_escape_is_refused(sandbox: tuple[Path, Path]) -> None:
    work, outside = sandbox
    (work / "link").symlink_to(outside)
    assert error(work, "read", path="link/secret.txt").code == ErrorCode.PERMISSION
    assert error(work, "list", path="link").code == ErrorCode.PERMISSION
    assert error(work, "write", path="link/new.txt", content="x").code == ErrorCode.PERMISSION
    assert error(work, "write", path="link/deep/new.txt", content="x").code == (
        ErrorCode.PERMISSION
    )
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_symlinked_file_escape_is_refused_for_read_and_write(sandbox: tuple[Path, Path]) -> None:
    work, outside = sandbox
    (work / "secret_link").symlink_to(outside / "secret.txt")
    assert error(work, "read", path="secret_link").code == ErrorCode.PERMISSION
    err = error(work, "write", path="secret_link", content="overwritten")
    assert err.code == ErrorCode.PERMISSION
    assert (outside / "secret.txt").read_text() == "TOP SECRET"


def test_dangling_symlink_pointing_outside_cannot_create_a_file(
    sandbox: tuple[Path, Path],
) -> None:
    work, outside = sandbox
    (work / "dangling").symlink_to(outside / "created.txt")
    assert error(work, "write", path="dangling", content="x").code == ErrorCode.PERMISSION
    assert not (outside / "created.txt").exists()


def test_subpath_cannot_escape(sandbox: tuple[Path, Path]) -> None:
    work, outside = sandbox
    (work / "link").symlink_to(outside)
    assert error(work, "read", subpath="/link/secret.txt").code == ErrorCode.PERMISSION


def test_workdir_reached_through_a_symlink_still_works(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    alias = work.parent / "work_alias"
    alias.symlink_to(work)
    call(alias, "write", path="a.txt", content="hi")
    assert call(alias, "read", path="a.txt") == "hi"
    assert error(alias, "read", path="../outside/secret.txt").code == ErrorCode.PERMISSION


def test_glob_pattern_absolute_or_with_dotdot_is_refused(sandbox: tuple[Path, Path]) -> None:
    work, outside = sandbox
    for pattern in (str(outside / "*"), "../outside/*", "src/../../*", "/etc/*"):
        assert error(work, "glob", pattern=pattern).code == ErrorCode.PERMISSION


def test_glob_through_symlinked_dir_does_not_escape(sandbox: tuple[Path, Path]) -> None:
    work, outside = sandbox
    (work / "link").symlink_to(outside)
    (work / "mine.txt").write_text("")
    (work / "sub").mkdir()
    (work / "sub" / "x.txt").write_text("")
    # The same answer as for a missing dir: nothing tells whether the outside exists.
    assert json.loads(call(work, "glob", pattern="link/*")) == []
    # Mixed results keep the inside matches and never show what lies outside.
    assert json.loads(call(work, "glob", pattern="*/*")) == ["sub/x.txt"]
    everything = json.loads(call(work, "glob", pattern="**/*"))
    assert "mine.txt" in everything
    assert all("secret" not in path for path in everything)
    assert "link" not in everything


# -- argument errors ----------------------------------------------------------------------------


def test_missing_file_is_not_found(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    err = error(work, "read", path="nope.txt")
    assert err.code == ErrorCode.NOT_FOUND
    assert "nope.txt" in err.message
    assert error(work, "list", path="nodir").code == ErrorCode.NOT_FOUND


def test_reading_a_directory_is_invalid(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    (work / "d").mkdir()
    err = error(work, "read", path="d")
    assert err.code == ErrorCode.INVALID
    assert "list" in err.message


@pytest.mark.parametrize(
    ("op", "args"),
    [
        ("write", {"path": "a.txt", "content": b"bytes"}),
        ("write", {"path": "a.txt"}),
        ("write", {"content": "no path"}),
        ("write", {"path": "d", "content": "d is a directory"}),
        ("read", {}),
        ("read", {"path": 3}),
        ("glob", {}),
        ("glob", {"pattern": "**.py"}),
        ("delete", {"path": "a.txt"}),
    ],
)
def test_bad_arguments_are_invalid(
    sandbox: tuple[Path, Path], op: str, args: dict[str, Any]
) -> None:
    work, _ = sandbox
    (work / "d").mkdir()
    assert error(work, op, **args).code == ErrorCode.INVALID


# -- the descriptor walk behind the realpath check ----------------------------------------------


def test_open_refuses_symlinks_that_appear_after_the_check(sandbox: tuple[Path, Path]) -> None:
    """Simulates a race: the checked components are swapped for symlinks before opening."""
    work, outside = sandbox
    (work / "link").symlink_to(outside)
    (work / "secret_link").symlink_to(outside / "secret.txt")
    device = FileSystemDevice()
    dc = DeviceCall(pid=1, device="/dev/fs", subpath="", op="read", args={}, workdir=work)
    root = os.path.realpath(work)
    for parts in (["link", "secret.txt"], ["secret_link"]):
        with (
            pytest.raises(DeviceError) as info,
            device._open(dc, root, parts, "/".join(parts), os.O_RDONLY),
        ):
            pass
        assert info.value.code == ErrorCode.PERMISSION
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with (
        pytest.raises(DeviceError) as info,
        device._open(dc, root, ["secret_link"], "secret_link", flags),
    ):
        pass
    assert info.value.code == ErrorCode.PERMISSION
    assert (outside / "secret.txt").read_text() == "TOP SECRET"


def test_list_on_a_file_is_invalid(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    (work / "f.txt").write_text("x")
    err = error(work, "list", path="f.txt")
    assert err.code == ErrorCode.INVALID
    assert "read" in err.message


def test_fifo_is_refused_instead_of_hanging(sandbox: tuple[Path, Path]) -> None:
    work, _ = sandbox
    os.mkfifo(work / "pipe")
    assert error(work, "read", path="pipe").code == ErrorCode.INVALID
    assert error(work, "write", path="pipe", content="x").code == ErrorCode.INVALID
