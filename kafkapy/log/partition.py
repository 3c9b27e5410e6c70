"""A partition's log: segments, appends with Kafka's validation, reads, recovery.

Knows nothing of the network: appends take batches as bytes and reads return file
ranges. Time comes from the caller (`now_ms`), so tests drive it with a fake clock.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kio.schema.errors import ErrorCode

from ..wire.compression import DecompressedTooLarge
from ..wire.protocol import FileSlice
from ..wire.records import (
    HEADER_SIZE,
    NO_TIMESTAMP,
    TIMESTAMP_TYPE_BIT,
    BatchHeader,
    Record,
    decode_records,
    read_marker,
    stamped_header,
)
from .config import LogConfig
from .files import CheckpointError, fsync_directory, names_ending
from .leader_epochs import LeaderEpochCache
from .producer_state import ProducerStateError, ProducerStateManager
from .segment import OpenSegmentFiles, Segment
from .swaps import SWAP_SUFFIX, finish_interrupted_swaps
from .transaction_index import AbortedTxn
from .validation import LogError, maybe_recompress, validate_batches

_logger = logging.getLogger(__name__)


@dataclass
class AppendResult:
    base_offset: int
    last_offset: int
    log_append_time: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    records_count: int
    batches: list[tuple[int, BatchHeader]] = field(default_factory=list)  # as appended


class PartitionLog:
    def __init__(self, directory: Path, config: LogConfig, open_files: OpenSegmentFiles | None = None) -> None:
        self.directory = directory
        self.config = config
        # Bounds the files of segments other than the active one kept open; None keeps all open.
        self.open_files = open_files
        self.segments: list[Segment] = []
        self._bases: list[int] = []  # base offsets of segments, for bisection
        self.log_start_offset = 0
        self.high_watermark = 0
        self.recovery_point = 0
        self.unflushed_messages = 0
        self.last_flush_ms = 0
        self.leader_epoch = 0
        self.epochs = LeaderEpochCache(directory)
        self.producers = ProducerStateManager(directory)
        self.retired: list[tuple[int, Segment]] = []  # (when to delete, segment) of deleted segments
        # Whether this log made its directory and has not yet fsynced the log directory
        # holding it: until then a crash may lose the directory, and with it every segment.
        self.directory_name_unsynced = False

    # Opening

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        now_ms: int,
        *,
        log_start_offset: int = 0,
        recovery_point: int = 0,
        clean_shutdown: bool = False,
        open_files: OpenSegmentFiles | None = None,
    ) -> PartitionLog:
        created = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        log = cls(directory, config, open_files)
        log.directory_name_unsynced = created
        try:
            log.epochs = LeaderEpochCache.load(directory)
            epochs_unreadable = False
        except CheckpointError as e:
            _logger.warning("Ignoring an unreadable leader epoch checkpoint, %s; rebuilding it from the log", e)
            epochs_unreadable = True
        for stale in names_ending(directory, ".tmp", ".deleted"):
            (directory / stale).unlink()
        finish_interrupted_swaps(directory, now_ms)
        bases = sorted(int(name[:-4]) for name in names_ending(directory, ".log") if name[:-4].isdigit())
        if not bases:
            log._add_segment(Segment.create(directory, log_start_offset, now_ms))
        previous_next = 0
        for i, base in enumerate(bases):
            segment = Segment.open(directory, base, now_ms)
            trusted = clean_shutdown or (i + 1 < len(bases) and bases[i + 1] <= recovery_point)
            if trusted and segment.load_indexes() and segment.base_offset >= previous_next:
                log._add_segment(segment)
                previous_next = segment.next_offset
                continue
            truncated = segment.recover(config.index_interval_bytes, previous_next, log.epochs)
            log._add_segment(segment)
            previous_next = segment.next_offset
            if truncated:
                # Whatever follows a torn or corrupt batch was written after it: drop it.
                for later in bases[i + 1 :]:
                    Segment.open(directory, later, now_ms).delete_files()
                break
        if epochs_unreadable:
            log.epochs.rebuild((header.partition_leader_epoch, header.base_offset)
                               for segment in log.segments for _, header in segment.batches())
        log.epochs.truncate_from(log.next_offset)
        log.epochs.truncate_from_start(log_start_offset)
        log.log_start_offset = max(log_start_offset, log.segments[0].base_offset)
        log.recovery_point = min(recovery_point, log.next_offset)
        log.high_watermark = log.next_offset
        log.last_flush_ms = now_ms
        log.producers.remove_stray_snapshots(log._bases)
        log._load_producer_state()
        return log

    def _load_producer_state(self) -> None:
        """Rebuilds producer state from the latest snapshot and the batches after it. The
        aborted-transaction entries of the replayed range are rebuilt along with it."""
        producers = self.producers
        producers.delete_snapshots(below=self.log_start_offset, above=self.next_offset)
        if not producers.load_snapshot(at_most=self.next_offset):
            producers.truncate()
        start = max(producers.last_map_offset, self.log_start_offset)
        for segment in self.segments:
            kept = [t for t in segment.txn_index.entries if t.last_offset < start]
            if len(kept) != len(segment.txn_index.entries):
                segment.txn_index.rewrite(kept)
        for segment in self.segments[self._segment_index(start) :]:
            found = segment.find(start)
            if found is None:
                continue
            for position, header in segment.batches(found[0]):
                marker = read_marker(segment.read(position, header.size), header) if header.is_control else None
                self._apply_producer_batch(segment, header, marker)

    def _add_segment(self, segment: Segment) -> None:
        if self.segments:
            self.segments[-1].keep_open_within(self.open_files)
        self.segments.append(segment)
        self._bases.append(segment.base_offset)

    # State

    @property
    def active(self) -> Segment:
        return self.segments[-1]

    @property
    def next_offset(self) -> int:
        """The log end offset."""
        return self.active.next_offset

    @property
    def last_stable_offset(self) -> int:
        """Where read_committed consumers stop: the first offset of the oldest open transaction."""
        first_unstable = self.producers.first_unstable_offset
        return self.high_watermark if first_unstable is None else min(first_unstable, self.high_watermark)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    # Appending

    def append(
        self,
        records: bytes | bytearray,
        now_ms: int,
        *,
        from_client: bool = True,
    ) -> AppendResult:
        """Validates batches as Kafka's LogValidator does, assigns offsets and appends.

        `from_client` is False for batches the broker wrote itself (coordinators, control
        markers), which skip the checks aimed at producers."""
        data = records
        config = self.config
        headers, renumbered = validate_batches(data, config, now_ms, from_client)
        if from_client and len(headers) == 1 and headers[0][1].producer_id >= 0:
            duplicate = self.producers.duplicate(headers[0][1])
            if duplicate is not None:
                # A producer retry of a batch already written: answer with its offsets.
                return AppendResult(duplicate.first_offset, duplicate.last_offset, NO_TIMESTAMP, self.log_start_offset, 0)
        markers = {pos: read_marker(memoryview(data)[pos : pos + h.size], h) for pos, h in headers if h.is_control}
        try:
            self.producers.check([h for _, h in headers], from_client)
            for pos, h in headers:
                if (marker := markers.get(pos)) is not None:
                    self.producers.check_marker(h.producer_id, h.producer_epoch, marker[1])
        except ProducerStateError as e:
            raise LogError(e.code, e.message) from e
        data, headers = maybe_recompress(data, headers, renumbered, config, from_client)
        log_append_time = now_ms if config.log_append_time else NO_TIMESTAMP
        next_offset = self.next_offset
        stamped: list[tuple[int, BatchHeader]] = []
        pieces: list[bytes | memoryview] = []  # each batch: its stamped header, then its untouched rest
        view = memoryview(data)
        count = 0
        for pos, header in headers:
            if config.log_append_time and not header.is_control:
                header = header._replace(max_timestamp=now_ms, attributes=header.attributes | TIMESTAMP_TYPE_BIT)
            pieces.append(stamped_header(view[pos : pos + header.size], header, next_offset, self.leader_epoch))
            pieces.append(view[pos + HEADER_SIZE : pos + header.size])
            header = header._replace(base_offset=next_offset, partition_leader_epoch=self.leader_epoch)
            stamped.append((pos, header))
            count += header.records_count
            next_offset = header.next_offset
        self._maybe_roll(len(data), stamped, now_ms)
        active = self.active
        position = active.append(pieces, len(data), stamped, config.index_interval_bytes)
        self.epochs.assign(self.leader_epoch, stamped[0][1].base_offset)
        for pos, header in stamped:
            self._apply_producer_batch(active, header, markers.get(pos))
        self.unflushed_messages += count
        return AppendResult(
            base_offset=stamped[0][1].base_offset,
            last_offset=stamped[-1][1].last_offset,
            log_append_time=log_append_time,
            log_start_offset=self.log_start_offset,
            records_count=count,
            batches=[(position + pos, h) for pos, h in stamped],
        )

    def append_as_follower(self, records: bytes | bytearray, now_ms: int) -> AppendResult:
        """Appends batches copied from the leader as they are, with the offsets and leader
        epochs the leader gave them (Kafka's appendAsFollower): nothing is reassigned,
        recompressed or checked against producers' expectations."""
        headers, _ = validate_batches(records, self.config, now_ms, from_client=False)
        first, last = headers[0][1], headers[-1][1]
        if first.base_offset < self.next_offset:
            raise LogError(ErrorCode.unknown_server_error, f"Batch at {first.base_offset} is below the log end offset {self.next_offset}")
        view = memoryview(records)
        markers = {pos: read_marker(view[pos : pos + h.size], h) for pos, h in headers if h.is_control}
        self._maybe_roll(len(records), headers, now_ms)
        active = self.active
        position = active.append([view], len(records), headers, self.config.index_interval_bytes)
        count = 0
        for pos, header in headers:
            self.epochs.assign(header.partition_leader_epoch, header.base_offset)
            self._apply_producer_batch(active, header, markers.get(pos))
            count += header.records_count
        self.unflushed_messages += count
        return AppendResult(first.base_offset, last.last_offset, NO_TIMESTAMP, self.log_start_offset, count,
                            [(position + pos, h) for pos, h in headers])

    def _apply_producer_batch(self, segment: Segment, header: BatchHeader, marker: tuple[bool, int] | None) -> None:
        completed = self.producers.apply(header, marker)
        if completed is not None and completed.aborted:
            first_unstable = self.producers.first_unstable_offset
            last_stable = completed.last_offset + 1 if first_unstable is None else first_unstable
            segment.txn_index.append(AbortedTxn(completed.producer_id, completed.first_offset, completed.last_offset, last_stable))

    def _maybe_roll(self, incoming: int, batches: list[tuple[int, BatchHeader]], now_ms: int) -> None:
        active = self.active
        config = self.config
        if active.size == 0:
            return
        # As Kafka: once the segment's first batch has a timestamp, time waited is the
        # incoming records' time since it; otherwise the clock's since the segment was made.
        rolling = active.rolling_timestamp
        if rolling is not None and rolling >= 0:
            waited = max(h.max_timestamp for _, h in batches) - rolling
        else:
            waited = now_ms - active.created_ms
        index_full = (len(active.index) + 1) * 8 > config.segment_index_bytes
        offset_overflow = batches[-1][1].last_offset - active.base_offset > 2**31 - 1
        if (
            active.size + incoming > config.segment_bytes
            or waited > config.segment_ms - config.segment_jitter_ms
            or index_full
            or offset_overflow
        ):
            self.roll(now_ms)

    def roll(self, now_ms: int) -> Segment:
        """Starts a new active segment; the old one is flushed with its indexes."""
        previous = self.active
        previous.flush()
        self.epochs.write_pending()  # as flush(): before the recovery point passes its batches
        self.recovery_point = max(self.recovery_point, previous.next_offset)
        segment = Segment.create(self.directory, previous.next_offset, now_ms)
        self._add_segment(segment)
        self.producers.take_snapshot()
        return segment

    # Durability

    def needs_flush(self, now_ms: int) -> bool:
        if self.recovery_point >= self.next_offset:
            return False
        return self.unflushed_messages >= self.config.flush_messages or now_ms - self.last_flush_ms >= self.config.flush_ms

    def flush(self, now_ms: int) -> None:
        """fsyncs every segment holding data past the recovery point. Safe to call from a
        worker thread while the event loop appends."""
        target = self.next_offset
        self.unflushed_messages = 0
        # Before the recovery point passes a batch of a new epoch: recovery would not
        # read that batch again to learn its epoch.
        self.epochs.write_pending()
        flushed = self.segments[self._segment_index(self.recovery_point) :]
        for segment in flushed:
            segment.fsync()
        # As Kafka's LocalLog.flush: a segment made since the last flush holds data only
        # once its name is durable too; and so does a partition directory made by open().
        if any(segment.base_offset >= self.recovery_point for segment in flushed):
            fsync_directory(self.directory)
        if self.directory_name_unsynced:
            fsync_directory(self.directory.parent)
            self.directory_name_unsynced = False
        self.recovery_point = max(self.recovery_point, target)
        self.last_flush_ms = now_ms

    def truncate_to(self, offset: int) -> None:
        """Removes every batch holding an offset at or above `offset`, as a follower whose
        log diverged from its leader's does. As Kafka's LogSegment.truncateTo, a batch that
        straddles `offset` goes whole: the log may end below it. flush() makes it durable."""
        if offset >= self.next_offset:
            return
        if offset < self.log_start_offset:
            raise LogError(ErrorCode.offset_out_of_range, f"Cannot truncate to {offset}, below the log start {self.log_start_offset}")
        keep = self._segment_index(offset)
        for segment in self.segments[keep + 1 :]:
            segment.delete_files()
        del self.segments[keep + 1 :]
        self._bases = [s.base_offset for s in self.segments]
        segment = self.segments[keep]
        segment.keep_open_within(None)  # the active segment again
        segment.truncate_file(segment.position_of(offset))
        # Rebuilds the segment's end offset and indexes from the batches that remain.
        segment.recover(self.config.index_interval_bytes, 0)
        self.epochs.truncate_from(self.next_offset)
        self.recovery_point = min(self.recovery_point, self.next_offset)
        self.high_watermark = min(self.high_watermark, self.next_offset)
        self._load_producer_state()

    def truncate_fully_and_start_at(self, offset: int, now_ms: int) -> None:
        """Empties the log and starts it afresh at offset, as Kafka's truncateFullyAndStartAt
        (a Raft follower that installed a snapshot ending there). The newest segments go
        first, so a crash midway leaves a prefix of the old log, never one with a hole."""
        for segment in reversed(self.segments):
            segment.delete_files()
        self.segments, self._bases = [], []
        self._add_segment(Segment.create(self.directory, offset, now_ms))
        fsync_directory(self.directory)
        self.log_start_offset = self.recovery_point = self.high_watermark = offset
        self.epochs.truncate_from(0)
        self.epochs.write_pending()  # as Kafka's clearAndFlush: at once, the old epochs gone with the log
        self.producers.truncate()
        self.producers.delete_snapshots(below=offset, above=offset)

    def delete_segments_below_log_start(self, now_ms: int) -> None:
        """Deletes the segments wholly below the log start offset, whatever the retention
        config says (metadata goes only once a snapshot covers it)."""
        uppers = [s.base_offset for s in self.segments[1:]] + [self.next_offset]
        covered = {id(s) for s, upper in zip(self.segments, uppers, strict=True) if upper <= self.log_start_offset}
        self.delete_segments([s for s in self.expired_segments(now_ms) if id(s) in covered], now_ms)

    # Reading

    def _segment_index(self, offset: int) -> int:
        return max(bisect_right(self._bases, offset) - 1, 0)

    def check_offset(self, offset: int) -> None:
        if offset < self.log_start_offset or offset > self.next_offset:
            raise LogError(
                ErrorCode.offset_out_of_range,
                f"Offset {offset} is outside [{self.log_start_offset}, {self.next_offset}]",
            )

    def read(self, offset: int, max_bytes: int, upper_bound: int, min_one_batch: bool) -> FileSlice | None:
        """Whole batches from the one holding offset, below upper_bound, at most max_bytes
        (the last may be cut short, as in Kafka) but at least one batch if min_one_batch.
        The slice holds the segment's file open until it is released, after its send."""
        self.check_offset(offset)
        if offset >= upper_bound:
            return None
        for segment in self.segments[self._segment_index(offset) :]:
            found = segment.find(offset)
            if found is None:
                continue
            position, header = found
            if header.base_offset >= upper_bound:
                return None
            end = segment.size if upper_bound >= segment.next_offset else segment.position_of(upper_bound)
            length = min(end - position, max_bytes)
            if min_one_batch and length < header.size:
                length = min(header.size, end - position)
            if length <= 0:
                return None
            file = segment.acquire_file()
            return FileSlice(file.fd, position, length, file)
        return None

    def iter_batches(self, start_offset: int = 0, upper_bound: int | None = None) -> Iterator[tuple[BatchHeader, bytes]]:
        """Every batch holding offsets at or after start_offset and below upper_bound, read whole."""
        upper = self.next_offset if upper_bound is None else upper_bound
        for segment in self.segments[self._segment_index(start_offset) :]:
            found = segment.find(start_offset)
            if found is None:
                continue
            for position, header in segment.batches(found[0]):
                if header.base_offset >= upper:
                    return
                yield header, segment.read(position, header.size)

    def aborted_transactions(self, start: int, upper_bound: int) -> list[AbortedTxn]:
        """Aborted transactions with data in [start, upper_bound), for read_committed fetches."""
        return [
            txn
            for segment in self.segments[self._segment_index(start) :]
            if segment.base_offset < upper_bound
            for txn in segment.txn_index.overlapping(start, upper_bound)
        ]

    def offset_for_timestamp(self, timestamp: int, upper_bound: int) -> tuple[int, int] | None:
        """(timestamp, offset) of the first record at or after timestamp, below upper_bound."""
        for segment in self.segments:
            if segment.max_timestamp < timestamp or segment.next_offset <= self.log_start_offset:
                continue
            start = max(segment.time_index.lookup(timestamp), self.log_start_offset)
            for position, header in segment.batches(segment.index.lookup(start)):
                if header.base_offset >= upper_bound:
                    return None
                if header.max_timestamp < timestamp or header.last_offset < start or header.is_control:
                    continue
                records = self._stored_records(segment.read(position, header.size), header)
                if records is None:
                    return header.max_timestamp, max(start, header.base_offset)
                for record in records:
                    if record.timestamp >= timestamp and start <= record.offset < upper_bound:
                        return record.timestamp, record.offset
        return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(timestamp, offset) of the record with the largest timestamp."""
        best = max(
            (s for s in self.segments if s.size and s.next_offset > self.log_start_offset),
            key=lambda s: s.max_timestamp,
            default=None,
        )
        if best is None:
            return None
        found = best.find(best.offset_of_max_timestamp)
        if found is None:
            return None
        position, header = found
        for record in self._stored_records(best.read(position, header.size), header) or ():
            if record.timestamp == best.max_timestamp:
                return record.timestamp, record.offset
        return best.max_timestamp, header.last_offset

    def _stored_records(self, batch: bytes, header: BatchHeader) -> list[Record] | None:
        """The records of a stored batch, or None for one that inflates past max.message.bytes:
        the broker appends compressed batches unopened, so a decompression bomb can be in
        the log, and a lookup then answers from the batch's header alone."""
        try:
            return decode_records(batch, header, self.config.max_message_bytes)
        except DecompressedTooLarge:
            return None

    # Retention

    def delete_records_before(self, offset: int) -> int:
        """Moves the log start offset forward (DeleteRecords); returns the new one.
        Whole segments below it go at the next retention pass."""
        if offset > self.high_watermark:
            raise LogError(
                ErrorCode.offset_out_of_range,
                f"Cannot delete records before offset {offset}, beyond the high watermark {self.high_watermark}",
            )
        self._move_log_start_offset(offset)
        return self.log_start_offset

    def _move_log_start_offset(self, offset: int) -> None:
        if offset > self.log_start_offset:
            self.log_start_offset = offset
            self.epochs.truncate_from_start(offset)

    def expired_segments(self, now_ms: int) -> list[Segment]:
        """The oldest segments that Kafka's retention would delete now: those wholly below
        the log start offset and, with cleanup.policy=delete, those past retention.ms or
        beyond retention.bytes. Only data below the high watermark may go, and never an
        empty last segment (an empty segment the cleaner left in the middle may go)."""
        config = self.config
        uppers = [s.base_offset for s in self.segments[1:]] + [self.next_offset]
        deletable = [
            (segment, upper) for i, (segment, upper) in enumerate(zip(self.segments, uppers, strict=True))
            if upper <= self.high_watermark and (segment.size or i + 1 < len(self.segments))
        ]

        def prefix(keep_going: Callable[[Segment, int], bool]) -> int:
            n = 0
            for segment, upper in deletable:
                if not keep_going(segment, upper):
                    break
                n += 1
            return n

        count = prefix(lambda _, upper: upper <= self.log_start_offset)
        if config.delete and config.retention_ms >= 0:
            count = max(count, prefix(lambda s, _: now_ms - s.largest_timestamp() > config.retention_ms))
        if config.delete and config.retention_bytes >= 0:
            excess = self.size - config.retention_bytes

            def within_excess(segment: Segment, _: int) -> bool:
                nonlocal excess
                if excess - segment.size < 0:
                    return False
                excess -= segment.size
                return True

            count = max(count, prefix(within_excess))
        return [segment for segment, _ in deletable[:count]]

    def delete_segments(self, segments: list[Segment], now_ms: int) -> None:
        """Takes segments out of the log. Their files are renamed `.deleted` and stay open
        until `file.delete.delay.ms` has passed, so reads already under way finish."""
        if not segments:
            return
        if self.active in segments:
            self.roll(now_ms)
        for segment in segments:
            self.segments.remove(segment)
            segment.retire()
            self.retired.append((now_ms + self.config.file_delete_delay_ms, segment))
            self.producers.delete_snapshot(segment.base_offset)
        self._bases = [s.base_offset for s in self.segments]
        self._move_log_start_offset(self.segments[0].base_offset)

    def replace_segments(self, replacements: list[tuple[Segment, list[Segment]]], now_ms: int) -> None:
        """Swaps cleaned segments (files suffixed `.cleaned`) in for the consecutive
        segments each was made from, as Kafka's replaceSegments: the new files become
        `.swap`, the old segments are retired as `delete_segments` retires them, and
        only then do the new files take the live names. open() completes or drops
        whatever a crash interrupts."""
        for new, _ in replacements:
            new.change_suffix(SWAP_SUFFIX)
        fsync_directory(self.directory)
        segments = list(self.segments)
        due = now_ms + self.config.file_delete_delay_ms
        for new, old in replacements:
            first = segments.index(old[0])
            segments[first : first + len(old)] = [new]
            for segment in old:
                segment.retire()
                self.retired.append((due, segment))
                if segment.base_offset != new.base_offset:
                    self.producers.delete_snapshot(segment.base_offset)
        for new, _ in replacements:
            new.change_suffix("")
            new.keep_open_within(self.open_files)
        fsync_directory(self.directory)
        # Bases first: flush() in a worker reads segments, then bases, and a stale list
        # with fresh bases only makes it fsync more.
        self._bases = [s.base_offset for s in segments]
        self.segments = segments

    def remove_retired(self, now_ms: int, force: bool = False) -> None:
        keep = []
        for due, segment in self.retired:
            if force or due <= now_ms:
                segment.delete_files()
            else:
                keep.append((due, segment))
        self.retired = keep

    # Lifecycle

    def close(self) -> None:
        """Flushes what is not durable yet, snapshots producer state, and closes the files."""
        self.remove_retired(0, force=True)
        self.epochs.write_pending()
        if self.next_offset > self.log_start_offset:
            self.producers.take_snapshot()
        for segment in self.segments[self._segment_index(self.recovery_point) :]:
            segment.fsync()
        for segment in self.segments:
            segment.index.write()
            segment.time_index.write()
            segment.close()

    def abandon(self) -> None:
        """Closes the files as a killed process leaves them: nothing flushed or written."""
        for segment in [*self.segments, *(segment for _, segment in self.retired)]:
            segment.close()

    def delete(self) -> None:
        for segment in self.segments:
            segment.delete_files()
        for leftover in self.directory.iterdir():
            leftover.unlink()
        self.directory.rmdir()

