"""One segment of a partition log: a file of record batches and its two indexes."""

from __future__ import annotations

import errno
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from ..wire.records import HEADER_SIZE, LOG_OVERHEAD, BatchHeader, crc_ok, read_header
from .index import OffsetIndex, TimeIndex
from .leader_epochs import LeaderEpochCache
from .transaction_index import TransactionIndex

T = TypeVar("T")
_READ_CHUNK = 64 * 1024
_MAX_PIECES = 512  # well under the IOV_MAX of one pwritev


class SegmentFile:
    """A segment's open log file, shared by the segment and by every response being sent
    from it: the descriptor is closed once the segment lets go of it and the last of those
    sends has released it, so a send never reads a descriptor number reused by another file.
    Held and released from the event loop and from worker threads (flush, the cleaner)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._holders = 0
        self._let_go = False
        self._lock = threading.Lock()

    def acquire(self) -> SegmentFile:
        with self._lock:
            self._holders += 1
        return self

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._let_go and self._holders == 0
        if last:
            os.close(self.fd)

    def close(self) -> None:
        """The segment is done with the file: closed now, or by the last release."""
        with self._lock:
            self._let_go = True
            unheld = self._holders == 0
        if unheld:
            os.close(self.fd)


class OpenSegmentFiles:
    """Bounds the log files kept open for segments that are not the active one of their
    log, over every log that shares it: past `limit`, the least recently used is closed,
    and opened again when next read. A file a send holds stays open until released, so
    this bounds the files kept for later, not those in use. The active segments' files are
    not counted: each log has one, always open, as appends need it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._recent: OrderedDict[Segment, None] = OrderedDict()
        self._lock = threading.Lock()

    def used(self, segment: Segment) -> None:
        with self._lock:
            self._recent[segment] = None
            self._recent.move_to_end(segment)
            idle = [self._recent.popitem(last=False)[0] for _ in range(len(self._recent) - self.limit)]
        for segment in idle:
            segment.close_idle_file()

    def forget(self, segment: Segment) -> None:
        with self._lock:
            self._recent.pop(segment, None)


def segment_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class Segment:
    def __init__(self, directory: Path, base_offset: int, fd: int, size: int, suffix: str = "") -> None:
        self.directory = directory
        self.base_offset = base_offset
        # After each file name: "" for a live segment, or a stage of the cleaner's swap
        # (`.cleaned`, `.swap`) or of deletion (`.deleted`).
        self.suffix = suffix
        self._file: SegmentFile | None = SegmentFile(fd)
        self._file_lock = threading.Lock()
        # None while the file must stay open (the active segment, or one being written).
        self._open_files: OpenSegmentFiles | None = None
        self._closed = False
        self.size = size
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = base_offset  # the batch holding it
        # The first batch's max timestamp (-1 if it has none): drives segment.ms.
        self.rolling_timestamp: int | None = None
        self.created_ms = 0
        self.bytes_since_index_entry = 0
        self.index = OffsetIndex(self._path(".index", suffix), base_offset)
        self.time_index = TimeIndex(self._path(".timeindex", suffix), base_offset)
        self.txn_index = TransactionIndex(self._path(".txnindex", suffix))

    def _path(self, kind: str, suffix: str) -> Path:
        return self.directory / (segment_name(self.base_offset, kind) + suffix)

    # The log file

    def acquire_file(self) -> SegmentFile:
        """The open log file, held until released: opened again if it was closed while idle."""
        with self._file_lock:
            file = self._file
            if file is None:
                if self._closed:
                    raise OSError(errno.EBADF, f"segment {self.log_path} is closed")
                file = self._file = SegmentFile(os.open(self.log_path, os.O_RDWR))
            file.acquire()
        if self._open_files is not None:
            self._open_files.used(self)
        return file

    def keep_open_within(self, open_files: OpenSegmentFiles | None) -> None:
        """Lets the file be closed while idle, within open_files' bound (the segment is no
        longer the active one); None keeps it open from now on (it is the active one again)."""
        if self._open_files is not None:
            self._open_files.forget(self)
        self._open_files = open_files
        if open_files is not None:
            open_files.used(self)
        else:
            self.acquire_file().release()

    def close_idle_file(self) -> None:
        with self._file_lock:
            if self._open_files is None:
                return
            file, self._file = self._file, None
        if file is not None:
            file.close()

    @property
    def file_open(self) -> bool:
        return self._file is not None

    def _on_file(self, operation: Callable[..., T], *args: object) -> T:
        """operation(fd, *args) on the log file, held open meanwhile."""
        file = self.acquire_file()
        try:
            return operation(file.fd, *args)
        finally:
            file.release()

    def fsync(self) -> None:
        self._on_file(os.fsync)

    def truncate_file(self, size: int) -> None:
        self._on_file(os.ftruncate, size)

    @property
    def log_path(self) -> Path:
        return self._path(".log", self.suffix)

    @classmethod
    def create(cls, directory: Path, base_offset: int, now_ms: int, suffix: str = "") -> Segment:
        path = directory / (segment_name(base_offset, ".log") + suffix)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        segment = cls(directory, base_offset, fd, 0, suffix)
        segment.created_ms = now_ms
        return segment

    @classmethod
    def open(cls, directory: Path, base_offset: int, now_ms: int, suffix: str = "") -> Segment:
        path = directory / (segment_name(base_offset, ".log") + suffix)
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        segment = cls(directory, base_offset, fd, size, suffix)
        segment.created_ms = now_ms
        segment.txn_index.load()
        return segment

    # Writing

    def append(self, pieces: Sequence[bytes | bytearray | memoryview], size: int, headers: list[tuple[int, BatchHeader]], index_interval: int) -> int:
        """Appends batches whose offsets are already assigned, given as pieces written in
        one call, at their `headers`' positions within them; returns where they start."""
        position = self.size
        if len(pieces) > _MAX_PIECES:
            pieces = [b"".join(pieces)]
        file = self.acquire_file()
        try:
            written = os.pwritev(file.fd, pieces, position)
            while written < size:  # a short write: write the rest
                rest = memoryview(b"".join(pieces))[written:]
                written += os.pwrite(file.fd, rest, position + written)
        finally:
            file.release()
        self.size += size
        for rel, header in headers:
            self._track(position + rel, header, index_interval)
        return position

    def _track(self, position: int, header: BatchHeader, index_interval: int) -> None:
        if self.bytes_since_index_entry > index_interval:
            self.index.append(header.base_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self.bytes_since_index_entry = 0
        self.bytes_since_index_entry += header.size
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = header.last_offset
        if self.rolling_timestamp is None:
            self.rolling_timestamp = header.max_timestamp
        self.next_offset = header.next_offset

    def flush(self) -> None:
        self.fsync()
        self.index.write()
        self.time_index.write()
        self.txn_index.flush()

    # Reading

    def batches(self, position: int = 0, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each whole batch from position on, read in chunks."""
        end = self.size if end is None else end
        while end - position >= HEADER_SIZE:
            buf = self._on_file(os.pread, min(_READ_CHUNK, end - position), position)
            offset = 0
            while len(buf) - offset >= HEADER_SIZE:
                header = read_header(buf, offset)
                if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or position + offset + header.size > end:
                    return
                yield position + offset, header
                offset += header.size
            if offset == 0:
                return
            position += offset

    def read(self, position: int, length: int) -> bytes:
        return self._on_file(os.pread, length, position)

    def find(self, offset: int) -> tuple[int, BatchHeader] | None:
        """The first batch whose last offset is at or after offset."""
        for position, header in self.batches(self.index.lookup(offset)):
            if header.last_offset >= offset:
                return position, header
        return None

    def position_of(self, offset: int) -> int:
        """Where the first batch holding offset or later starts; the segment's size if none."""
        found = self.find(offset)
        return found[0] if found else self.size

    # Loading

    def load_indexes(self) -> bool:
        """Trusts the index files after a clean shutdown, if they look right."""
        if not self.index.load(self.size):
            return False
        last = deque(self.batches(self.index.positions[-1] if len(self.index) else 0), maxlen=1)
        if not last:
            return self.size == 0 and self.time_index.load(self.base_offset + 1)
        position, header = last[0]
        if position + header.size != self.size:
            return False
        self.next_offset = header.next_offset
        if not self.time_index.load(self.next_offset):
            return False
        if len(self.time_index):
            self.max_timestamp = self.time_index.timestamps[-1]
            self.offset_of_max_timestamp = self.time_index.offsets[-1]
        # Batches after the last time index entry may hold a larger timestamp.
        for _, h in self.batches(self.index.lookup(self.offset_of_max_timestamp)):
            if h.max_timestamp > self.max_timestamp:
                self.max_timestamp, self.offset_of_max_timestamp = h.max_timestamp, h.last_offset
        first = next(self.batches(0), None)
        self.rolling_timestamp = first[1].max_timestamp if first else None
        self.bytes_since_index_entry = self.size - (self.index.positions[-1] if len(self.index) else 0)
        return True

    def recover(self, index_interval: int, min_offset: int, epochs: LeaderEpochCache | None = None) -> int:
        """Rebuilds the indexes from the batches, verifying each one, and cuts the file
        after the last valid batch; `epochs` learns the leader epochs of the valid ones.
        Returns how many bytes were cut."""
        self.index.clear()
        self.time_index.clear()
        self.next_offset = self.base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = self.base_offset
        self.rolling_timestamp = None
        self.bytes_since_index_entry = 0
        file_size = self._on_file(os.fstat).st_size
        valid = 0
        expected = max(min_offset, self.base_offset)
        for position, header in self.batches(0, file_size):
            if header.magic != 2 or header.base_offset < expected or header.last_offset_delta < 0:
                break
            if not crc_ok(self.read(position, header.size), 0, header):
                break
            self._track(position, header, index_interval)
            if epochs is not None:
                epochs.learn(header.partition_leader_epoch, header.base_offset)
            expected = header.next_offset
            valid = position + header.size
        truncated = file_size - valid
        if truncated:
            self.truncate_file(valid)
        self.size = valid
        return truncated

    def largest_timestamp(self) -> int:
        """The largest record timestamp, or the file's modification time if no record has one."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return self.last_modified_ms()

    def last_modified_ms(self) -> int:
        return self.modified_ns() // 1_000_000

    def modified_ns(self) -> int:
        return self._on_file(os.fstat).st_mtime_ns

    def change_suffix(self, suffix: str) -> None:
        """Renames the segment's files (those that exist) to end in `suffix` instead."""
        # Under the file's lock: a worker thread opening it again finds it by the name it has.
        with self._file_lock:
            for kind, current in self._files():
                if current.exists():
                    current.rename(self._path(kind, suffix))
            self.suffix = suffix
            self.index.path = self._path(".index", suffix)
            self.time_index.path = self._path(".timeindex", suffix)
            self.txn_index.path = self._path(".txnindex", suffix)

    def _files(self) -> tuple[tuple[str, Path], ...]:
        return (
            (".log", self.log_path), (".index", self.index.path),
            (".timeindex", self.time_index.path), (".txnindex", self.txn_index.path),
        )

    def retire(self) -> None:
        """Renames the files to `.deleted`: gone from the log, still readable through the open fd."""
        self.change_suffix(".deleted")

    def close(self) -> None:
        with self._file_lock:
            self._closed = True
            file, self._file = self._file, None
        if self._open_files is not None:
            self._open_files.forget(self)
        if file is not None:
            file.close()

    def delete_files(self) -> None:
        self.close()
        for _, path in self._files():
            path.unlink(missing_ok=True)
