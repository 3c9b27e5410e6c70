"""A segment's aborted transactions (`.txnindex`): which offsets read_committed
consumers must drop. Entries use Kafka's layout: version, producer id, first offset,
last offset (the abort marker's) and the last stable offset when it was written."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .files import fsync_directory, replace_file

_ENTRY = struct.Struct(">hqqqq")
_VERSION = 0


@dataclass(frozen=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[AbortedTxn] = []
        # Appends not yet fsynced, and whether one of them made the file (its name then
        # needs the directory fsynced too).
        self._unsynced = False
        self._name_unsynced = False

    def load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        usable = len(data) - len(data) % _ENTRY.size
        self.entries = [
            AbortedTxn(pid, first, last, lso)
            for version, pid, first, last, lso in _ENTRY.iter_unpack(data[:usable])
            if version == _VERSION
        ]

    def append(self, txn: AbortedTxn) -> None:
        self.entries.append(txn)
        self._name_unsynced |= not self.path.exists()
        self._unsynced = True
        # Through os, as every other write of the log: the crash checker's recorder sees it.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, _ENTRY.pack(_VERSION, txn.producer_id, txn.first_offset, txn.last_offset, txn.last_stable_offset))
        finally:
            os.close(fd)

    def flush(self) -> None:
        """Makes the appended entries durable, as Kafka's LogSegment.flush does its
        transaction index: recovery rebuilds entries only after the producer snapshot
        that a roll takes, so those of a rolled segment must not be lost."""
        if not self._unsynced:
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if self._name_unsynced:
            fsync_directory(self.path.parent)
        self._unsynced = self._name_unsynced = False

    def overlapping(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions with data in [start, end)."""
        return [t for t in self.entries if t.last_offset >= start and t.first_offset < end]

    def rewrite(self, entries: list[AbortedTxn]) -> None:
        self.entries = list(entries)
        self._unsynced = self._name_unsynced = False
        replace_file(self.path, b"".join(
            _ENTRY.pack(_VERSION, t.producer_id, t.first_offset, t.last_offset, t.last_stable_offset) for t in entries))
