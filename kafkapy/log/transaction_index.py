"""A segment's aborted transactions (`.txnindex`): which offsets read_committed
consumers must drop. Entries use Kafka's layout: version, producer id, first offset,
last offset (the abort marker's) and the last stable offset when it was written."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .files import replace_file

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
        # Through os, as every other write of the log: the crash checker's recorder sees it.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, _ENTRY.pack(_VERSION, txn.producer_id, txn.first_offset, txn.last_offset, txn.last_stable_offset))
        finally:
            os.close(fd)

    def overlapping(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions with data in [start, end)."""
        return [t for t in self.entries if t.last_offset >= start and t.first_offset < end]

    def rewrite(self, entries: list[AbortedTxn]) -> None:
        self.entries = list(entries)
        replace_file(self.path, b"".join(
            _ENTRY.pack(_VERSION, t.producer_id, t.first_offset, t.last_offset, t.last_stable_offset) for t in entries))
