"""The log cleaner: compaction for cleanup.policy=compact (and compact,delete).

Kafka's LogCleaner, Cleaner and LogCleanerManager, as plain objects driven by the
caller's clock. Cleaning keeps, in the closed segments below the last stable offset,
the latest record of each key; offsets are never renumbered, so a cleaned log has gaps.
The work is split so that a server can keep its event loop free:

- `LogCleaner.prepare` reads only closed segments, which nothing else writes, and
  writes the cleaned copies beside them as `<base>.log.cleaned` (with their indexes).
  It may run in a worker thread while appends go on to the active segment.
- `LogCleaner.commit` swaps them in (`PartitionLog.replace_segments`): quick, on the
  event loop. The old segments stay readable until file.delete.delay.ms has passed.

Which log to clean, and from where, comes from `filthiest`/`to_clean` given each log's
cleaner checkpoint (the first dirty offset, kept by the LogManager).

Transactions are not cleaned yet: transactional and control batches are copied as they
are, and their records neither replace nor are replaced by other records of their key.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..wire.compression import Codec, DecompressedTooLarge
from ..wire.records import DELETE_HORIZON_BIT, NO_TIMESTAMP, BatchHeader, Record, decode_records, encode_batch, read_header
from .config import LONG_MAX
from .partition import PartitionLog
from .segment import Segment
from .swaps import CLEANED_SUFFIX

INT_MAX = 2**31 - 1
_OFFSET_ENTRY_BYTES = 8
_TIME_ENTRY_BYTES = 12
_WRITE_CHUNK = 1 << 20

Key = TypeVar("Key")
logger = logging.getLogger(__name__)


def segments_between(segments: Sequence[Segment], start: int, end: int) -> list[Segment]:
    """The segments that may hold offsets in [start, end) (Kafka's logSegments(from, to))."""
    if start >= end:
        return []
    first = max(bisect_right([s.base_offset for s in segments], start) - 1, 0)
    return [s for s in segments[first:] if s.base_offset < end]


def _closed_from(segments: Sequence[Segment], offset: int) -> list[Segment]:
    """The segments from the one holding offset up to the active one, excluded."""
    return segments_between(segments, offset, segments[-1].base_offset)


@dataclass(frozen=True)
class LogToClean:
    """A log and the range a clean would cover: from first_dirty_offset (what the last
    clean reached) up to first_uncleanable_offset (a segment's base offset)."""

    log: PartitionLog
    first_dirty_offset: int
    first_uncleanable_offset: int
    clean_bytes: int
    cleanable_bytes: int
    needs_compaction_now: bool  # max.compaction.lag.ms has passed for some dirty record

    @property
    def total_bytes(self) -> int:
        return self.clean_bytes + self.cleanable_bytes

    @property
    def cleanable_ratio(self) -> float:
        return self.cleanable_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def is_due(self) -> bool:
        """Kafka's threshold: dirty enough, or holding records past max.compaction.lag.ms."""
        return (self.needs_compaction_now and self.cleanable_bytes > 0) or (
            self.cleanable_ratio > self.log.config.min_cleanable_dirty_ratio
        )


def cleanable_offsets(log: PartitionLog, checkpoint: int | None, now_ms: int) -> tuple[int, int]:
    """(first dirty offset, first uncleanable offset), as Kafka's LogCleanerManager: a
    checkpoint outside the log restarts from the log start offset; cleaning stops at the
    last stable offset, the active segment, and the first closed dirty segment holding a
    record younger than min.compaction.lag.ms."""
    segments = list(log.segments)
    start = log.log_start_offset
    first_dirty = checkpoint if checkpoint is not None and start <= checkpoint <= log.next_offset else start
    limits = [log.last_stable_offset, segments[-1].base_offset]
    lag = max(log.config.min_compaction_lag_ms, 0)
    if lag > 0:
        limits += [s.base_offset for s in _closed_from(segments, first_dirty) if s.largest_timestamp() > now_ms - lag][:1]
    return first_dirty, max(first_dirty, min(limits))


def max_compaction_delay(log: PartitionLog, first_dirty: int, now_ms: int) -> int:
    """How long ago the oldest closed dirty segment's first batch passed max.compaction.lag.ms (0: not yet)."""
    firsts = [
        s.rolling_timestamp for s in _closed_from(list(log.segments), first_dirty)
        if s.rolling_timestamp is not None and s.rolling_timestamp > 0
    ]
    earliest = min(firsts, default=LONG_MAX)
    clean_until = now_ms - max(log.config.max_compaction_lag_ms, 0)
    return clean_until - earliest if earliest < clean_until else 0


def to_clean(log: PartitionLog, checkpoint: int | None, now_ms: int) -> LogToClean:
    first_dirty, uncleanable = cleanable_offsets(log, checkpoint, now_ms)
    segments = list(log.segments)
    closed = _closed_from(segments, uncleanable)
    first_uncleanable = (closed[0] if closed else segments[-1]).base_offset
    clean_bytes = sum(s.size for s in segments_between(segments, -1, first_dirty))
    dirty = segments_between(segments, min(first_dirty, first_uncleanable), first_uncleanable)
    return LogToClean(
        log, first_dirty, first_uncleanable, clean_bytes, sum(s.size for s in dirty),
        max_compaction_delay(log, first_dirty, now_ms) > 0,
    )


def needs_cleaning(log: PartitionLog, checkpoint: int | None, now_ms: int) -> LogToClean | None:
    """What to clean in a compacted log if it is due now, else None."""
    if not log.config.compact:
        return None
    candidate = to_clean(log, checkpoint, now_ms)
    return candidate if candidate.is_due else None


def filthiest(candidates: Iterable[tuple[Key, PartitionLog, int | None]], now_ms: int) -> tuple[Key, LogToClean] | None:
    """Of (key, log, cleaner checkpoint) candidates, the due log with the largest dirty
    share (Kafka's grabFilthiestCompactedLog)."""
    best: tuple[Key, LogToClean] | None = None
    for key, log, checkpoint in candidates:
        candidate = needs_cleaning(log, checkpoint, now_ms)
        if candidate is not None and (best is None or candidate.cleanable_ratio > best[1].cleanable_ratio):
            best = key, candidate
    return best


def group_segments_by_size(segments: Sequence[Segment], max_size: int, max_index_size: int, first_uncleanable: int) -> list[list[Segment]]:
    """Consecutive segments merged into groups that each fit one segment: log and index
    sizes within the limits, and offsets within 2^31 of the group's base offset."""
    groups: list[list[Segment]] = []
    i = 0
    while i < len(segments):
        group = [segments[i]]
        log_size, index_size, time_size = segments[i].size, len(segments[i].index), len(segments[i].time_index)
        i += 1
        while i < len(segments):
            s = segments[i]
            last_offset = segments[i + 1].base_offset - 1 if i + 1 < len(segments) else first_uncleanable - 1
            if (
                log_size + s.size > max_size
                or (index_size + len(s.index)) * _OFFSET_ENTRY_BYTES > max_index_size
                or (time_size + len(s.time_index)) * _TIME_ENTRY_BYTES > max_index_size
                or (s.size and last_offset - group[0].base_offset > INT_MAX)
            ):
                break
            group.append(s)
            log_size, index_size, time_size = log_size + s.size, index_size + len(s.index), time_size + len(s.time_index)
            i += 1
        groups.append(group)
    return groups


@dataclass
class CleanPlan:
    """Cleaned segments written beside a log, each with the segments it replaces."""

    log: PartitionLog
    directory: Path
    first_dirty_offset: int
    end_offset: int  # the first offset not cleaned: the next first dirty offset
    replacements: list[tuple[Segment, list[Segment]]]


@dataclass
class _Round:
    """What one clean decides records and batches by."""

    latest: dict[bytes, int]  # key -> offset of its latest record in the dirty range
    map_end: int  # records above the last offset the map took are kept as they are
    upper_bound: int  # the first uncleanable offset
    keep_empty: set[tuple[int, int]]  # (producer id, last offset) of producers' last batches
    now_ms: int
    delete_retention_ms: int
    max_batch_bytes: int  # the topic's max.message.bytes: a batch inflating past it stays as it is


class LogCleaner:
    """Cleans logs; holds no state between cleans.

    `max_map_entries` bounds the key map of one clean (Kafka's dedupe buffer): when the
    dirty range holds more keys, the clean stops where the map filled and the next one
    goes on from there. `producer_id_expiration_ms` is the broker's
    producer.id.expiration.ms: the last batch of a producer seen more recently is kept,
    emptied if need be, so that its sequence numbers survive."""

    def __init__(self, *, max_map_entries: int = 1_000_000, producer_id_expiration_ms: int = 86_400_000) -> None:
        if max_map_entries < 1:
            raise ValueError("the offset map must hold at least one key, or cleaning never moves on")
        self.max_map_entries = max_map_entries
        self.producer_id_expiration_ms = producer_id_expiration_ms

    def prepare(self, target: LogToClean, now_ms: int) -> CleanPlan:
        """Writes the cleaned segments as `.cleaned` files. Reads only closed segments;
        safe in a worker thread while the event loop appends to the log."""
        log = target.log
        segments = list(log.segments)
        directory = log.directory
        start, upper = target.first_dirty_offset, target.first_uncleanable_offset
        if start >= upper:
            return CleanPlan(log, directory, start, start, [])
        max_batch_bytes = log.config.max_message_bytes
        latest, map_end = self._build_offset_map(segments, start, upper, max_batch_bytes)
        rules = _Round(latest, map_end, upper, self._last_batches_of_producers(segments, now_ms), now_ms,
                       log.config.delete_retention_ms, max_batch_bytes)
        groups = group_segments_by_size(
            segments_between(segments, 0, map_end + 1), log.config.segment_bytes, log.config.segment_index_bytes, upper,
        )
        replacements: list[tuple[Segment, list[Segment]]] = []
        try:
            for group in groups:
                replacements.append((self._clean_group(log, directory, group, rules), group))
        except BaseException:
            for cleaned, _ in replacements:
                cleaned.delete_files()
            raise
        return CleanPlan(log, directory, start, map_end + 1, replacements)

    def commit(self, plan: CleanPlan, now_ms: int) -> int | None:
        """Swaps the cleaned segments in; returns the offset the next clean starts from.
        None if the log changed under the plan (partition deleted): the plan is dropped."""
        if not plan.replacements:
            return plan.end_offset
        if not self._still_applies(plan):
            self.abort(plan)
            return None
        plan.log.replace_segments(plan.replacements, now_ms)
        return plan.end_offset

    @staticmethod
    def abort(plan: CleanPlan) -> None:
        """Drops a plan that will not be committed, with its files."""
        for cleaned, _ in plan.replacements:
            cleaned.delete_files()

    @staticmethod
    def _still_applies(plan: CleanPlan) -> bool:
        if plan.log.directory != plan.directory:
            return False
        where = {id(s): i for i, s in enumerate(plan.log.segments)}
        for _, old in plan.replacements:
            positions = [where.get(id(s)) for s in old]
            if positions[0] is None or positions != list(range(positions[0], positions[0] + len(old))):
                return False
        return True

    def _build_offset_map(self, segments: Sequence[Segment], start: int, upper: int,
                          max_batch_bytes: int) -> tuple[dict[bytes, int], int]:
        """The latest offset of each key in [start, upper), and the last offset the map
        covers: upper - 1, or less if the map filled up."""
        latest: dict[bytes, int] = {}
        covered = start - 1
        dirty = segments_between(segments, start, upper)
        uppers = [s.base_offset for s in dirty[1:]] + [upper]
        for segment, segment_upper in zip(dirty, uppers, strict=True):
            for position, header in segment.batches(segment.index.lookup(start)):
                if not (header.is_control or header.is_transactional):
                    for record in _records(segment.read(position, header.size), header, max_batch_bytes) or ():
                        if record.key is None or record.offset < start:
                            continue
                        if record.key not in latest and len(latest) >= self.max_map_entries:
                            return latest, covered
                        latest[record.key] = covered = record.offset
                if header.last_offset >= start:
                    covered = max(covered, header.last_offset)
            covered = max(covered, segment_upper - 1)
        return latest, covered

    def _last_batches_of_producers(self, segments: Sequence[Segment], now_ms: int) -> set[tuple[int, int]]:
        """(producer id, last offset) of the last data batch of each producer that has
        not expired, over the whole log (Kafka's lastRecordsOfActiveProducers)."""
        last: dict[int, BatchHeader] = {}
        for segment in segments:
            for _, header in segment.batches():
                if header.producer_id >= 0 and not header.is_control:
                    last[header.producer_id] = header
        return {
            (pid, h.last_offset) for pid, h in last.items()
            if now_ms - h.max_timestamp < self.producer_id_expiration_ms
        }

    def _clean_group(self, log: PartitionLog, directory: Path, group: list[Segment], rules: _Round) -> Segment:
        cleaned = Segment.create(directory, group[0].base_offset, rules.now_ms, CLEANED_SUFFIX)
        interval = log.config.index_interval_bytes
        try:
            out = bytearray()
            headers: list[tuple[int, BatchHeader]] = []
            for segment in group:
                for position, header in segment.batches():
                    kept = _filter_batch(segment.read(position, header.size), header, rules)
                    if kept is None:
                        continue
                    headers.append((len(out), read_header(kept)))
                    out += kept
                    if len(out) >= _WRITE_CHUNK:
                        cleaned.append([out], len(out), headers, interval)
                        out, headers = bytearray(), []
            if out:
                cleaned.append([out], len(out), headers, interval)
            # Aborted transactions stay readable as such: their data is kept as it was.
            aborted = [t for segment in group for t in segment.txn_index.entries]
            if aborted:
                cleaned.txn_index.rewrite(aborted)
            # Time retention falls back on the file's age when records carry no timestamp.
            modified = group[-1].modified_ns()
            os.utime(cleaned.log_path, ns=(modified, modified))
            cleaned.flush()
        except BaseException:
            cleaned.delete_files()
            raise
        return cleaned


def _records(batch: bytes, header: BatchHeader, max_batch_bytes: int) -> list[Record] | None:
    """The batch's records, or None if they inflate past the topic's bound (a batch the
    broker never had to open on produce, as when the topic became compacted later):
    such a batch is kept whole and its keys do not count."""
    try:
        return decode_records(batch, header, max_batch_bytes)
    except DecompressedTooLarge:
        logger.warning("Cleaner keeps the batch at offset %d as it is: %s", header.base_offset,
                    f"it decompresses to more than max.message.bytes ({max_batch_bytes})")
        return None


def _retains(record: Record, rules: _Round, horizon: int | None) -> bool:
    """Kafka's shouldRetainRecord: the latest record of its key, and if a tombstone, one
    whose batch has no delete horizon yet or one not yet passed."""
    if record.offset > rules.map_end:
        return True
    if record.key is None or rules.latest.get(record.key, -1) > record.offset:
        return False
    return record.value is not None or horizon is None or rules.now_ms < horizon


def _filter_batch(batch: bytes, header: BatchHeader, rules: _Round) -> bytes | None:
    """The batch as the cleaned log keeps it, or None if it goes, with MemoryRecords.filterTo's
    rules: a batch keeps its base and last offsets, producer fields, leader epoch and
    codec; one whose records all stay is copied as is unless a tombstone in it needs
    a delete horizon; an emptied batch goes unless it is a live producer's last or the
    last of this clean, whose header alone then stays."""
    records = None if header.is_control or header.is_transactional else _records(batch, header, rules.max_batch_bytes)
    if records is None:
        return batch
    horizon = header.base_timestamp if header.attributes & DELETE_HORIZON_BIT else None
    retained = [r for r in records if _retains(r, rules, horizon)]
    if retained:
        stamp = horizon is None and any(r.value is None for r in retained)
        if len(retained) == len(records) and not stamp:
            return batch
        return encode_batch(
            retained, base_offset=header.base_offset, last_offset_delta=header.last_offset_delta,
            max_timestamp=header.max_timestamp if header.log_append_time else None, codec=header.codec,
            producer_id=header.producer_id, producer_epoch=header.producer_epoch, base_sequence=header.base_sequence,
            log_append_time=header.log_append_time, partition_leader_epoch=header.partition_leader_epoch,
            delete_horizon_ms=rules.now_ms + rules.delete_retention_ms if stamp else horizon,
        )
    if (header.producer_id, header.last_offset) in rules.keep_empty or header.next_offset == rules.upper_bound:
        return encode_batch(
            [], base_offset=header.base_offset, last_offset_delta=header.last_offset_delta,
            base_timestamp=NO_TIMESTAMP, max_timestamp=header.max_timestamp, codec=Codec.NONE,
            producer_id=header.producer_id, producer_epoch=header.producer_epoch, base_sequence=header.base_sequence,
            log_append_time=header.log_append_time, partition_leader_epoch=header.partition_leader_epoch,
        )
    return None
