"""/dev/fs under attack by a concurrent writer (the agent's own shell, say): files removed or
swapped for symlinks between the path check and the open, directories replaced during a
listing or a glob, and globs through symlinks that point out of the sandbox.

Races are driven deterministically: a device subclass runs the attacker's move at the exact
point between the check and the use (real files, no sleeps)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall
from rnix_actors.kernel.fs import FileSystemDevice

Move = Callable[[], None]


class Racing(FileSystemDevice):
    """Runs ``before_open`` once after the path check, and ``after_scan`` once after a
    directory's names were read (before they are looked at)."""

    def __init__(self, before_open: Move | None = None, after_scan: Move | None = None) -> None:
        super().__init__()
        self.before_open = before_open
        self.after_scan = after_scan

    def _open(self, *args: Any, **kwargs: Any) -> AbstractContextManager[int]:
        move, self.before_open = self.before_open, None
        if move is not None:
            move()
        return super()._open(*args, **kwargs)

    def _scan(self, fd: int) -> list[str]:
        names = super()._scan(fd)
        move, self.after_scan = self.after_scan, None
        if move is not None:
            move()
        return names


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A work dir with a file and a sub dir; beside it an outside dir with a secret."""
    work = tmp_path / "work"
    outside = tmp_path / "outside"
    (work / "sub").mkdir(parents=True)
    outside.mkdir()
    (work / "notes.txt").write_text("mine")
    (work / "sub" / "a.txt").write_text("inside a")
    (outside / "notes.txt").write_text("TOP SECRET")
    (outside / "a.txt").write_text("TOP SECRET " * 1000)
    yield work


def run(device: FileSystemDevice, work: Path, op: str, **args: Any) -> str:
    return device.handle(DeviceCall(7, "/dev/fs", "", op, args, work))


def typed(device: FileSystemDevice, work: Path, op: str, **args: Any) -> DeviceError:
    """The call fails with the device's own error (never an OSError) that leaks nothing."""
    with pytest.raises(DeviceError) as info:
        run(device, work, op, **args)
    assert "SECRET" not in info.value.message
    return info.value


def swap_for_link(path: Path, target: Path) -> Move:
    def move() -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        path.symlink_to(target)

    return move


# -- between the check and the open -------------------------------------------------------------


def test_a_file_removed_after_the_check_is_not_found(work: Path) -> None:
    device = Racing(before_open=(work / "notes.txt").unlink)
    assert typed(device, work, "read", path="notes.txt").code == ErrorCode.NOT_FOUND


def test_a_file_swapped_for_an_outside_symlink_is_not_followed(work: Path) -> None:
    outside = work.parent / "outside"
    device = Racing(before_open=swap_for_link(work / "notes.txt", outside / "notes.txt"))
    assert typed(device, work, "read", path="notes.txt").code == ErrorCode.PERMISSION
    device = Racing(before_open=swap_for_link(work / "notes.txt", outside / "notes.txt"))
    (work / "notes.txt").unlink()
    (work / "notes.txt").write_text("mine again")
    assert typed(device, work, "write", path="notes.txt", content="x").code == ErrorCode.PERMISSION
    assert (outside / "notes.txt").read_text() == "TOP SECRET"  # not truncated, not written


def test_a_dir_turned_into_an_outside_symlink_is_not_followed(work: Path) -> None:
    outside = work.parent / "outside"
    device = Racing(before_open=swap_for_link(work / "sub", outside))
    assert typed(device, work, "read", path="sub/a.txt").code == ErrorCode.PERMISSION
    (work / "sub").unlink()
    (work / "sub").mkdir()
    device = Racing(before_open=swap_for_link(work / "sub", outside))
    error = typed(device, work, "write", path="sub/new.txt", content="x")
    assert error.code == ErrorCode.PERMISSION
    assert not (outside / "new.txt").exists()
    (work / "sub").unlink()
    (work / "sub").mkdir()
    device = Racing(before_open=swap_for_link(work / "sub", outside))
    assert typed(device, work, "list", path="sub").code == ErrorCode.PERMISSION


def test_a_file_turned_into_a_dir_or_a_parent_into_a_file_is_invalid(work: Path) -> None:
    def to_dir() -> None:
        (work / "notes.txt").unlink()
        (work / "notes.txt").mkdir()

    device = Racing(before_open=to_dir)
    assert typed(device, work, "write", path="notes.txt", content="x").code == ErrorCode.INVALID

    def sub_to_file() -> None:
        shutil.rmtree(work / "sub")
        (work / "sub").write_text("now a file")

    device = Racing(before_open=sub_to_file)
    assert typed(device, work, "read", path="sub/a.txt").code == ErrorCode.INVALID


# -- while a directory is being read -------------------------------------------------------------


def test_an_entry_removed_during_a_listing_is_left_out(work: Path) -> None:
    (work / "sub" / "b.txt").write_text("b")
    device = Racing(after_scan=(work / "sub" / "a.txt").unlink)
    listed = json.loads(run(device, work, "list", path="sub"))
    assert listed == [{"name": "b.txt", "size": 1, "is_dir": False}]


def test_a_listed_symlink_is_not_described_through_a_swapped_in_link(work: Path) -> None:
    (work / "alias").symlink_to(work / "sub" / "a.txt")
    assert {"name": "alias", "size": 8, "is_dir": False} in json.loads(
        run(FileSystemDevice(), work, "list")
    )
    device = Racing(after_scan=swap_for_link(work / "sub", work.parent / "outside"))
    listed = {e["name"]: e for e in json.loads(run(device, work, "list"))}
    # The outside a.txt is 11,000 bytes; the alias is now described as the link it is.
    assert listed["alias"]["size"] == len(os.readlink(work / "alias"))


def test_a_dir_removed_or_swapped_during_a_glob_is_skipped(work: Path) -> None:
    (work / "sub" / "deep").mkdir()
    (work / "sub" / "deep" / "c.txt").write_text("c")
    device = Racing(after_scan=lambda: shutil.rmtree(work / "sub"))
    assert json.loads(run(device, work, "glob", pattern="**/*.txt")) == ["notes.txt"]
    (work / "sub").mkdir()
    (work / "sub" / "a.txt").write_text("inside a")
    device = Racing(after_scan=swap_for_link(work / "sub", work.parent / "outside"))
    assert json.loads(run(device, work, "glob", pattern="*/*.txt")) == []
    (work / "sub").unlink()
    (work / "sub").mkdir()
    device = Racing(after_scan=swap_for_link(work / "sub", work.parent / "outside"))
    assert json.loads(run(device, work, "glob", pattern="sub/*")) == []


def test_a_path_that_is_not_text_is_invalid(work: Path) -> None:
    device = FileSystemDevice()
    for op, args in (("read", {"path": "a\ud800"}), ("glob", {"pattern": "*\ud800"})):
        assert typed(device, work, op, **args).code == ErrorCode.INVALID


# -- globs through symlinks ----------------------------------------------------------------------


def test_a_glob_through_an_outside_symlink_tells_nothing_about_what_is_there(work: Path) -> None:
    outside = work.parent / "outside"
    (work / "out").symlink_to(outside)
    (work / "gone").symlink_to(outside / "no-such-dir")
    (work / "key").symlink_to(outside / "notes.txt")
    (work / "nokey").symlink_to(outside / "no-such-file")
    device = FileSystemDevice()
    missing = json.loads(run(device, work, "glob", pattern="nothing/notes.txt"))
    for pattern in (
        "out/notes.txt",
        "out/no-such-file",
        "gone/notes.txt",
        "out/*",
        "out/*.txt",
        "out/n*",
        "out/**/*",
        "gone/*",
        "key",
        "nokey",
        "*key",
    ):
        assert json.loads(run(device, work, "glob", pattern=pattern)) == missing == [], pattern


def test_a_glob_through_a_symlink_inside_the_sandbox_still_matches(work: Path) -> None:
    (work / "alias").symlink_to(work / "sub")
    (work / "alias.txt").symlink_to(work / "notes.txt")
    device = FileSystemDevice()
    assert json.loads(run(device, work, "glob", pattern="alias/*.txt")) == ["alias/a.txt"]
    assert json.loads(run(device, work, "glob", pattern="alias/**/*.txt")) == ["alias/a.txt"]
    assert json.loads(run(device, work, "glob", pattern="*.txt")) == ["alias.txt", "notes.txt"]
    # '**' itself never descends into a symlink (no loops, no double counting).
    assert json.loads(run(device, work, "glob", pattern="**/a.txt")) == ["sub/a.txt"]


def test_a_nul_in_a_pattern_or_a_tree_too_deep_is_invalid(work: Path) -> None:
    device = FileSystemDevice()
    for pattern in ("a\0b", "*/\0"):
        assert typed(device, work, "glob", pattern=pattern).code == ErrorCode.INVALID
    deep = work.joinpath(*["d"] * 150)
    deep.mkdir(parents=True)
    (deep / "x.txt").write_text("far down")
    error = typed(device, work, "glob", pattern="**/x.txt")
    assert error.code == ErrorCode.INVALID and "deeper than" in error.message
    assert json.loads(run(device, work, "glob", pattern="d/d/*")) == ["d/d/d"]


def test_a_hard_link_check_in_a_tree_too_deep_to_search_refuses(work: Path) -> None:
    (work / "a.txt").write_text("inside")
    deep = work.joinpath(*["d"] * 200)
    deep.mkdir(parents=True)
    os.link(work / "a.txt", deep / "b.txt")  # both links inside, but too deep to find
    error = typed(FileSystemDevice(), work, "read", path="a.txt")
    assert error.code == ErrorCode.PERMISSION and "2 hard links" in error.message
