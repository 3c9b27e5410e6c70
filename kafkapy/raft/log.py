"""The replicated log as the Raft core sees it: entries from the log start on, and the
leader-epoch cache (the first offset of each epoch) that divergence checks need.

This is a view, not storage: the core changes it and returns the same change as a log
operation for the I/O shell to make durable; on restart the shell builds it again from
what it made durable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .messages import Entry


@dataclass(frozen=True, slots=True)
class OffsetAndEpoch:
    offset: int
    epoch: int


class RaftLog:
    def __init__(self, entries: Iterable[Entry] = (), start_offset: int = 0, start_epoch: int = 0) -> None:
        # start_offset/start_epoch: where the log begins (the end of a snapshot) and the epoch of
        # the record just before it, so divergence checks work below the first entry kept.
        self.start_offset = start_offset
        self.start_epoch = start_epoch
        self.entries: list[Entry] = []
        self._epoch_starts: list[tuple[int, int]] = []
        self.append(entries)

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.entries)

    @property
    def last_epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else self.start_epoch

    def entry(self, offset: int) -> Entry:
        return self.entries[offset - self.start_offset]

    def read(self, offset: int, max_entries: int) -> tuple[Entry, ...]:
        start = offset - self.start_offset
        return tuple(self.entries[start:start + max_entries])

    def append(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if entry.epoch < self.last_epoch:
                raise ValueError(f"epoch {entry.epoch} after epoch {self.last_epoch}: epochs only grow along the log")
            if not self._epoch_starts or self._epoch_starts[-1][0] != entry.epoch:
                self._epoch_starts.append((entry.epoch, self.end_offset))
            self.entries.append(entry)

    def truncate_to(self, offset: int) -> None:
        """Removes every entry at or above offset."""
        if offset < self.start_offset:
            raise ValueError(f"cannot truncate to {offset}, below the log start {self.start_offset}")
        del self.entries[offset - self.start_offset:]
        while self._epoch_starts and self._epoch_starts[-1][1] >= offset:
            self._epoch_starts.pop()

    def delete_before(self, offset: int) -> None:
        """Moves the log start up to offset (covered by a snapshot), dropping the entries below."""
        if not self.start_offset <= offset <= self.end_offset:
            raise ValueError(f"cannot start the log at {offset}: it holds [{self.start_offset}, {self.end_offset})")
        if offset == self.start_offset:
            return
        kept = self.entries[offset - self.start_offset:]
        start_epoch = self.entry(offset - 1).epoch
        self.reset(offset, start_epoch)
        self.append(kept)

    def reset(self, offset: int, epoch: int) -> None:
        """Empties the log so that it starts (and ends) at offset, after a snapshot of epoch."""
        self.start_offset, self.start_epoch = offset, epoch
        self.entries = []
        self._epoch_starts = []

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        """The largest epoch not above `epoch` that this log has, and the offset where it ends
        (the first offset of the next epoch, or the log end), as Kafka's leader-epoch cache answers."""
        if epoch >= self.last_epoch:
            return OffsetAndEpoch(self.end_offset, self.last_epoch)
        found = OffsetAndEpoch(self.start_offset, self.start_epoch)
        for i, (cached_epoch, _) in enumerate(self._epoch_starts):
            if cached_epoch > epoch:
                break
            found = OffsetAndEpoch(self._epoch_starts[i + 1][1], cached_epoch)
        return found

    def truncation_offset(self, diverging: OffsetAndEpoch) -> int:
        """Where a follower truncates to, given the leader's end offset for the diverging
        epoch: as Kafka's KafkaMetadataLog.truncateToEndOffset decides it."""
        local = self.end_offset_for_epoch(diverging.epoch)
        if local.epoch == diverging.epoch:
            return min(local.offset, diverging.offset)
        return local.offset

    def is_up_to_date(self, last_epoch: int, last_offset: int) -> bool:
        """Whether a log ending at (last_epoch, last_offset) is at least as up to date as this
        one: Raft's condition for a vote."""
        return (last_epoch, last_offset) >= (self.last_epoch, self.end_offset)

    def values_between(self, start: int, end: int) -> Sequence[tuple[int, Entry]]:
        first = max(start, self.start_offset)
        return [(offset, self.entries[offset - self.start_offset]) for offset in range(first, end)]
