"""Globbing for ``/dev/fs`` by directory descriptors, so that nothing outside the work dir is
ever looked at.

A pattern is matched one component at a time, from a descriptor of the work dir, opening
each directory with ``O_NOFOLLOW``:

- ``**`` matches zero or more directories and never descends into a symlink (as `pathlib`);
- a symlinked directory named by another component is entered only when it resolves inside
  the work dir, and then through the real directories (each opened without following links),
  so a link swapped in during the walk cannot lead out;
- a link that resolves outside is dropped, and so is everything below it: a pattern through
  such a link gives the same answer as a pattern naming a missing path, so an agent cannot
  learn whether an outside file exists;
- a directory removed or replaced while the walk runs is skipped, never an error.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable

from rnix_actors.kernel.cancel import CancelToken
from rnix_actors.kernel.fsguard import within

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CANCEL_EVERY = 256
# Each level holds a descriptor and a few stack frames: a tree an agent made 10,000 levels
# deep must give an error, not a RecursionError.
MAX_DEPTH = 128


class GlobTooDeep(ValueError):
    """The walk would pass `MAX_DEPTH` directories below the work dir."""


Scan = Callable[[int], list[str]]  # the entry names of an open directory


def scan_names(fd: int) -> list[str]:
    """The names in the directory open at ``fd`` (the descriptor stays open)."""
    with os.scandir(fd) as entries:
        return [entry.name for entry in entries]


def split_pattern(pattern: str) -> list[str]:
    """The pattern's components; `ValueError` for a ``**`` that is not a whole component."""
    if "\0" in pattern:
        raise ValueError("the pattern contains a NUL byte")
    parts = [part for part in pattern.split("/") if part not in ("", ".")]
    if not parts:
        raise ValueError("the pattern names no file")
    for part in parts:
        if "**" in part and part != "**":
            raise ValueError(f"'**' can only be an entire path component (got {part!r})")
    # '**/**' matches what '**' does; walking it twice would only cost time.
    return [p for i, p in enumerate(parts) if not (p == "**" and parts[i - 1 : i] == ["**"])]


def open_real(root_fd: int, root: str, real: str) -> int:
    """Open the directory ``real`` (inside ``root``) from ``root_fd``, following no link."""
    rel = os.path.relpath(real, root)
    fd = os.dup(root_fd)
    for name in [] if rel == "." else rel.split(os.sep):
        try:
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


class Globber:
    """One glob over the work dir ``root``; `run` returns the matches relative to it.

    ``hidden(path)`` is true for paths that may not be shown (the state and config dirs);
    ``scan`` lists an open directory.
    """

    def __init__(
        self, root: str, hidden: Callable[[str], bool], cancel: CancelToken, scan: Scan
    ) -> None:
        self.root = root
        self.hidden = hidden
        self.cancel = cancel
        self.scan = scan
        self.found: set[str] = set()
        self._seen = 0
        self._root_fd = -1

    def run(self, parts: list[str]) -> list[str]:
        """Match ``parts`` (from `split_pattern`); raises OSError only if the root cannot be
        opened."""
        self._root_fd = os.open(self.root, DIR_FLAGS)
        try:
            self._walk(self._root_fd, self.root, (), parts)
        finally:
            os.close(self._root_fd)
        return sorted(self.found)

    def _walk(self, fd: int, real_dir: str, shown: tuple[str, ...], parts: list[str]) -> None:
        head, rest = parts[0], parts[1:]
        if head == "**":
            if rest:
                self._walk(fd, real_dir, shown, rest)
            elif shown:
                self.found.add("/".join(shown))  # a trailing '**' matches directories
            for name in self._names(fd):
                if self._kind(fd, name) == "dir":
                    self._descend(fd, real_dir, shown, name, parts, follow=False)
            return
        if not any(c in head for c in "*?["):
            names = [head]  # no wildcard: look the one name up, do not list the dir
        else:
            names = [n for n in self._names(fd) if fnmatch.fnmatchcase(n, head)]
        for name in names:
            kind = self._kind(fd, name)
            if kind is None:
                continue
            if rest:
                if kind != "file":
                    self._descend(fd, real_dir, shown, name, rest, follow=True)
            else:
                self._report(real_dir, shown, name, kind)

    def _names(self, fd: int) -> list[str]:
        try:
            names = self.scan(fd)
        except OSError:  # removed or replaced while we walked
            return []
        self._seen += len(names)
        if self._seen >= _CANCEL_EVERY:
            self._seen = 0
            self.cancel.raise_if_cancelled()
        return names

    @staticmethod
    def _kind(fd: int, name: str) -> str | None:
        """``dir``, ``link`` or ``file`` (anything else); None when the name is gone."""
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return "link"
        return "dir" if stat.S_ISDIR(mode) else "file"

    def _inside(self, real: str, shown: tuple[str, ...]) -> bool:
        """``real`` lies in the work dir and neither it nor the shown path is hidden."""
        logical = os.path.join(self.root, *shown)
        return within(real, self.root) and not self.hidden(real) and not self.hidden(logical)

    def _report(self, real_dir: str, shown: tuple[str, ...], name: str, kind: str) -> None:
        real = os.path.join(real_dir, name)
        if kind == "link":
            real = os.path.realpath(real)
        if self._inside(real, (*shown, name)):
            self.found.add("/".join((*shown, name)))

    def _descend(
        self,
        fd: int,
        real_dir: str,
        shown: tuple[str, ...],
        name: str,
        parts: list[str],
        follow: bool,
    ) -> None:
        """Walk ``parts`` in the directory ``name``; a symlink is entered only if ``follow``
        (a component that names it, not a '**') and only when it resolves inside."""
        if len(shown) >= MAX_DEPTH:
            raise GlobTooDeep(
                f"the tree is deeper than {MAX_DEPTH} directories; glob a sub dir instead"
            )
        real = os.path.join(real_dir, name)
        try:
            if follow and self._kind(fd, name) == "link":
                real = os.path.realpath(real)
                if not self._inside(real, (*shown, name)):
                    return  # through a link out of the sandbox: as if nothing were there
                child = open_real(self._root_fd, self.root, real)
            else:
                if not self._inside(real, (*shown, name)):
                    return
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
        except OSError:  # gone, not a directory, or turned into a symlink since the scan
            return
        try:
            self._walk(child, real, (*shown, name), parts)
        finally:
            os.close(child)
