"""Private files and dirs: the state dir is 0700 and its files 0600, whatever the umask.

Process history, events (tool arguments and results), daemon logs and shell history can hold
secrets a model saw, so nobody but their owner may read them. Modes are set explicitly with
``chmod`` after creation: a permissive umask (022 is common) does not widen them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

DIR_MODE = 0o700
FILE_MODE = 0o600


class NotPrivate(OSError):
    """A dir that must be ours alone is owned by someone else or open to others."""


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700 dirs; tighten ``path`` itself if it is ours.

    Existing parents are left as they are: only what this call creates, and ``path``, change.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another thread or process made it first; tightened below if ours
        os.chmod(directory, DIR_MODE)
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def owned_private_dir(path: Path) -> Path:
    """Like `private_dir`, then raise `NotPrivate` unless ``path`` is a real dir (not a
    symlink), owned by this user and closed to everyone else (for the daemon's socket)."""
    private_dir(path)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise NotPrivate(f"{path} is not a directory (a symlink?); remove it")
    if info.st_uid != os.getuid():
        raise NotPrivate(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}); "
            "set XDG_RUNTIME_DIR to a dir of your own or use a shorter state dir path"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise NotPrivate(f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):o})")
    return path


def private_open(path: Path, mode: str = "ab") -> IO[Any]:
    """Open ``path`` (created 0600 if missing; tightened to 0600 if ours) in ``mode``.

    ``mode`` is one of ``ab``, ``a``, ``a+``, ``wb``, ``w`` (a private file is only created to
    be written). Symlinks are not followed.
    """
    flags = {"a": os.O_APPEND | os.O_WRONLY, "a+": os.O_APPEND | os.O_RDWR, "w": os.O_WRONLY}
    base = flags[mode.replace("b", "")]
    if mode.startswith("w"):
        base |= os.O_TRUNC
    fd = os.open(path, base | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        tighten(fd)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def private_touch(path: Path) -> Path:
    """Create ``path`` empty (0600) if missing; tighten it to 0600 if it is ours."""
    private_open(path, "ab").close()
    return path


def tighten(fd: int) -> None:
    """Make the open file 0600 when it is ours and wider."""
    info = os.fstat(fd)
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != FILE_MODE:
        os.fchmod(fd, FILE_MODE)


def tighten_path(path: Path) -> None:
    """`tighten` by path; a missing file is fine (SQLite's -wal/-shm come and go)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    ours = stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()
    if ours and stat.S_IMODE(info.st_mode) != FILE_MODE:
        os.chmod(path, FILE_MODE)
