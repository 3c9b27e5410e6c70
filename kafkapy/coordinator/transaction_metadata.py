"""A transactional id's state, with the rules of Kafka's TransactionMetadata: states,
their transitions, producer ids and epochs. Pure data and rules, no records and no
responses: the transaction coordinator decides when a transition happens and what it
writes and answers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import groupby

from kio.schema.errors import ErrorCode

from .records.transaction_state import TransactionLogValue, TransactionTopicPartitions
from .txn_markers import TopicPartition

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
# Kafka keeps the last int16 epoch for the coordinator: it can always fence a producer
# whose epoch is exhausted by bumping it once more.
MAX_CLIENT_EPOCH = 2**15 - 2



class TxnError(Exception):
    """A request refused with a Kafka error code."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


class TransactionState(enum.Enum):
    """Kafka's transaction states, in the order of the ids written to the log.

    PrepareEpochFence and Dead are never held here: Kafka only ever has them as the
    pending state of an append (a fence goes straight on to PrepareAbort, an expired id
    is dropped once its tombstone is written), and this coordinator has no pending
    appends. They stay for decoding and for ListTransactions' state filter.
    """

    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    DEAD = "Dead"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"

    @property
    def status(self) -> int:
        """The id written in TransactionLogValue.transaction_status."""
        return _STATES.index(self)

    @classmethod
    def from_status(cls, status: int) -> TransactionState:
        return _STATES[status]

    @classmethod
    def from_name(cls, name: str) -> TransactionState | None:
        return _BY_NAME.get(name)


_STATES = tuple(TransactionState)
_BY_NAME = {state.value: state for state in TransactionState}

_VALID_PREVIOUS_STATES: dict[TransactionState, frozenset[TransactionState]] = {
    TransactionState.EMPTY: frozenset({TransactionState.EMPTY, TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT}),
    TransactionState.ONGOING: frozenset({TransactionState.ONGOING, TransactionState.EMPTY, TransactionState.COMPLETE_COMMIT,
                                         TransactionState.COMPLETE_ABORT}),
    TransactionState.PREPARE_COMMIT: frozenset({TransactionState.ONGOING}),
    TransactionState.PREPARE_ABORT: frozenset({TransactionState.ONGOING}),
    TransactionState.COMPLETE_COMMIT: frozenset({TransactionState.PREPARE_COMMIT}),
    TransactionState.COMPLETE_ABORT: frozenset({TransactionState.PREPARE_ABORT}),
}

# States an idle transactional id may be forgotten in.
EXPIRABLE_STATES = frozenset({TransactionState.EMPTY, TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT})


def is_epoch_exhausted(epoch: int) -> bool:
    return epoch >= MAX_CLIENT_EPOCH


@dataclass(eq=False)
class TransactionMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TransactionState
    last_update_ms: int
    start_ms: int = -1
    """When the transaction's first partition was added; -1 while there is none."""
    partitions: set[TopicPartition] = field(default_factory=set)
    previous_producer_id: int = NO_PRODUCER_ID
    """The producer id before the last rotation: a retry of the InitProducerId that
    rotated it is recognized by it."""
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    """The epoch before the last bump asked for by the producer itself (KIP-360), so
    that a retry of that InitProducerId is answered instead of fenced. Never written
    to the log."""

    @property
    def epoch_exhausted(self) -> bool:
        return is_epoch_exhausted(self.producer_epoch)

    def transition_to(self, target: TransactionState, now_ms: int) -> None:
        if self.state not in _VALID_PREVIOUS_STATES[target]:
            raise RuntimeError(f"transaction {self.transactional_id} cannot go from {self.state.value} to {target.value}")
        self.state = target
        self.last_update_ms = now_ms

    # InitProducerId

    def bump_epoch(self, expected_epoch: int | None, timeout_ms: int, now_ms: int) -> None:
        """Starts a new producer session at the next epoch (the caller rotates the
        producer id instead once the epoch is exhausted). Given the epoch the producer
        last had (KIP-360): the same epoch again for a retry of a bump that already
        succeeded; TxnError(PRODUCER_FENCED) for an epoch another producer replaced."""
        if expected_epoch is None:
            epoch, last_epoch = self.producer_epoch + 1, NO_PRODUCER_EPOCH
        elif self.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == self.producer_epoch:
            epoch, last_epoch = self.producer_epoch + 1, self.producer_epoch
        elif expected_epoch == self.last_producer_epoch:
            epoch, last_epoch = self.producer_epoch, self.last_producer_epoch
        else:
            raise TxnError(ErrorCode.producer_fenced)
        self._start_session(self.producer_id, epoch, last_epoch, timeout_ms, now_ms)

    def rotate_producer_id(self, producer_id: int, timeout_ms: int, now_ms: int, remember_last_epoch: bool) -> None:
        """Starts a new producer session under a new producer id, at epoch 0."""
        last_epoch = self.producer_epoch if remember_last_epoch else NO_PRODUCER_EPOCH
        self._start_session(producer_id, 0, last_epoch, timeout_ms, now_ms)

    def _start_session(self, producer_id: int, epoch: int, last_epoch: int, timeout_ms: int, now_ms: int) -> None:
        self.transition_to(TransactionState.EMPTY, now_ms)
        # Kafka records the id being replaced even when it does not change.
        self.previous_producer_id = self.producer_id
        self.producer_id = producer_id
        self.producer_epoch = epoch
        self.last_producer_epoch = last_epoch
        self.timeout_ms = timeout_ms
        self.start_ms = -1

    # The transaction

    def add_partitions(self, partitions: Iterable[TopicPartition], now_ms: int) -> None:
        if self.state is not TransactionState.ONGOING:
            self.start_ms = now_ms
        self.transition_to(TransactionState.ONGOING, now_ms)
        self.partitions.update(partitions)

    def fence_epoch(self) -> None:
        """Takes the next epoch away from the producer, so that its requests fail from
        now on. The epoch is never given to a producer: the abort that follows is
        completed under it, and the next InitProducerId bumps it again."""
        self.producer_epoch += 1
        self.last_producer_epoch = NO_PRODUCER_EPOCH

    def prepare_end(self, commit: bool, now_ms: int) -> None:
        self.transition_to(TransactionState.PREPARE_COMMIT if commit else TransactionState.PREPARE_ABORT, now_ms)

    def complete(self, now_ms: int) -> None:
        """The transaction's markers are written: it is over."""
        target = TransactionState.COMPLETE_COMMIT if self.state is TransactionState.PREPARE_COMMIT else TransactionState.COMPLETE_ABORT
        self.transition_to(target, now_ms)
        self.partitions.clear()

    # The log

    def to_log_value(self) -> TransactionLogValue:
        topics = None
        if self.state is not TransactionState.EMPTY:
            # Kafka writes null partitions for Empty, a list (maybe empty) otherwise.
            topics = tuple(
                TransactionTopicPartitions(topic=topic, partition_ids=tuple(p for _, p in group))
                for topic, group in groupby(sorted(self.partitions), key=lambda tp: tp[0])
            )
        return TransactionLogValue(
            producer_id=self.producer_id,
            producer_epoch=self.producer_epoch,
            transaction_timeout_ms=self.timeout_ms,
            transaction_status=self.state.status,
            transaction_partitions=topics,
            transaction_last_update_timestamp_ms=self.last_update_ms,
            transaction_start_timestamp_ms=self.start_ms,
        )

    @classmethod
    def from_log_value(cls, transactional_id: str, value: TransactionLogValue) -> TransactionMetadata:
        state = TransactionState.from_status(value.transaction_status)
        partitions = set()
        if state is not TransactionState.EMPTY:
            partitions = {(t.topic, p) for t in value.transaction_partitions or () for p in t.partition_ids}
        return cls(
            transactional_id=transactional_id,
            producer_id=value.producer_id,
            producer_epoch=value.producer_epoch,
            timeout_ms=value.transaction_timeout_ms,
            state=state,
            last_update_ms=value.transaction_last_update_timestamp_ms,
            start_ms=value.transaction_start_timestamp_ms,
            partitions=partitions,
            previous_producer_id=value.previous_producer_id,
        )
