"""Which transaction markers still have to be written where, with the semantics of
Kafka's TransactionMarkerChannelManager and its completion handler; sans-IO.

The coordinator hands over a MarkerRequest per ended transaction. `requests` groups the
partitions not yet sent by the broker leading each one now (one WriteTxnMarkers per
broker); the shell sends them and reports each broker's answer with `answered`, or
its silence with `unreachable`. A partition is done once its leader wrote the marker;
it is tried again, wherever its leader then is, after a retriable error, a lost
connection or while it has no leader; it is dropped once its topic is gone. A
transaction is complete, and returned for `markers_written`, when none of its
partitions is left. A fenced marker (a newer producer epoch or coordinator epoch on
the partition) means this coordinator no longer owns the transaction: its markers are
given up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from .txn_markers import MarkerRequest, TopicPartition

log = logging.getLogger(__name__)

NO_LEADER = -1

LeaderOf = Callable[[TopicPartition], int | None]
"""The broker leading a partition now: NO_LEADER while it has none, None if the
partition no longer exists."""

_DONE = frozenset({ErrorCode.none})
# The producer could not have written to such a partition: there is nothing to mark.
_NOTHING_TO_MARK = frozenset({ErrorCode.unsupported_for_message_format, ErrorCode.unsupported_version})
_RETRIABLE = frozenset({
    ErrorCode.unknown_topic_or_partition, ErrorCode.not_leader_or_follower, ErrorCode.not_enough_replicas,
    ErrorCode.not_enough_replicas_after_append, ErrorCode.request_timed_out, ErrorCode.kafka_storage_error,
})
_FENCED = frozenset({ErrorCode.invalid_producer_epoch, ErrorCode.transaction_coordinator_fenced})


@dataclass(frozen=True)
class MarkerEntry:
    """One marker of a WriteTxnMarkers request: a transaction's partitions on one broker."""

    marker: MarkerRequest
    partitions: tuple[TopicPartition, ...]


@dataclass
class _Pending:
    marker: MarkerRequest
    unsent: set[TopicPartition]
    in_flight: set[TopicPartition] = field(default_factory=set)


class TxnMarkerQueue:
    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def add(self, marker: MarkerRequest) -> None:
        """A transaction whose markers are to be written; it replaces whatever was
        pending for its transactional id (markers sent again after a reload)."""
        self._pending[marker.transactional_id] = _Pending(marker, set(marker.partitions))

    def cancel(self, transactional_id: str) -> None:
        self._pending.pop(transactional_id, None)

    @property
    def has_unsent(self) -> bool:
        """Whether some partition waits for a leader, or to be sent again."""
        return any(p.unsent for p in self._pending.values())

    def __len__(self) -> int:
        return len(self._pending)

    def requests(self, leader_of: LeaderOf) -> tuple[dict[int, list[MarkerEntry]], list[MarkerRequest]]:
        """The markers to send now, by destination broker, and the transactions that
        completed because their last partitions turned out to be gone."""
        by_broker: dict[int, list[MarkerEntry]] = {}
        completed = []
        for transactional_id, pending in list(self._pending.items()):
            routed: dict[int, list[TopicPartition]] = {}
            for tp in sorted(pending.unsent):
                leader = leader_of(tp)
                if leader is None:
                    log.info("Dropping %s's marker for %s-%d: the partition is gone", transactional_id, *tp)
                    pending.unsent.discard(tp)
                elif leader != NO_LEADER:
                    routed.setdefault(leader, []).append(tp)
            for broker, partitions in routed.items():
                pending.unsent.difference_update(partitions)
                pending.in_flight.update(partitions)
                by_broker.setdefault(broker, []).append(MarkerEntry(pending.marker, tuple(partitions)))
            if self._maybe_complete(pending):
                completed.append(pending.marker)
        return by_broker, completed

    def answered(self, entries: list[MarkerEntry], errors: Mapping[int, Mapping[TopicPartition, ErrorCode]]) -> list[MarkerRequest]:
        """A broker's answer to the entries sent to it, as per-partition errors by
        producer id; returns the transactions now complete."""
        completed = []
        for entry in entries:
            pending = self._current(entry)
            if pending is None:
                continue
            answers = errors.get(entry.marker.producer_id, {})
            for tp in entry.partitions:
                pending.in_flight.discard(tp)
                # A partition the answer leaves out was not written: send it again.
                error = answers.get(tp, ErrorCode.unknown_topic_or_partition)
                if error in _DONE or error in _NOTHING_TO_MARK:
                    continue
                if error in _RETRIABLE:
                    pending.unsent.add(tp)
                    continue
                if error in _FENCED:
                    log.info("Giving up %s's markers: %s-%d answered %s, so this coordinator no longer owns it",
                             entry.marker.transactional_id, *tp, error.name)
                else:
                    # Kafka treats any other error as a bug and stops; giving the transaction up
                    # keeps the broker serving, and it is retried when the coordinator reloads.
                    log.error("Giving up %s's markers: unexpected %s from %s-%d",
                              entry.marker.transactional_id, error.name, *tp)
                self.cancel(entry.marker.transactional_id)
                pending = None
                break
            if pending is not None and self._maybe_complete(pending):
                completed.append(pending.marker)
        return completed

    def unreachable(self, entries: list[MarkerEntry]) -> None:
        """The broker the entries went to did not answer: they go again, to whichever
        broker then leads each partition."""
        for entry in entries:
            pending = self._current(entry)
            if pending is not None:
                pending.in_flight.difference_update(entry.partitions)
                pending.unsent.update(entry.partitions)

    def _current(self, entry: MarkerEntry) -> _Pending | None:
        """The pending transaction an answer is about, unless it was given up or replaced since."""
        pending = self._pending.get(entry.marker.transactional_id)
        return pending if pending is not None and pending.marker == entry.marker else None

    def _maybe_complete(self, pending: _Pending) -> bool:
        if pending.unsent or pending.in_flight:
            return False
        del self._pending[pending.marker.transactional_id]
        return True
