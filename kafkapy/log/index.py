"""A segment's offset and time indexes: sparse, sorted, searched by bisection.

Entries live in compact arrays in memory and in Kafka's on-disk layout (big-endian
relative offset and position; timestamp and relative offset). The files are written
when the segment is flushed or closed, and rebuilt from the log when they do not
look right.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from pathlib import Path

from .files import replace_file

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


class OffsetIndex:
    """Maps an offset to the file position of a batch at or before it."""

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.offsets = array("q")
        self.positions = array("q")
        self._written = 0  # entries already in the file; -1 when it holds stale ones

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, offset: int, position: int) -> None:
        self.offsets.append(offset)
        self.positions.append(position)

    def lookup(self, offset: int) -> int:
        """Position of the last indexed batch that starts at or before offset (0 if none)."""
        i = bisect_right(self.offsets, offset)
        return self.positions[i - 1] if i else 0

    def load(self, log_size: int) -> bool:
        """Reads the file; False (and nothing loaded) if it is missing or inconsistent."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(data) % _OFFSET_ENTRY.size:
            return False
        offsets, positions = array("q"), array("q")
        for rel, pos in _OFFSET_ENTRY.iter_unpack(data):
            if (offsets and (rel + self.base_offset <= offsets[-1] or pos <= positions[-1])) or pos >= log_size or rel < 0:
                return False
            offsets.append(rel + self.base_offset)
            positions.append(pos)
        self.offsets, self.positions = offsets, positions
        self._written = len(offsets)
        return True

    def write(self) -> None:
        """Brings the file up to date with the entries in memory (an index with no entry
        needs no file: loading a missing one rebuilds it from the log)."""
        if self._written == len(self.offsets) and (self.path.exists() or not self.offsets):
            return
        data = b"".join(
            _OFFSET_ENTRY.pack(o - self.base_offset, p) for o, p in zip(self.offsets, self.positions, strict=True)
        )
        replace_file(self.path, data)
        self._written = len(self.offsets)

    def clear(self) -> None:
        self.offsets, self.positions = array("q"), array("q")
        self._written = -1


class TimeIndex:
    """Maps a timestamp to the offset of the batch holding the largest timestamp so far."""

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.timestamps = array("q")
        self.offsets = array("q")
        self._written = 0

    def __len__(self) -> int:
        return len(self.timestamps)

    def maybe_append(self, timestamp: int, offset: int) -> None:
        if not self.timestamps or timestamp > self.timestamps[-1]:
            self.timestamps.append(timestamp)
            self.offsets.append(offset)

    def lookup(self, timestamp: int) -> int:
        """Where a search for the first record at or after timestamp may start: the
        offset of the last entry below it (every record up to there is older), or the
        base offset."""
        i = bisect_right(self.timestamps, timestamp - 1)
        return self.offsets[i - 1] if i else self.base_offset

    def load(self, next_offset: int) -> bool:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(data) % _TIME_ENTRY.size:
            return False
        timestamps, offsets = array("q"), array("q")
        for ts, rel in _TIME_ENTRY.iter_unpack(data):
            if (timestamps and ts <= timestamps[-1]) or not 0 <= rel < next_offset - self.base_offset:
                return False
            timestamps.append(ts)
            offsets.append(rel + self.base_offset)
        self.timestamps, self.offsets = timestamps, offsets
        self._written = len(offsets)
        return True

    def write(self) -> None:
        if self._written == len(self.offsets) and (self.path.exists() or not self.offsets):
            return
        data = b"".join(
            _TIME_ENTRY.pack(t, o - self.base_offset) for t, o in zip(self.timestamps, self.offsets, strict=True)
        )
        replace_file(self.path, data)
        self._written = len(self.offsets)

    def clear(self) -> None:
        self.timestamps, self.offsets = array("q"), array("q")
        self._written = -1

