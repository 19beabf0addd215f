"""A memory-mapped journal in front of the checkpoint table: a step's checkpoint is durable
against a kill of the process once it is copied into the journal, without a SQLite commit.

A system appends each checkpoint as one framed record (length, CRC-32, epoch) into one of
two segment files mapped into memory (``<state>/journal/<name>.{0,1}.jnl``). Copying into a
shared file mapping hands the bytes to the operating system's page cache: a kill -9 of the
process right after loses nothing, exactly as a SQLite commit in WAL mode with
``synchronous=NORMAL`` (which does not fsync either). The copy holds the GIL and takes no
lock another thread sleeps on, so a process pays a couple of microseconds, not a commit.

One writer thread folds the journal into the checkpoint table in one transaction per batch:
it swaps the segments (appends go on into the other one), commits the records of the full one
with ``INSERT OR REPLACE`` and then starts it afresh under a new epoch, which voids its old
records. A system that starts with the state dir to itself replays the records of the
journals a dead system left (`replay`) before it recovers that system's processes: records
already in the table are written again unchanged, a torn record at the end of a segment (a
kill in the middle of a copy) fails its CRC and is ignored, as is everything after it.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import sqlite3
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rnix_actors.privatefs import private_dir

log = logging.getLogger(__name__)

MAGIC = b"RNXJ"
VERSION = 1
SEGMENT_BYTES = 4 << 20
FOLD_INTERVAL = 0.02  # seconds the writer waits for more records after the first
_HEADER = struct.Struct("<4sIQ")  # magic, version, epoch
_FRAME = struct.Struct("<IIQ")  # payload length, CRC-32 of the payload, epoch
_FIELDS = struct.Struct("<qqqqqdB")  # pid, seq, step, first, messages, created_at, len(kind)

# pid, seq, step, kind, created_at, first, messages, data: one row of the table, without the
# format and size columns (added by `table_row`).
Row = tuple[int, int, int, str, float, int, int, str]
Commit = Callable[[Sequence[Row]], None]  # writes rows in one transaction; raises on error


def encode(row: Row) -> bytes:
    pid, seq, step, kind, created_at, first, messages, data = row
    name = kind.encode()
    return (
        _FIELDS.pack(pid, seq, step, first, messages, created_at, len(name))
        + name
        + (data.encode())
    )


def decode(payload: bytes) -> Row:
    pid, seq, step, first, messages, created_at, size = _FIELDS.unpack_from(payload)
    start = _FIELDS.size
    kind = payload[start : start + size].decode()
    data = payload[start + size :].decode()
    return (pid, seq, step, kind, created_at, first, messages, data)


class _Segment:
    """One mapped segment file: a header, then frames up to the first void one."""

    def __init__(self, path: Path, size: int, epoch: int) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            self.map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.size = size
        self.rows: list[Row] = []
        self.reset(epoch)

    def reset(self, epoch: int) -> None:
        """Start afresh: a new epoch voids every record written before it."""
        self.epoch = epoch
        self.map[: _HEADER.size] = _HEADER.pack(MAGIC, VERSION, epoch)
        self.offset = _HEADER.size
        self.rows = []

    def append(self, payload: bytes, crc: int, row: Row) -> bool:
        end = self.offset + _FRAME.size + len(payload)
        if end > self.size:
            return False
        self.map[self.offset : end] = _FRAME.pack(len(payload), crc, self.epoch) + payload
        self.offset = end
        self.rows.append(row)
        return True


class Journal:
    """The journal of one system (see the module doc); `append` is thread-safe."""

    def __init__(
        self,
        directory: Path,
        commit: Commit,
        segment_bytes: int = SEGMENT_BYTES,
        writer: bool = True,
    ) -> None:
        """``writer`` false: no writer thread, the owner calls `fold` itself."""
        private_dir(directory)
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._commit = commit
        self._segments = [
            _Segment(directory / f"{name}.{i}.jnl", segment_bytes, i + 1) for i in (0, 1)
        ]
        self._epoch = 2
        self._active = 0
        self._lock = threading.Lock()  # the active segment: appends and the swap
        self._fold_lock = threading.Lock()  # one fold at a time
        self._wake = threading.Event()
        self._closing = threading.Event()
        self.broken = ""  # why folding stopped (appends are refused from then on)
        self._thread: threading.Thread | None = None
        if writer:
            self._thread = threading.Thread(target=self._loop, name="rnix-checkpoints", daemon=True)
            self._thread.start()

    def append(self, row: Row) -> bool:
        """Copy ``row`` into the journal; False when it does not fit or the journal is
        broken or closed (the caller commits it to the table itself)."""
        payload = encode(row)
        crc = zlib.crc32(payload)
        with self._lock:
            if self.broken or self._closing.is_set():
                return False
            ok = self._segments[self._active].append(payload, crc, row)
        if not self._wake.is_set():
            self._wake.set()
        return ok

    def fold(self) -> None:
        """Commit everything appended so far to the table (the writer does it every few
        milliseconds; readers of the table call it first)."""
        with self._fold_lock:
            with self._lock:
                full = self._segments[self._active]
                if not full.rows or self.broken:
                    return
                self._active ^= 1
            try:
                self._commit(full.rows)
            except sqlite3.Error as exc:
                # The records stay in the segment file: the next start replays them.
                with self._lock:
                    self.broken = f"{type(exc).__name__}: {exc}"
                log.error("checkpoint journal: folding into the store failed: %s", self.broken)
                return
            self._epoch += 1
            full.reset(self._epoch)

    def close(self, timeout: float = 10.0) -> None:
        """Fold what is left, stop the writer, remove the segment files (kept if the last
        fold failed: the next start replays them)."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._fold_all()  # waits for a fold in progress (the fold lock)
        for segment in self._segments:
            with contextlib.suppress(ValueError, BufferError):
                segment.map.close()
            if not self.broken:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()

    def _fold_all(self) -> None:
        for _ in self._segments:
            self.fold()

    def _loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait()
            self._closing.wait(FOLD_INTERVAL)  # let a batch gather
            self._wake.clear()
            self._fold_all()


def scan(path: Path) -> list[Row]:
    """The records of one segment file, up to its first void or torn frame."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        return []
    magic, version, epoch = _HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        return []
    rows: list[Row] = []
    offset = _HEADER.size
    while offset + _FRAME.size <= len(data):
        length, crc, frame_epoch = _FRAME.unpack_from(data, offset)
        start, end = offset + _FRAME.size, offset + _FRAME.size + length
        if length == 0 or end > len(data) or frame_epoch != epoch:
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break  # torn by a kill in the middle of the copy: it never counted
        try:
            rows.append(decode(payload))
        except (struct.error, UnicodeDecodeError):
            break
        offset = end
    return rows


def replay(directory: Path, commit: Commit) -> int:
    """Commit the records of the journals left in ``directory`` by systems that are gone,
    then remove them; returns how many records. Only call it when no other live system uses
    the state dir."""
    if not directory.is_dir():
        return 0
    files = sorted(directory.glob("*.jnl"))
    rows = [row for path in files for row in scan(path)]
    if rows:
        commit(rows)
    for path in files:
        path.unlink()
    return len(rows)


def table_row(row: Row, fmt: int) -> tuple[Any, ...]:
    """The columns of the checkpoint table for ``row`` (``fmt``: the data's format)."""
    pid, seq, step, kind, created_at, first, messages, data = row
    return (pid, seq, step, kind, created_at, fmt, first, messages, len(data), data)
