"""The replicated log as the Raft core sees it: entries from the log start on, grouped
in batches, and the leader-epoch cache (the first offset of each epoch) that divergence
checks need.

Batches are the leader's: one `RaftCore.append` makes one, a follower stores the
leader's batches unchanged, and every truncation point (the end of an epoch, a
snapshot's end) is a batch boundary. So storage that keeps each batch as one record
batch never has to cut one, and never rewrites entries that may be committed.

This is a view, not storage: the core changes it and returns the same change as a log
operation for the I/O shell to make durable; on restart the shell builds it again from
what it made durable.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .messages import Entry


@dataclass(frozen=True, slots=True)
class OffsetAndEpoch:
    offset: int
    epoch: int


class BatchBoundaryError(ValueError):
    """A truncation or log start asked for inside a batch: batches are only ever whole."""


class RaftLog:
    def __init__(self, batches: Iterable[Sequence[Entry]] = (), start_offset: int = 0, start_epoch: int = 0) -> None:
        # start_offset/start_epoch: where the log begins (the end of a snapshot) and the epoch of
        # the record just before it, so divergence checks work below the first entry kept.
        self.start_offset = start_offset
        self.start_epoch = start_epoch
        self.entries: list[Entry] = []
        self._epoch_starts: list[tuple[int, int]] = []
        self._batch_starts: list[int] = []  # the first offset of each batch, ascending
        for batch in batches:
            self.append(batch)

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.entries)

    @property
    def last_epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else self.start_epoch

    def entry(self, offset: int) -> Entry:
        return self.entries[offset - self.start_offset]

    @property
    def batch_starts(self) -> Sequence[int]:
        """The first offset of each batch, ascending (not to be changed)."""
        return self._batch_starts

    @property
    def batch_sizes(self) -> list[int]:
        """How many entries each batch holds, in log order."""
        ends = [*self._batch_starts[1:], self.end_offset] if self._batch_starts else []
        return [end - start for start, end in zip(self._batch_starts, ends, strict=True)]

    def batches(self) -> list[tuple[Entry, ...]]:
        return list(self.read_batches(self.start_offset, max_entries=len(self.entries), max_bytes=-1))

    def is_batch_boundary(self, offset: int) -> bool:
        """Whether offset is where a batch starts, or the log's start or end."""
        if offset in (self.start_offset, self.end_offset):
            return True
        i = bisect_left(self._batch_starts, offset)
        return i < len(self._batch_starts) and self._batch_starts[i] == offset

    def read_batches(self, offset: int, max_entries: int, max_bytes: int) -> tuple[tuple[Entry, ...], ...]:
        """Whole batches from the one holding offset, as Kafka reads a log: they stop at a batch
        boundary once max_entries or max_bytes (of values; below 0: no limit) would be passed,
        but there is always at least one batch if the log holds offset."""
        if not self.start_offset <= offset < self.end_offset:
            return ()
        batches: list[tuple[Entry, ...]] = []
        count = size = 0
        i = max(bisect_right(self._batch_starts, offset) - 1, 0)
        while i < len(self._batch_starts):
            start = self._batch_starts[i] - self.start_offset
            end = self._batch_starts[i + 1] - self.start_offset if i + 1 < len(self._batch_starts) else len(self.entries)
            batch = tuple(self.entries[start:end])
            count += len(batch)
            size += sum(len(e.value) for e in batch)
            if batches and (count > max_entries or 0 <= max_bytes < size):
                break
            batches.append(batch)
            i += 1
        return tuple(batches)

    def append(self, batch: Sequence[Entry]) -> None:
        """Appends one batch: entries of one epoch, or a control entry alone (Kafka's batch has
        one partition leader epoch, and a control batch holds only control records)."""
        if not batch:
            return
        epoch = batch[0].epoch
        if len(batch) > 1 and any(e.epoch != epoch or e.control for e in batch):
            raise ValueError(f"a batch is one epoch's entries, or one control entry: {batch}")
        if epoch < self.last_epoch:
            raise ValueError(f"epoch {epoch} after epoch {self.last_epoch}: epochs only grow along the log")
        if not self._epoch_starts or self._epoch_starts[-1][0] != epoch:
            self._epoch_starts.append((epoch, self.end_offset))
        self._batch_starts.append(self.end_offset)
        self.entries.extend(batch)

    def truncate_to(self, offset: int) -> None:
        """Removes every entry at or above offset, which must be a batch boundary."""
        if offset < self.start_offset:
            raise ValueError(f"cannot truncate to {offset}, below the log start {self.start_offset}")
        if offset >= self.end_offset:
            return
        if not self.is_batch_boundary(offset):
            raise BatchBoundaryError(f"cannot truncate to {offset}: it lies inside a batch")
        del self.entries[offset - self.start_offset:]
        del self._batch_starts[bisect_left(self._batch_starts, offset):]
        while self._epoch_starts and self._epoch_starts[-1][1] >= offset:
            self._epoch_starts.pop()

    def delete_before(self, offset: int) -> None:
        """Moves the log start up to offset (covered by a snapshot, and a batch boundary),
        dropping the entries below."""
        if not self.start_offset <= offset <= self.end_offset:
            raise ValueError(f"cannot start the log at {offset}: it holds [{self.start_offset}, {self.end_offset})")
        if not self.is_batch_boundary(offset):
            raise BatchBoundaryError(f"cannot start the log at {offset}: it lies inside a batch")
        if offset == self.start_offset:
            return
        kept = self.read_batches(offset, max_entries=self.end_offset - offset, max_bytes=-1) if offset < self.end_offset else ()
        start_epoch = self.entry(offset - 1).epoch
        self.reset(offset, start_epoch)
        for batch in kept:
            self.append(batch)

    def reset(self, offset: int, epoch: int) -> None:
        """Empties the log so that it starts (and ends) at offset, after a snapshot of epoch."""
        self.start_offset, self.start_epoch = offset, epoch
        self.entries = []
        self._epoch_starts = []
        self._batch_starts = []

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
