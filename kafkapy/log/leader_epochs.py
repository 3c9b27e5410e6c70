"""Which leader epoch wrote which offsets: the `leader-epoch-checkpoint` of a partition.

Answers OffsetForLeaderEpoch: where an epoch's log ended, so a client (or a follower)
can tell whether its position still lies on the leader's log.

Every change is made in memory at once and written later, off the event loop, by
write_pending (Kafka's KAFKA-15046 and KAFKA-16541 write the truncations from a
scheduler thread; here the new epochs too). What a crash may lose stays what Kafka
allows: the partition log writes the file before its recovery point passes a batch of
a new epoch (PartitionLog.flush), and the batches past the recovery point teach their
epochs again when recovery reads them (Kafka's LogSegment.recover); an epoch lost
with no batch is one the controller moves past at the next start anyway.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from pathlib import Path
from threading import Lock

from .files import read_checkpoint_file, replace_file

FILE_NAME = "leader-epoch-checkpoint"
UNDEFINED = -1


class LeaderEpochCache:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME
        self.epochs: list[int] = []
        self.start_offsets: list[int] = []
        # The file's content not yet durable; replaced whole by each change, so that a
        # writer in a worker thread takes a consistent copy while the loop goes on.
        self._unwritten: bytes | None = None
        self._writing = Lock()

    @classmethod
    def load(cls, directory: Path) -> LeaderEpochCache:
        """The cache as its checkpoint has it; raises CheckpointError if it is malformed."""
        cache = cls(directory)
        for epoch, offset in read_checkpoint_file(cache.path, _entry):
            cache.epochs.append(epoch)
            cache.start_offsets.append(offset)
        return cache

    def rebuild(self, batches: Iterable[tuple[int, int]]) -> None:
        """Learns every epoch again from the (leader epoch, base offset) of each batch of
        the log in order, as Kafka's recovery assigns them."""
        self.epochs, self.start_offsets = [], []
        for epoch, offset in batches:
            self.learn(epoch, offset)
        self._changed()

    def learn(self, epoch: int, base_offset: int) -> None:
        """What a batch read by recovery teaches: as Kafka's LogSegment.recover, only an
        epoch above the latest known one is assigned."""
        if epoch >= 0 and (not self.epochs or epoch > self.epochs[-1]):
            self.assign(epoch, base_offset)

    @property
    def latest_epoch(self) -> int:
        return self.epochs[-1] if self.epochs else UNDEFINED

    def assign(self, epoch: int, start_offset: int) -> None:
        """Records that `epoch` wrote its first batch at `start_offset`. As Kafka: only a
        new epoch, or an earlier start for the latest one, changes anything, and the
        entries at or after it (by epoch or by offset) give way to it."""
        if epoch < 0 or start_offset < 0:
            return
        if self.epochs and epoch == self.epochs[-1] and start_offset >= self.start_offsets[-1]:
            return
        while self.epochs and (self.epochs[-1] >= epoch or self.start_offsets[-1] >= start_offset):
            self.epochs.pop()
            self.start_offsets.pop()
        self.epochs.append(epoch)
        self.start_offsets.append(start_offset)
        self._changed()

    def end_offset_for(self, requested: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) as Kafka answers OffsetForLeaderEpoch: the largest epoch at
        or below the requested one, and the offset where the epoch after it began."""
        if requested == UNDEFINED or not self.epochs:
            return UNDEFINED, UNDEFINED
        if requested == self.latest_epoch:
            return requested, log_end_offset
        higher = bisect_right(self.epochs, requested)
        if higher == len(self.epochs):
            return UNDEFINED, UNDEFINED
        floor = higher - 1
        if floor < 0:
            return requested, self.start_offsets[higher]
        return self.epochs[floor], self.start_offsets[higher]

    def truncate_from(self, offset: int) -> None:
        """Forgets epochs that began at or after offset (the log was cut there)."""
        keep = bisect_left(self.start_offsets, offset)
        if keep < len(self.epochs):
            del self.epochs[keep:], self.start_offsets[keep:]
            self._changed()

    def truncate_from_start(self, offset: int) -> None:
        """The log now starts at offset: the epochs that began at or below it are
        forgotten but the latest of them, which is taken to begin at offset."""
        below = bisect_right(self.start_offsets, offset)
        if below == 0 or (below == 1 and self.start_offsets[0] == offset):
            return
        epoch = self.epochs[below - 1]
        self.epochs[:below] = [epoch]
        self.start_offsets[:below] = [offset]
        self._changed()

    @property
    def pending(self) -> bool:
        """Whether a change is not in the file yet."""
        return self._unwritten is not None

    def write_pending(self) -> None:
        """Makes the latest change durable, if one is not yet. Blocking (an fsync): called
        from a worker thread, or at shutdown; safe beside the event loop changing the
        cache, and beside another writer (the later content always wins)."""
        with self._writing:
            content = self._unwritten
            if content is None:
                return
            replace_file(self.path, content)
            if self._unwritten is content:
                self._unwritten = None

    def _changed(self) -> None:
        lines = ["0", str(len(self.epochs))] + [f"{e} {o}" for e, o in zip(self.epochs, self.start_offsets, strict=True)]
        self._unwritten = ("\n".join(lines) + "\n").encode()


def _entry(fields: list[str]) -> tuple[int, int]:
    epoch, offset = fields
    return int(epoch), int(offset)
