"""The transaction coordinator, sans-IO: InitProducerId for a transactional id,
AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions,
with the semantics of Kafka's TransactionCoordinator and TransactionStateManager at
transaction.version 0 (the epoch is bumped by InitProducerId and by fencing, not by
every EndTxn).

Every call returns a TxnResult: the `__transaction_state` records to append, the replies
to deliver once those records are durable, and the transaction markers to write once
they are durable. The shell reports written markers with `markers_written`, which
completes the transaction. As in Kafka, EndTxn is answered once its PrepareCommit or
PrepareAbort is durable, without waiting for the markers: until they are written the
transactional id answers CONCURRENT_TRANSACTIONS. The coordinator updates its own state
as it writes records. Its state is that of the `__transaction_state` partitions this
broker leads: `replay` rebuilds a partition's state from its records when the broker
becomes its leader, `loaded` resumes its transactions, `unload` drops it.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig
from ..wire.build import ms
from .java_hash import java_string_hash
from .producer_ids import ProducerIdManager
from .records.framing import UnknownRecordType
from .records.transaction_state import (
    TransactionLogKey,
    decode_transaction_log_key,
    decode_transaction_log_value,
    encode_transaction_log_key,
    encode_transaction_log_value,
)
from .timers import Timers
from .transaction_metadata import (
    EXPIRABLE_STATES,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    TopicPartition,
    TransactionMetadata,
    TransactionState,
    TxnError,
    is_epoch_exhausted,
)
from .txn_markers import CONSUMER_OFFSETS_TOPIC, MarkerRequest

# Kafka's default transaction.remove.expired.transaction.cleanup.interval.ms.
EXPIRED_ID_CLEANUP_INTERVAL_MS = 3_600_000
# The first version of each API that knows PRODUCER_FENCED; older clients are told
# INVALID_PRODUCER_EPOCH instead, which they handle the same way.
INIT_PRODUCER_ID_FENCED_SINCE = 4
ADD_PARTITIONS_FENCED_SINCE = 2
ADD_OFFSETS_FENCED_SINCE = 2
END_TXN_FENCED_SINCE = 2
# From this version AddPartitionsToTxn batches transactions (sent by brokers).
ADD_PARTITIONS_BATCHED_SINCE = 4

_PREPARING = (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT)
_UTC_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass
class TxnResult:
    records: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)
    """(__transaction_state partition, key, value) to append, in order."""
    replies: list[tuple[object, dict]] = field(default_factory=list)
    """(token, response) to deliver once `records` are durable."""
    markers: list[MarkerRequest] = field(default_factory=list)
    """Markers to write once `records` are durable."""


def _operation(method: Callable[..., None]) -> Callable[..., TxnResult]:
    """Runs a coordinator operation and returns what it produced."""

    @functools.wraps(method)
    def run(self: TransactionCoordinator, *args: Any, **kwargs: Any) -> TxnResult:
        self._out = TxnResult()
        method(self, *args, **kwargs)
        out, self._out = self._out, TxnResult()
        return out

    return run


def _for_version(error: ErrorCode, version: int, fenced_since: int) -> ErrorCode:
    if error is ErrorCode.producer_fenced and version < fenced_since:
        return ErrorCode.invalid_producer_epoch
    return error


def _init_response(version: int, error: ErrorCode, producer_id: int = NO_PRODUCER_ID,
                   producer_epoch: int = NO_PRODUCER_EPOCH) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": _for_version(error, version, INIT_PRODUCER_ID_FENCED_SINCE),
            "producer_id": producer_id, "producer_epoch": producer_epoch,
            "ongoing_txn_producer_id": NO_PRODUCER_ID, "ongoing_txn_producer_epoch": NO_PRODUCER_EPOCH}


def _end_response(version: int, error: ErrorCode, producer_id: int = NO_PRODUCER_ID,
                  producer_epoch: int = NO_PRODUCER_EPOCH) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": _for_version(error, version, END_TXN_FENCED_SINCE),
            "producer_id": producer_id, "producer_epoch": producer_epoch}


def _requested_partitions(topics: Iterable[Any]) -> list[TopicPartition]:
    """The partitions of a request's topics, in request order, each once."""
    return list(dict.fromkeys((topic.name, partition) for topic in topics for partition in topic.partitions))


def _topic_results(errors: Mapping[TopicPartition, ErrorCode]) -> list[dict[str, Any]]:
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), error in errors.items():
        by_topic.setdefault(topic, []).append({"partition_index": partition, "partition_error_code": error})
    return [{"name": topic, "results_by_partition": results} for topic, results in by_topic.items()]


def transaction_state_error(transactional_id: str, error: ErrorCode) -> dict[str, Any]:
    """DescribeTransactions' entry for a transactional id it does not describe."""
    return {"error_code": error, "transactional_id": transactional_id, "transaction_state": "",
            "transaction_timeout": 0, "transaction_start_time": _timestamp(0), "producer_id": 0,
            "producer_epoch": 0, "topics": []}


def _timestamp(ms_since_epoch: int) -> datetime.datetime:
    # A datetime rather than milliseconds: build() would turn -1 into null, which this
    # non-nullable field cannot carry.
    return _UTC_EPOCH + datetime.timedelta(milliseconds=ms_since_epoch)


def _may_resume(metadata: TransactionMetadata, producer_id: int, producer_epoch: int) -> bool:
    """Whether a producer that held producer_id at producer_epoch may start the next
    session of this transactional id (KIP-360), rather than being fenced: the id is
    new, or the producer id is the current one (its epoch is judged on bumping), or
    the producer retries the InitProducerId that rotated its exhausted producer id."""
    return (
        metadata.producer_epoch == NO_PRODUCER_EPOCH
        or producer_id == metadata.producer_id
        or (producer_id == metadata.previous_producer_id and is_epoch_exhausted(producer_epoch))
    )


class TransactionCoordinator:
    def __init__(self, config: BrokerConfig, clock: Clock, num_partitions: int, producer_ids: ProducerIdManager) -> None:
        self._clock = clock
        self._num_partitions = num_partitions
        self._producer_ids = producer_ids
        self._max_timeout_ms = config.int("transaction.max.timeout.ms")
        self._id_expiration_ms = config.int("transactional.id.expiration.ms")
        self.transactions: dict[str, TransactionMetadata] = {}
        self._coordinator_epochs: dict[int, int] = {}
        self._timers = Timers()
        self._out = TxnResult()
        self._schedule_periodically("abort-timed-out-transactions",
                                    config.int("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
                                    self._abort_timed_out_transactions)
        self._schedule_periodically("expire-transactional-ids", EXPIRED_ID_CLEANUP_INTERVAL_MS,
                                    self._expire_transactional_ids)

    # Routing, loading and time

    def partition_for(self, transactional_id: str) -> int:
        # Kafka's Utils.abs: the absolute value, except 0 for Integer.MIN_VALUE.
        return abs(java_string_hash(transactional_id)) % (1 << 31) % self._num_partitions

    def set_coordinator_epoch(self, partition: int, epoch: int) -> None:
        """The leader epoch of a `__transaction_state` partition this coordinator leads,
        as Kafka's coordinator epoch: written into its markers, so that a partition can
        refuse the markers of a coordinator that led the partition before."""
        self._coordinator_epochs[partition] = epoch

    def replay(self, partition: int, key: bytes, value: bytes | None) -> None:
        try:
            record_key = decode_transaction_log_key(key)
        except UnknownRecordType:
            return  # left by a newer broker: Kafka skips it too
        transactional_id = record_key.transactional_id
        record_value = decode_transaction_log_value(value)
        if record_value is None:
            self.transactions.pop(transactional_id, None)
        else:
            self.transactions[transactional_id] = TransactionMetadata.from_log_value(transactional_id, record_value)

    @_operation
    def loaded(self, partition: int) -> None:
        # A transaction whose end was recorded may not have all its markers: write them
        # again. Ongoing ones are left to their producer, or to their timeout.
        for metadata in self.transactions.values():
            if metadata.state in _PREPARING and self.partition_for(metadata.transactional_id) == partition:
                self._send_markers(metadata)

    def unload(self, partition: int) -> list[str]:
        """Drops the partition's transactions (this broker no longer leads it): their
        transactional ids, whose pending markers the shell gives up."""
        dropped = [t for t in self.transactions if self.partition_for(t) == partition]
        for transactional_id in dropped:
            del self.transactions[transactional_id]
        self._coordinator_epochs.pop(partition, None)
        return dropped

    @_operation
    def tick(self) -> None:
        self._timers.fire_due(self._clock.monotonic_ms())

    def next_deadline(self) -> int | None:
        return self._timers.next_deadline()

    # InitProducerId

    @_operation
    def init_producer_id(self, version: int, request: Any, token: object) -> None:
        if request.transactional_id is None:
            raise ValueError("InitProducerId without a transactional id is answered by the shell")
        try:
            metadata = self._init_producer_id(request)
        except TxnError as e:
            self._reply(token, _init_response(version, e.code))
        else:
            self._reply(token, _init_response(version, ErrorCode.none, metadata.producer_id, metadata.producer_epoch))

    def _init_producer_id(self, request: Any) -> TransactionMetadata:
        transactional_id: str = request.transactional_id
        timeout_ms = ms(request.transaction_timeout)
        if getattr(request, "enable2_pc", False):
            # Two-phase commit (KIP-939) is off, as transaction.two.phase.commit.enable is by default.
            raise TxnError(ErrorCode.transactional_id_authorization_failed)
        if getattr(request, "keep_prepared_txn", False):
            raise TxnError(ErrorCode.unsupported_version)
        expected = self._expected_producer(request)
        if not transactional_id:
            raise TxnError(ErrorCode.invalid_request)
        if not 0 < timeout_ms <= self._max_timeout_ms:
            raise TxnError(ErrorCode.invalid_transaction_timeout)
        metadata = self.transactions.get(transactional_id)
        if metadata is None:
            metadata = TransactionMetadata(transactional_id, self._producer_ids.generate(), NO_PRODUCER_EPOCH, timeout_ms,
                                           TransactionState.EMPTY, self._clock.wall_ms())
            self.transactions[transactional_id] = metadata
        if expected is not None and not _may_resume(metadata, *expected):
            raise TxnError(ErrorCode.producer_fenced)
        if metadata.state in _PREPARING:
            raise TxnError(ErrorCode.concurrent_transactions)
        if metadata.state is TransactionState.ONGOING:
            # The transaction belongs to the producer being replaced: fence it and abort
            # the transaction. The caller retries until the abort is complete, and then
            # gets the epoch after the fenced one (or a new producer id, if the fence
            # exhausted the epochs).
            self._fence_and_abort(metadata)
            raise TxnError(ErrorCode.concurrent_transactions)
        now_ms = self._clock.wall_ms()
        expected_epoch = None if expected is None else expected[1]
        if metadata.epoch_exhausted and expected_epoch in (None, metadata.producer_epoch):
            metadata.rotate_producer_id(self._producer_ids.generate(), timeout_ms, now_ms,
                                        remember_last_epoch=expected is not None)
        else:
            metadata.bump_epoch(expected_epoch, timeout_ms, now_ms)
        self._write(metadata)
        return metadata

    @staticmethod
    def _expected_producer(request: Any) -> tuple[int, int] | None:
        """The (producer id, epoch) the producer had (v3+), which it asks to resume."""
        producer_id = getattr(request, "producer_id", NO_PRODUCER_ID)
        producer_epoch = getattr(request, "producer_epoch", NO_PRODUCER_EPOCH)
        if producer_id == NO_PRODUCER_ID and producer_epoch == NO_PRODUCER_EPOCH:
            return None
        if producer_id == NO_PRODUCER_ID or producer_epoch == NO_PRODUCER_EPOCH:
            raise TxnError(ErrorCode.invalid_request)
        return producer_id, producer_epoch

    # AddPartitionsToTxn, AddOffsetsToTxn

    @_operation
    def add_partitions_to_txn(
        self, version: int, request: Any, token: object,
        partition_errors: Mapping[TopicPartition, ErrorCode] | None = None,
    ) -> None:
        """partition_errors: what the shell found wrong with some of the partitions
        (UNKNOWN_TOPIC_OR_PARTITION; TOPIC_AUTHORIZATION_FAILED for an internal topic
        before v4). As in Kafka, a transaction with any of them adds nothing, and its
        other partitions are answered OPERATION_NOT_ATTEMPTED."""
        errors = partition_errors or {}
        if version < ADD_PARTITIONS_BATCHED_SINCE:
            results = self._add_partitions_of(
                version, request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
                request.v3_and_below_producer_epoch, _requested_partitions(request.v3_and_below_topics), False, errors,
            )
            self._reply(token, {"throttle_time": 0, "error_code": ErrorCode.none, "results_by_transaction": [],
                                "results_by_topic_v3_and_below": _topic_results(results)})
            return
        transaction_results = [
            {"transactional_id": t.transactional_id, "topic_results": _topic_results(self._add_partitions_of(
                version, t.transactional_id, t.producer_id, t.producer_epoch, _requested_partitions(t.topics),
                t.verify_only, errors,
            ))}
            for t in request.transactions
        ]
        self._reply(token, {"throttle_time": 0, "error_code": ErrorCode.none, "results_by_transaction": transaction_results,
                            "results_by_topic_v3_and_below": []})

    def _add_partitions_of(
        self, version: int, transactional_id: str, producer_id: int, producer_epoch: int,
        partitions: list[TopicPartition], verify_only: bool, partition_errors: Mapping[TopicPartition, ErrorCode],
    ) -> dict[TopicPartition, ErrorCode]:
        """Adds (or only verifies) one transaction's partitions: each partition's error."""
        if any(tp in partition_errors for tp in partitions):
            return {tp: partition_errors.get(tp, ErrorCode.operation_not_attempted) for tp in partitions}
        try:
            if verify_only:
                return self._verify_partitions(transactional_id, producer_id, producer_epoch, partitions)
            self._add_partitions(transactional_id, producer_id, producer_epoch, partitions)
            error = ErrorCode.none
        except TxnError as e:
            error = _for_version(e.code, version, ADD_PARTITIONS_FENCED_SINCE)
        return dict.fromkeys(partitions, error)

    def _add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                        partitions: list[TopicPartition]) -> None:
        metadata = self._producer_transaction(transactional_id, producer_id, producer_epoch)
        if metadata.state in _PREPARING:
            raise TxnError(ErrorCode.concurrent_transactions)
        if metadata.state is TransactionState.ONGOING and metadata.partitions.issuperset(partitions):
            return  # already in the transaction: nothing to record
        metadata.add_partitions(partitions, self._clock.wall_ms())
        self._write(metadata)

    def _verify_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                           partitions: list[TopicPartition]) -> dict[TopicPartition, ErrorCode]:
        """Whether the partitions are in the transaction, for a broker about to append a
        transactional batch to them (KIP-890)."""
        metadata = self._producer_transaction(transactional_id, producer_id, producer_epoch)
        if metadata.state in _PREPARING:
            raise TxnError(ErrorCode.concurrent_transactions)
        return {tp: ErrorCode.none if tp in metadata.partitions else ErrorCode.transaction_abortable for tp in partitions}

    @_operation
    def add_offsets_to_txn(self, version: int, request: Any, token: object, group_partition: int) -> None:
        try:
            self._add_partitions(request.transactional_id, request.producer_id, request.producer_epoch,
                                 [(CONSUMER_OFFSETS_TOPIC, group_partition)])
            error = ErrorCode.none
        except TxnError as e:
            error = _for_version(e.code, version, ADD_OFFSETS_FENCED_SINCE)
        self._reply(token, {"throttle_time": 0, "error_code": error})

    # EndTxn and markers

    @_operation
    def end_txn(self, version: int, request: Any, token: object) -> None:
        try:
            metadata = self._end_txn(request.transactional_id, request.producer_id, request.producer_epoch,
                                     request.committed)
        except TxnError as e:
            self._reply(token, _end_response(version, e.code))
        else:
            self._reply(token, _end_response(version, ErrorCode.none, metadata.producer_id, metadata.producer_epoch))

    def _end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool) -> TransactionMetadata:
        metadata = self._producer_transaction(transactional_id, producer_id, producer_epoch)
        preparing, completed = (
            (TransactionState.PREPARE_COMMIT, TransactionState.COMPLETE_COMMIT) if commit
            else (TransactionState.PREPARE_ABORT, TransactionState.COMPLETE_ABORT)
        )
        if metadata.state is TransactionState.ONGOING:
            self._prepare_end(metadata, commit)
        elif metadata.state is preparing:
            raise TxnError(ErrorCode.concurrent_transactions)
        elif metadata.state is not completed:  # a retry of an EndTxn that completed is answered as it was
            raise TxnError(ErrorCode.invalid_txn_state)
        return metadata

    @_operation
    def markers_written(self, marker: MarkerRequest) -> None:
        metadata = self.transactions.get(marker.transactional_id)
        preparing = TransactionState.PREPARE_COMMIT if marker.commit else TransactionState.PREPARE_ABORT
        # Markers of a transaction already completed (reported twice, or written again
        # after a restart) change nothing.
        if (
            metadata is not None and metadata.state is preparing
            and (metadata.producer_id, metadata.producer_epoch) == (marker.producer_id, marker.producer_epoch)
        ):
            self._complete(metadata)

    def _fence_and_abort(self, metadata: TransactionMetadata) -> None:
        metadata.fence_epoch()
        self._prepare_end(metadata, commit=False)

    def _prepare_end(self, metadata: TransactionMetadata, commit: bool) -> None:
        metadata.prepare_end(commit, self._clock.wall_ms())
        self._write(metadata)
        self._send_markers(metadata)

    def _send_markers(self, metadata: TransactionMetadata) -> None:
        if not metadata.partitions:
            self._complete(metadata)  # no partition to mark
            return
        self._out.markers.append(MarkerRequest(
            transactional_id=metadata.transactional_id, producer_id=metadata.producer_id,
            producer_epoch=metadata.producer_epoch,
            coordinator_epoch=self._coordinator_epochs.get(self.partition_for(metadata.transactional_id), 0),
            commit=metadata.state is TransactionState.PREPARE_COMMIT, partitions=tuple(sorted(metadata.partitions)),
        ))

    def _complete(self, metadata: TransactionMetadata) -> None:
        metadata.complete(self._clock.wall_ms())
        self._write(metadata)

    # DescribeTransactions, ListTransactions

    def describe_transactions(self, version: int, request: Any) -> dict:
        return {"throttle_time": 0, "transaction_states": [self._describe(t) for t in request.transactional_ids]}

    def _describe(self, transactional_id: str) -> dict[str, Any]:
        metadata = self.transactions.get(transactional_id) if transactional_id else None
        if metadata is None:
            error = ErrorCode.transactional_id_not_found if transactional_id else ErrorCode.invalid_request
            return transaction_state_error(transactional_id, error)
        topics: dict[str, list[int]] = {}
        for topic, partition in sorted(metadata.partitions):
            topics.setdefault(topic, []).append(partition)
        return {
            "error_code": ErrorCode.none, "transactional_id": transactional_id, "transaction_state": metadata.state.value,
            "transaction_timeout": metadata.timeout_ms, "transaction_start_time": _timestamp(metadata.start_ms),
            "producer_id": metadata.producer_id, "producer_epoch": metadata.producer_epoch,
            "topics": [{"topic": topic, "partitions": partitions} for topic, partitions in topics.items()],
        }

    def list_transactions(self, version: int, request: Any) -> dict:
        pattern_text = getattr(request, "transactional_id_pattern", None)
        pattern = None
        if pattern_text:
            try:
                pattern = re.compile(pattern_text)
            except re.error:
                return {"throttle_time": 0, "error_code": ErrorCode.invalid_regular_expression,
                        "unknown_state_filters": [], "transaction_states": []}
        states: set[TransactionState] = set()
        unknown_states = []
        for name in request.state_filters:
            state = TransactionState.from_name(name)
            if state is None:
                unknown_states.append(name)
            else:
                states.add(state)
        producer_ids = set(request.producer_id_filters)
        duration_ms = getattr(request, "duration_filter", -1)
        now_ms = self._clock.wall_ms()

        def listed(metadata: TransactionMetadata) -> bool:
            return (
                (not producer_ids or metadata.producer_id in producer_ids)
                # Unknown state names still filter: given only those, nothing is listed.
                and (not request.state_filters or metadata.state in states)
                # As in Kafka, a transaction not started (start -1) counts as running since the epoch.
                and (duration_ms < 0 or now_ms - metadata.start_ms > duration_ms)
                and (pattern is None or pattern.fullmatch(metadata.transactional_id) is not None)
            )

        return {"throttle_time": 0, "error_code": ErrorCode.none, "unknown_state_filters": unknown_states,
                "transaction_states": [
                    {"transactional_id": m.transactional_id, "producer_id": m.producer_id,
                     "transaction_state": m.state.value}
                    for m in self.transactions.values() if listed(m)
                ]}

    # Timeouts and expiration

    def _schedule_periodically(self, name: str, interval_ms: int, action: Callable[[], None]) -> None:
        def run() -> None:
            action()
            self._schedule_periodically(name, interval_ms, action)

        self._timers.schedule((name,), self._clock.monotonic_ms() + interval_ms, run)

    def _abort_timed_out_transactions(self) -> None:
        now_ms = self._clock.wall_ms()
        for metadata in list(self.transactions.values()):
            if metadata.state is TransactionState.ONGOING and metadata.start_ms + metadata.timeout_ms < now_ms:
                # The producer is fenced too: its late requests must not reopen the transaction.
                self._fence_and_abort(metadata)

    def _expire_transactional_ids(self) -> None:
        now_ms = self._clock.wall_ms()
        for transactional_id, metadata in list(self.transactions.items()):
            if metadata.state in EXPIRABLE_STATES and metadata.last_update_ms <= now_ms - self._id_expiration_ms:
                del self.transactions[transactional_id]
                self._append(transactional_id, None)

    # State and records

    def _producer_transaction(self, transactional_id: str, producer_id: int, producer_epoch: int) -> TransactionMetadata:
        """The transactional id's state, if this producer is the id's current one."""
        if not transactional_id:
            raise TxnError(ErrorCode.invalid_request)
        metadata = self.transactions.get(transactional_id)
        if metadata is None or metadata.producer_id != producer_id:
            raise TxnError(ErrorCode.invalid_producer_id_mapping)
        if metadata.producer_epoch != producer_epoch:
            raise TxnError(ErrorCode.producer_fenced)
        return metadata

    def _write(self, metadata: TransactionMetadata) -> None:
        self._append(metadata.transactional_id, encode_transaction_log_value(metadata.to_log_value()))

    def _append(self, transactional_id: str, value: bytes | None) -> None:
        key = encode_transaction_log_key(TransactionLogKey(transactional_id=transactional_id))
        self._out.records.append((self.partition_for(transactional_id), key, value))

    def _reply(self, token: object, response: dict[str, Any]) -> None:
        self._out.replies.append((token, response))
