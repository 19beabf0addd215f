"""The ``/dev/fs`` device: files in the process's work dir, and nothing outside it.

Every path is relative to ``call.workdir``. Two layers keep an agent inside it:

1. a realpath check refuses absolute paths, ``..`` that climbs out and symlinks (anywhere in
   the path) that resolve outside, with an error telling the agent what to do instead;
2. the checked path is then opened one component at a time from a descriptor of the work dir
   with ``O_NOFOLLOW``, so a symlink swapped in after the check (the agent's own shell may be
   running concurrently) makes the call fail instead of escaping;
3. ``list`` and ``glob`` read directories through descriptors as well
   (`rnix_actors.kernel.fsglob`): a glob through a symlink that leads out matches nothing, the
   same answer as for a missing path, so it cannot tell whether an outside file exists.

A file or directory removed or replaced while a call runs gives the device's typed error (or is
left out of a listing), never a raw ``OSError``.

`rnix_actors.kernel.fsguard` adds two fences: the state and config dirs are refused wherever
they are, and a file with more than one hard link is refused unless all its links are inside
the work dir (a hard link to ``/etc/passwd`` passes every path check).
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from rnix_actors.errors import DeviceError, ErrorCode
from rnix_actors.kernel.devices import DeviceCall, Effect
from rnix_actors.kernel.fsglob import (
    Globber,
    GlobTooDeep,
    open_real,
    scan_names,
    split_pattern,
)
from rnix_actors.kernel.fsguard import HARDLINK_MODES, check_links, protected_refusal

MAX_READ_BYTES = 1024 * 1024
MAX_GLOB_RESULTS = 1000

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_RELATIVE_HINT = "use a path relative to the work dir, without '..' that leaves it"


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class FileSystemDevice:
    """Sandboxed file access: ops ``read``, ``write``, ``list`` and ``glob``.

    Failures are `DeviceError` values: PERMISSION for anything that would leave the work dir
    (or reach a ``protected`` dir, or a file hard-linked from outside: see ``hardlinks`` in
    `rnix_actors.kernel.fsguard`), NOT_FOUND for missing files, INVALID for bad arguments,
    unknown ops and reading a directory. Stateless after construction, hence thread-safe.
    """

    blocking = False  # local file operations: events around them may be batched

    def __init__(
        self, protected: tuple[os.PathLike[str] | str, ...] = (), hardlinks: str = "outside"
    ) -> None:
        if hardlinks not in HARDLINK_MODES:
            raise ValueError(f"hardlinks must be one of {HARDLINK_MODES} (got {hardlinks!r})")
        self.protected = tuple(os.path.realpath(p) for p in protected)
        self.hardlinks = hardlinks

    def effect_of(self, op: str, subpath: str) -> Effect:
        """``write`` changes the work dir; every other op only looks."""
        return Effect.WRITE if op == "write" else Effect.READ

    def handle(self, call: DeviceCall) -> str:
        ops = {"read": self._read, "write": self._write, "list": self._list, "glob": self._glob}
        operation = ops.get(call.op)
        if operation is None:
            raise DeviceError(
                ErrorCode.INVALID, call.device, f"unknown op {call.op!r}; use one of {list(ops)}"
            )
        return operation(call)

    # -- operations -------------------------------------------------------------------------

    def _read(self, call: DeviceCall) -> str:
        root, parts, shown = self._resolve(call, self._path_arg(call, default=None))
        with self._open(call, root, parts, shown, os.O_RDONLY) as fd:
            info = os.fstat(fd)
            _require_regular(call, info, shown)
            check_links(call.device, info, shown, root, self.hardlinks, self.protected)
            data = _read_up_to(fd, MAX_READ_BYTES + 1)
        text = data[:MAX_READ_BYTES].decode("utf-8", errors="replace")
        if len(data) > MAX_READ_BYTES:
            total = max(info.st_size, len(data))
            text += f"\n[truncated: {total} bytes total]"
        return text

    def _write(self, call: DeviceCall) -> str:
        content = call.args.get("content")
        if not isinstance(content, str):
            raise DeviceError(
                ErrorCode.INVALID,
                call.device,
                f"write needs arg 'content' as a string (got {type(content).__name__})",
            )
        root, parts, shown = self._resolve(call, self._path_arg(call, default=None))
        if not parts:
            raise DeviceError(ErrorCode.INVALID, call.device, "cannot write to the work dir itself")
        data = content.encode("utf-8")
        # Truncated only after the checks: a hard link to an outside file must stay intact.
        flags = os.O_WRONLY | os.O_CREAT
        with self._open(call, root, parts, shown, flags, create_parents=True) as fd:
            info = os.fstat(fd)
            _require_regular(call, info, shown)
            check_links(call.device, info, shown, root, self.hardlinks, self.protected)
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        return f"wrote {len(data)} bytes to {shown}"

    def _list(self, call: DeviceCall) -> str:
        root, parts, shown = self._resolve(call, self._path_arg(call, default="."))
        real_dir = os.path.join(root, *parts)
        entries: list[dict[str, Any]] = []
        with self._open(call, root, parts, shown, _DIR_FLAGS) as fd:
            for name in self._scan(fd):
                if self._is_protected(os.path.join(real_dir, name)):
                    continue
                info = _describe(fd, root, real_dir, name)
                if info is None:
                    continue  # removed since the directory was read
                is_dir = stat.S_ISDIR(info.st_mode)
                size = 0 if is_dir else info.st_size
                entries.append({"name": name, "size": size, "is_dir": is_dir})
        entries.sort(key=lambda e: str(e["name"]))
        return json.dumps(entries, ensure_ascii=False)

    def _glob(self, call: DeviceCall) -> str:
        pattern = call.args.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise DeviceError(
                ErrorCode.INVALID, call.device, "glob needs arg 'pattern', e.g. 'src/**/*.py'"
            )
        _require_encodable(call, pattern, "pattern")
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise DeviceError(
                ErrorCode.PERMISSION,
                call.device,
                f"glob pattern {pattern!r} points outside the sandbox; use a pattern relative "
                "to the work dir without '..', e.g. '**/*.py'",
            )
        try:
            parts = split_pattern(pattern)
        except ValueError as exc:
            raise DeviceError(
                ErrorCode.INVALID, call.device, f"bad glob pattern {pattern!r}: {exc}"
            ) from None
        root = self._root(call)
        # Matches through a symlink out of the sandbox are dropped without a word: an answer
        # that differed from the one for a missing path would tell whether outside files exist.
        globber = Globber(root, self._is_protected, call.cancel, self._scan)
        try:
            matches = globber.run(parts)
        except GlobTooDeep as exc:
            raise DeviceError(ErrorCode.INVALID, call.device, f"glob {pattern!r}: {exc}") from None
        except OSError as exc:
            raise self._os_error(call, exc, ".") from None
        return json.dumps(matches[:MAX_GLOB_RESULTS], ensure_ascii=False)

    @staticmethod
    def _scan(fd: int) -> list[str]:
        """The names in an open directory (a method so that a test can act between the
        check of a path and its use)."""
        return scan_names(fd)

    # -- path checks ------------------------------------------------------------------------

    @staticmethod
    def _path_arg(call: DeviceCall, default: str | None) -> str:
        if "path" in call.args:
            path = call.args["path"]
            if not isinstance(path, str) or not path:
                raise DeviceError(
                    ErrorCode.INVALID, call.device, "arg 'path' must be a non-empty string"
                )
            _require_encodable(call, path, "path")
            return path
        if call.subpath.strip("/"):
            # The registry already normalised the device path, so the subpath is "/a/b".
            return call.subpath.lstrip("/")
        if default is None:
            raise DeviceError(
                ErrorCode.INVALID,
                call.device,
                f"{call.op} needs arg 'path' (relative to the work dir, e.g. 'src/a.py')",
            )
        return default

    def _root(self, call: DeviceCall) -> str:
        root = os.path.realpath(call.workdir)
        if not os.path.isdir(root):
            raise DeviceError(
                ErrorCode.NOT_FOUND, call.device, f"the work dir {root} does not exist"
            )
        protected_refusal(call.device, root, "the work dir", self.protected)
        return root

    def _resolve(self, call: DeviceCall, path: str) -> tuple[str, list[str], str]:
        """Check ``path`` against the sandbox; return (root, real components, display path)."""
        if "\0" in path:
            raise DeviceError(ErrorCode.INVALID, call.device, "path contains a NUL byte")
        if os.path.isabs(path):
            raise DeviceError(
                ErrorCode.PERMISSION,
                call.device,
                f"absolute path {path!r} is outside the sandbox; {_RELATIVE_HINT}",
            )
        root = self._root(call)
        lexical = os.path.normpath(os.path.join(root, path))
        if not _within(lexical, root):
            raise DeviceError(
                ErrorCode.PERMISSION,
                call.device,
                f"path {path!r} is outside the sandbox; {_RELATIVE_HINT}",
            )
        real = os.path.realpath(lexical)
        if not _within(real, root):
            raise DeviceError(
                ErrorCode.PERMISSION,
                call.device,
                f"path {path!r} is outside the sandbox (a symlink leads out of the work dir); "
                "use files inside the work dir",
            )
        shown = pathlib.PurePath(os.path.relpath(lexical, root)).as_posix()
        protected_refusal(call.device, real, shown, self.protected)
        protected_refusal(call.device, lexical, shown, self.protected)
        rel = os.path.relpath(real, root)
        parts = [] if rel == "." else rel.split(os.sep)
        return root, parts, shown

    def _is_protected(self, path: str) -> bool:
        return any(_within(path, p) for p in self.protected)

    @contextmanager
    def _open(
        self,
        call: DeviceCall,
        root: str,
        parts: list[str],
        shown: str,
        flags: int,
        create_parents: bool = False,
    ) -> Iterator[int]:
        """Open ``root/parts`` without following any symlink; yield the descriptor."""
        fds: list[int] = []
        try:
            fds.append(os.open(root, _DIR_FLAGS))
            for name in parts[:-1]:
                if create_parents:
                    with suppress(FileExistsError):
                        os.mkdir(name, 0o777, dir_fd=fds[-1])
                fds.append(_open_dir(name, fds[-1]))
            if parts and flags & os.O_DIRECTORY:
                fds.append(_open_dir(parts[-1], fds[-1]))
            elif parts:
                # O_NONBLOCK: opening a FIFO the agent made with mkfifo must not hang the call.
                flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                fds.append(os.open(parts[-1], flags, 0o666, dir_fd=fds[-1]))
            yield fds[-1]
        except OSError as exc:
            raise self._os_error(call, exc, shown) from None
        finally:
            for fd in reversed(fds):
                os.close(fd)

    @staticmethod
    def _os_error(call: DeviceCall, exc: OSError, shown: str) -> DeviceError:
        if exc.errno == errno.ENOENT:
            return DeviceError(
                ErrorCode.NOT_FOUND,
                call.device,
                f"no such file or directory: {shown}; use op 'list' or 'glob' to see what exists",
            )
        if exc.errno == errno.ELOOP:
            # Only reachable when a symlink appeared after the realpath check.
            return DeviceError(
                ErrorCode.PERMISSION,
                call.device,
                f"path {shown!r} is outside the sandbox (it changed into a symlink); "
                "use files inside the work dir",
            )
        if exc.errno == errno.ENXIO:
            return DeviceError(
                ErrorCode.INVALID, call.device, f"{shown} is not a regular file; give a file path"
            )
        if exc.errno == errno.EISDIR:
            return DeviceError(
                ErrorCode.INVALID, call.device, f"{shown} is a directory; give a file path"
            )
        if exc.errno == errno.ENOTDIR:
            return DeviceError(
                ErrorCode.INVALID,
                call.device,
                f"{shown} is not a directory or is below a file; use op 'read' for files",
            )
        if exc.errno in (errno.EACCES, errno.EPERM):
            return DeviceError(ErrorCode.PERMISSION, call.device, f"{shown}: {exc.strerror}")
        return DeviceError(ErrorCode.INTERNAL, call.device, f"{shown}: {exc.strerror}")


def _require_regular(call: DeviceCall, info: os.stat_result, shown: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise DeviceError(ErrorCode.INVALID, call.device, f"{shown} is a directory; use op 'list'")
    if not stat.S_ISREG(info.st_mode):
        raise DeviceError(
            ErrorCode.INVALID, call.device, f"{shown} is not a regular file; give a file path"
        )


def _require_encodable(call: DeviceCall, text: str, arg: str) -> None:
    """A lone surrogate cannot name a file: refuse it here rather than fail in the OS call."""
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        raise DeviceError(
            ErrorCode.INVALID, call.device, f"arg {arg!r} is not valid text; give a UTF-8 path"
        ) from None


def _describe(fd: int, root: str, real_dir: str, name: str) -> os.stat_result | None:
    """The entry ``name`` of the directory open at ``fd``, for ``list``: a symlink is
    described by its target only when that target is inside the sandbox (stat-ing an
    outside one would leak facts about it), reached without following any link."""
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISLNK(info.st_mode):
        return info
    target = os.path.realpath(os.path.join(real_dir, name))
    if target == root or not _within(target, root):
        return info
    try:
        root_fd = os.open(root, _DIR_FLAGS)
    except OSError:
        return info
    try:
        parent = open_real(root_fd, root, os.path.dirname(target))
        try:
            found = os.stat(os.path.basename(target), dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)
    except OSError:  # gone, or a link swapped in on the way: describe the link itself
        return info
    finally:
        os.close(root_fd)
    return info if stat.S_ISLNK(found.st_mode) else found


def _open_dir(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:
        # O_NOFOLLOW|O_DIRECTORY reports a symlink as ENOTDIR; report it as the escape it is.
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name) from None
        raise


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
