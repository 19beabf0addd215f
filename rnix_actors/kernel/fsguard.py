"""Two fences of ``/dev/fs`` beyond its path checks: protected dirs and hard links.

- **Protected dirs** (the state dir and the project's ``.rnix/``, where templates, config,
  providers and records live) are refused even when they lie inside the work dir, so an agent
  cannot rewrite its own rules or read its records.
- **Hard links**: a hard link is not a symlink, so a path check cannot see that
  ``notes.txt`` is also ``/etc/shadow``. A regular file with more than one link is refused
  unless every one of its links is found inside the work dir (``outside`` mode, the default);
  in ``refuse`` mode every multi-linked file is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from rnix_actors.config import HARDLINK_MODES
from rnix_actors.errors import DeviceError, ErrorCode

__all__ = ["HARDLINK_MODES", "check_links", "protected_refusal", "within"]
# The walk that looks for a file's other links stops here and refuses: a file whose links
# cannot be found cheaply is treated as one that points outside.
MAX_LINK_SCAN = 50_000
MAX_LINK_DEPTH = 128


def within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def protected_refusal(device: str, real: str, shown: str, protected: Iterable[str]) -> None:
    """Raise PERMISSION when ``real`` is inside one of the ``protected`` dirs."""
    if any(within(real, p) for p in protected):
        raise DeviceError(
            ErrorCode.PERMISSION,
            device,
            f"path {shown!r} is in the rnix state and config dir, which agents may neither "
            "read nor change (it holds their templates, config and records); "
            "work on the project's files instead",
        )


def check_links(
    device: str,
    info: os.stat_result,
    shown: str,
    root: str,
    mode: str,
    protected: Iterable[str] = (),
) -> None:
    """Raise PERMISSION for a multi-linked regular file that ``mode`` does not allow."""
    if not stat.S_ISREG(info.st_mode) or info.st_nlink <= 1:
        return
    if mode == "outside" and _links_inside(info, root, tuple(protected)) >= info.st_nlink:
        return
    where = "" if mode == "refuse" else " and not all of them are in the work dir"
    raise DeviceError(
        ErrorCode.PERMISSION,
        device,
        f"{shown} has {info.st_nlink} hard links{where}: it may be a file from outside the "
        "sandbox under another name; copy the file instead of linking it",
    )


def _links_inside(info: os.stat_result, root: str, protected: tuple[str, ...]) -> int:
    """How many directory entries under ``root`` are this inode (0 if the walk is too big).

    By descriptors (`os.fwalk`): a directory swapped for a symlink during the walk is not
    followed, so links outside cannot be counted as inside."""
    found = 0
    seen = 0
    top = root.rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, filenames, dir_fd in os.fwalk(root, follow_symlinks=False):
        if dirnames and dirpath.count(os.sep) - top >= MAX_LINK_DEPTH:
            return 0  # too deep to search (the walk recurses): refused, as too big a walk
        dirnames[:] = [d for d in dirnames if not _is_protected(dirpath, d, protected)]
        for name in filenames:
            seen += 1
            if seen > MAX_LINK_SCAN:
                return 0
            try:
                other = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue
            if other.st_ino == info.st_ino and other.st_dev == info.st_dev:
                found += 1
    return found


def _is_protected(dirpath: str, name: str, protected: tuple[str, ...]) -> bool:
    path = os.path.join(dirpath, name)
    return any(within(path, p) for p in protected)
