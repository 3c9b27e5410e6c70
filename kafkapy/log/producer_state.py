"""Idempotent and transactional producers, as one partition sees them.

For each producer id: its epoch, the sequence ranges and offsets of its last five
batches (to answer a retried batch with the offsets it already got), the coordinator
epoch of its last transaction marker, and where its open transaction began. From the
open transactions follows the partition's first unstable offset, and with it the last
stable offset that read_committed consumers may read up to.

State is rebuilt from `.snapshot` files (Kafka's ProducerSnapshot layout) plus the
batches after the snapshot, so it survives restarts without scanning the whole log.
"""

import io
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, cast

from crc32c import crc32c
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType
from kio.static.primitive import i16, i32, i64, u32

from ..wire.records import BatchHeader
from .files import names_ending, replace_file

BATCHES_TO_RETAIN = 5
NO_SEQUENCE = -1
NO_EPOCH = -1
SNAPSHOT_SUFFIX = ".snapshot"
_SNAPSHOT_VERSION = 1
_CRC_END = 6  # version (2 bytes) and crc (4 bytes) precede the checksummed entries


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotEntry:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    producer_id: i64 = field(metadata={"kafka_type": "int64"})
    epoch: i16 = field(metadata={"kafka_type": "int16"})
    last_sequence: i32 = field(metadata={"kafka_type": "int32"})
    last_offset: i64 = field(metadata={"kafka_type": "int64"})
    offset_delta: i32 = field(metadata={"kafka_type": "int32"})
    timestamp: i64 = field(metadata={"kafka_type": "int64"})
    coordinator_epoch: i32 = field(metadata={"kafka_type": "int32"})
    current_txn_first_offset: i64 = field(metadata={"kafka_type": "int64"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerSnapshot:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = False
    crc: u32 = field(metadata={"kafka_type": "uint32"})
    producer_entries: tuple[SnapshotEntry, ...]


class ProducerStateError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class BatchMetadata:
    last_seq: int
    last_offset: int
    offset_delta: int
    timestamp: int

    @property
    def first_seq(self) -> int:
        return (self.last_seq - self.offset_delta) % 2**31 if self.last_seq >= 0 else NO_SEQUENCE

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


@dataclass
class ProducerEntry:
    producer_id: int
    epoch: int = NO_EPOCH
    coordinator_epoch: int = -1
    last_timestamp: int = -1
    current_txn_first_offset: int | None = None
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_TO_RETAIN))

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def duplicate_of(self, header: BatchHeader) -> BatchMetadata | None:
        if header.producer_epoch != self.epoch:
            return None
        for batch in self.batches:
            if batch.first_seq == header.base_sequence and batch.last_seq == header.last_sequence:
                return batch
        return None

    def bump_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.batches.clear()
            self.epoch = epoch


@dataclass(frozen=True)
class CompletedTxn:
    producer_id: int
    first_offset: int
    last_offset: int  # the offset of its marker
    aborted: bool


@dataclass
class VerificationState:
    """A KIP-890 verification begun for a producer's transaction on this partition. The
    append it clears must find the same guard: a marker written meanwhile ends the
    transaction and drops the state, so that the verified batch cannot reopen it."""

    epoch: int
    timestamp: int
    guard: object = field(default_factory=object)


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == 2**31 - 1)


class ProducerStateManager:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.producers: dict[int, ProducerEntry] = {}
        self.ongoing: dict[int, int] = {}  # first offset of an open transaction -> producer id
        self.last_map_offset = 0  # the offset after the last batch applied
        self.verifications: dict[int, VerificationState] = {}  # producer id -> its verification in progress

    # Checking an append before it is written

    def duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        """The batch this one repeats (a producer retry), if it is among the last five."""
        entry = self.producers.get(header.producer_id)
        return entry.duplicate_of(header) if entry else None

    def check(self, headers: Iterable[BatchHeader], from_client: bool) -> None:
        """Kafka's producer checks of data batches about to be appended: epoch fencing,
        sequence order, and no plain write inside an open transaction."""
        scratch: dict[int, tuple[int, int, bool]] = {}  # producer id -> (epoch, last seq, in txn)
        for header in headers:
            if header.producer_id < 0 or header.is_control:
                continue
            entry = self.producers.get(header.producer_id)
            epoch, last_seq, in_txn = scratch.get(
                header.producer_id,
                (entry.epoch, entry.last_seq, entry.current_txn_first_offset is not None) if entry else (NO_EPOCH, NO_SEQUENCE, False),
            )
            if header.producer_epoch < epoch:
                raise ProducerStateError(
                    ErrorCode.invalid_producer_epoch,
                    f"Epoch of producer {header.producer_id} is {header.producer_epoch}, smaller than the last seen epoch {epoch}",
                )
            if from_client:
                if header.producer_epoch != epoch:
                    if header.base_sequence != 0 and epoch != NO_EPOCH:
                        raise ProducerStateError(
                            ErrorCode.out_of_order_sequence_number,
                            f"Invalid sequence number {header.base_sequence} for new epoch {header.producer_epoch} of producer {header.producer_id}",
                        )
                elif epoch != NO_EPOCH and not _in_sequence(last_seq, header.base_sequence):
                    raise ProducerStateError(
                        ErrorCode.out_of_order_sequence_number,
                        f"Out of order sequence number for producer {header.producer_id}: "
                        f"{header.base_sequence} (incoming), {last_seq} (current end)",
                    )
            if in_txn and not header.is_transactional:
                raise ProducerStateError(
                    ErrorCode.invalid_txn_state, f"Expected a transactional write from producer {header.producer_id}"
                )
            scratch[header.producer_id] = (header.producer_epoch, header.last_sequence, in_txn or header.is_transactional)

    def check_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int) -> None:
        entry = self.producers.get(producer_id)
        if entry is None:
            return
        if producer_epoch < entry.epoch:
            raise ProducerStateError(
                ErrorCode.invalid_producer_epoch,
                f"Marker epoch {producer_epoch} of producer {producer_id} is older than {entry.epoch}",
            )
        if coordinator_epoch < entry.coordinator_epoch:
            raise ProducerStateError(
                ErrorCode.transaction_coordinator_fenced,
                f"Invalid coordinator epoch {coordinator_epoch} for producer {producer_id}: {entry.coordinator_epoch} is current",
            )

    # Transaction verification (KIP-890)

    def has_ongoing_transaction(self, producer_id: int, producer_epoch: int) -> bool:
        """Whether the producer, at this epoch, has a transaction open here: its later
        batches need no verification."""
        entry = self.producers.get(producer_id)
        return entry is not None and entry.epoch == producer_epoch and entry.current_txn_first_offset is not None

    def start_verification(self, producer_id: int, producer_epoch: int, now_ms: int) -> object:
        """The guard of the producer's verification, begun now unless one is in progress."""
        state = self.verifications.get(producer_id)
        if state is None:
            state = self.verifications[producer_id] = VerificationState(producer_epoch, now_ms)
        elif producer_epoch > state.epoch:
            state.epoch = producer_epoch
        return state.guard

    def verification_guard(self, producer_id: int) -> object | None:
        state = self.verifications.get(producer_id)
        return state.guard if state is not None else None

    # Applying what was written

    def apply(self, header: BatchHeader, marker: tuple[bool, int] | None = None) -> CompletedTxn | None:
        """Takes an appended batch (with its final offsets) into account. For a control
        batch, `marker` is (aborted, coordinator epoch); returns the transaction it ends."""
        self.last_map_offset = max(self.last_map_offset, header.next_offset)
        if header.producer_id < 0:
            return None
        entry = self.producers.setdefault(header.producer_id, ProducerEntry(header.producer_id))
        if header.is_control or header.is_transactional:
            # A transaction began (it needs no verification any more) or ended (a verification
            # begun before must not start another).
            self.verifications.pop(header.producer_id, None)
        if header.is_control:
            if marker is None:
                return None  # an emptied control batch: its transaction was cleaned away
            aborted, coordinator_epoch = marker
            entry.bump_epoch(header.producer_epoch)
            entry.coordinator_epoch = coordinator_epoch
            entry.last_timestamp = header.max_timestamp
            first = entry.current_txn_first_offset
            entry.current_txn_first_offset = None
            if first is None:
                return None
            self.ongoing.pop(first, None)
            return CompletedTxn(header.producer_id, first, header.base_offset, aborted)
        entry.bump_epoch(header.producer_epoch)
        entry.batches.append(BatchMetadata(header.last_sequence, header.last_offset, header.last_offset_delta, header.max_timestamp))
        entry.last_timestamp = header.max_timestamp
        if header.is_transactional and entry.current_txn_first_offset is None:
            entry.current_txn_first_offset = header.base_offset
            self.ongoing[header.base_offset] = header.producer_id
        return None

    @property
    def first_unstable_offset(self) -> int | None:
        return min(self.ongoing) if self.ongoing else None

    def remove_expired(self, now_ms: int, expiration_ms: int) -> None:
        """Forgets producers idle for longer than producer.id.expiration.ms, unless their transaction is open."""
        for producer_id, entry in list(self.producers.items()):
            if entry.current_txn_first_offset is None and now_ms - entry.last_timestamp >= expiration_ms:
                del self.producers[producer_id]
        for producer_id, state in list(self.verifications.items()):
            if now_ms - state.timestamp >= expiration_ms:
                del self.verifications[producer_id]

    def truncate(self) -> None:
        self.producers.clear()
        self.verifications.clear()
        self.ongoing.clear()
        self.last_map_offset = 0

    # Snapshots

    def snapshot_path(self, offset: int) -> Path:
        return self.directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"

    def snapshot_offsets(self) -> list[int]:
        return sorted(int(name[: -len(SNAPSHOT_SUFFIX)]) for name in names_ending(self.directory, SNAPSHOT_SUFFIX))

    def take_snapshot(self) -> None:
        """Writes the state as of last_map_offset (atomically, synced), if not written yet."""
        path = self.snapshot_path(self.last_map_offset)
        if path.exists():
            return
        # cast, not kio's i64(...) and the like, which check the range at ~0.35 µs a field and
        # would make a snapshot of many producers about 3 times slower; the log's batches
        # these values come from were in range.
        entries = tuple(
            SnapshotEntry(
                producer_id=cast(i64, e.producer_id), epoch=cast(i16, e.epoch), last_sequence=cast(i32, e.last_seq),
                last_offset=cast(i64, e.batches[-1].last_offset if e.batches else -1),
                offset_delta=cast(i32, e.batches[-1].offset_delta if e.batches else 0),
                timestamp=cast(i64, e.last_timestamp), coordinator_epoch=cast(i32, e.coordinator_epoch),
                current_txn_first_offset=cast(i64, -1 if e.current_txn_first_offset is None else e.current_txn_first_offset),
            )
            for e in self.producers.values()
        )
        body = _encode(ProducerSnapshot(crc=u32(0), producer_entries=entries))
        data = bytearray(struct.pack(">h", _SNAPSHOT_VERSION)) + body
        struct.pack_into(">I", data, 2, crc32c(bytes(data[_CRC_END:])))
        replace_file(path, data)

    def load_snapshot(self, at_most: int) -> bool:
        """Loads the latest readable snapshot at or below offset `at_most`; corrupt ones are deleted."""
        for offset in reversed(self.snapshot_offsets()):
            if offset > at_most:
                continue
            path = self.snapshot_path(offset)
            entries = _read_snapshot(path)
            if entries is None:
                path.unlink()
                continue
            self.truncate()
            for s in entries:
                entry = ProducerEntry(s.producer_id, s.epoch, s.coordinator_epoch, s.timestamp,
                                      s.current_txn_first_offset if s.current_txn_first_offset >= 0 else None)
                if s.last_offset >= 0:
                    entry.batches.append(BatchMetadata(s.last_sequence, s.last_offset, s.offset_delta, s.timestamp))
                self.producers[s.producer_id] = entry
                if entry.current_txn_first_offset is not None:
                    self.ongoing[entry.current_txn_first_offset] = s.producer_id
            self.last_map_offset = offset
            return True
        return False

    def delete_snapshot(self, offset: int) -> None:
        """Removes the snapshot taken at `offset`, if any: that of a segment deleted
        (retention, DeleteRecords, or merged away by the cleaner), taken when it began."""
        self.snapshot_path(offset).unlink(missing_ok=True)

    def remove_stray_snapshots(self, segment_bases: list[int]) -> None:
        """Keeps, as Kafka's removeStraySnapshots, the snapshots taken at a segment's base
        offset, and of the others only the latest, and that only above the last segment's
        base (a clean shutdown's, at the log end): the others were left by segments gone
        or by earlier shutdowns, and only the latest of them can save a replay."""
        bases = set(segment_bases)
        strays = [offset for offset in self.snapshot_offsets() if offset not in bases]
        if strays and segment_bases and strays[-1] > max(segment_bases):
            strays.pop()
        for offset in strays:
            self.delete_snapshot(offset)

    def delete_snapshots(self, below: int | None = None, above: int | None = None) -> None:
        """Removes snapshots below the log start offset or past the log end."""
        for offset in self.snapshot_offsets():
            if (below is not None and offset < below) or (above is not None and offset > above):
                self.snapshot_path(offset).unlink(missing_ok=True)


def _encode(snapshot: ProducerSnapshot) -> bytes:
    out = io.BytesIO()
    entity_writer(ProducerSnapshot)(out, snapshot)
    return out.getvalue()


def _read_snapshot(path: Path) -> tuple[SnapshotEntry, ...] | None:
    data = path.read_bytes()
    if len(data) < _CRC_END or struct.unpack_from(">h", data, 0)[0] != _SNAPSHOT_VERSION:
        return None
    try:
        snapshot, _ = entity_reader(ProducerSnapshot)(data, 2)
    except Exception:
        return None
    if snapshot.crc != crc32c(data[_CRC_END:]):
        return None
    return snapshot.producer_entries
