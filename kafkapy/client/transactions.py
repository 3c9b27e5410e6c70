"""Transactions and idempotent producers: ListTransactions of every broker (each
coordinates its own transactional ids), DescribeTransactions from an id's coordinator,
and DescribeProducers from each partition's leader."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..wire.build import ms, timestamp_ms
from .cluster import TRANSACTION_COORDINATOR
from .connection import check
from .records import RecordsClient


@dataclass(frozen=True)
class TransactionListing:
    transactional_id: str
    producer_id: int
    state: str
    coordinator: int
    """The broker that coordinates it."""


@dataclass(frozen=True)
class TransactionInfo:
    transactional_id: str
    state: str
    timeout_ms: int
    start_time_ms: int
    """When its ongoing transaction started (-1 when none is ongoing)."""
    producer_id: int
    producer_epoch: int
    partitions: tuple[tuple[str, int], ...]
    """The partitions its ongoing transaction has written to."""


@dataclass(frozen=True)
class ProducerInfo:
    partition: int
    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    current_txn_start_offset: int
    """The first offset of its open transaction on the partition (-1 when none is open)."""


class TransactionsClient(RecordsClient):
    def list_transactions(self) -> list[TransactionListing]:
        """Every transactional id the cluster's coordinators know, by id."""
        listings = []
        for node in sorted(self.metadata([]).brokers):
            response = self.broker(node).request("list_transactions", {
                "state_filters": [], "producer_id_filters": [], "duration_filter": -1})
            check(response.error_code, f"listing the transactions of broker {node}")
            listings += [TransactionListing(t.transactional_id, t.producer_id, t.transaction_state, node)
                         for t in response.transaction_states]
        return sorted(listings, key=lambda t: t.transactional_id)

    def describe_transaction(self, transactional_id: str) -> TransactionInfo:
        def describe() -> TransactionInfo:
            coordinator = self.coordinator(transactional_id, TRANSACTION_COORDINATOR)
            response = coordinator.request("describe_transactions", {"transactional_ids": [transactional_id]})
            [state] = response.transaction_states
            check(state.error_code, f"describing transactional id {transactional_id!r}")
            return TransactionInfo(
                state.transactional_id, state.transaction_state, ms(state.transaction_timeout),
                timestamp_ms(state.transaction_start_time),
                state.producer_id, state.producer_epoch,
                tuple(sorted((t.topic, p) for t in state.topics for p in t.partitions)))

        return self._retrying(describe)

    def describe_producers(self, topic: str, partitions: Iterable[int]) -> list[ProducerInfo]:
        """The producers each partition's leader keeps state of, by partition and producer id."""
        info = self.topic(topic)
        producers = []
        for leader, group in self._by_leader(info, partitions).items():
            response = self.broker(leader).request("describe_producers", {
                "topics": [{"name": topic, "partition_indexes": group}]})
            for result in response.topics[0].partitions:
                check(result.error_code, f"describing the producers of {topic}-{result.partition_index}", result.error_message)
                producers += [ProducerInfo(result.partition_index, p.producer_id, p.producer_epoch, p.last_sequence,
                                           timestamp_ms(p.last_timestamp), p.coordinator_epoch, p.current_txn_start_offset)
                              for p in result.active_producers]
        return sorted(producers, key=lambda p: (p.partition, p.producer_id))
