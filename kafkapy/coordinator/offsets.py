"""Committed offsets, by group, topic and partition; and the offsets of transactions
still open, which their transaction's marker commits or drops."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OffsetAndMetadata:
    committed_offset: int
    leader_epoch: int  # -1 when the committer did not give one
    metadata: str
    commit_timestamp_ms: int
    # Only commits of OffsetCommit v2-v4 with a retention time carry their own expiry.
    expire_timestamp_ms: int | None = None

    def is_expired(self, now_ms: int, retention_ms: int, base_timestamp_ms: int) -> bool:
        if self.expire_timestamp_ms is not None:
            return now_ms >= self.expire_timestamp_ms
        return now_ms - base_timestamp_ms >= retention_ms


class OffsetStore:
    """Each offset is kept with the order of its record among the coordinator's records:
    when a transaction commits, the later of its offset and the one committed already
    wins, as Kafka compares their log offsets."""

    def __init__(self) -> None:
        self._by_group: dict[str, dict[str, dict[int, OffsetAndMetadata]]] = {}
        self._record_orders: dict[tuple[str, str, int], int] = {}

    def get(self, group_id: str, topic: str, partition: int) -> OffsetAndMetadata | None:
        return self._by_group.get(group_id, {}).get(topic, {}).get(partition)

    def put(self, group_id: str, topic: str, partition: int, offset: OffsetAndMetadata, record_order: int) -> None:
        self._by_group.setdefault(group_id, {}).setdefault(topic, {})[partition] = offset
        self._record_orders[(group_id, topic, partition)] = record_order

    def remove(self, group_id: str, topic: str, partition: int) -> None:
        topics = self._by_group.get(group_id)
        if topics is None or partition not in topics.get(topic, {}):
            return
        del topics[topic][partition]
        del self._record_orders[(group_id, topic, partition)]
        if not topics[topic]:
            del topics[topic]
        if not topics:
            del self._by_group[group_id]

    def of_group(self, group_id: str) -> dict[str, dict[int, OffsetAndMetadata]]:
        """{topic: {partition: offset}} of the group (empty if it has none); do not modify."""
        return self._by_group.get(group_id, {})

    def partitions_of_group(self, group_id: str) -> list[tuple[str, int]]:
        return [(topic, partition) for topic, partitions in self.of_group(group_id).items() for partition in partitions]

    def group_ids(self) -> list[str]:
        return list(self._by_group)

    def remove_group(self, group_id: str) -> None:
        for topic, partition in self.partitions_of_group(group_id):
            self.remove(group_id, topic, partition)

    def take_later(self, other: OffsetStore) -> None:
        """Takes each offset of `other` whose record is later than that of the offset stored here."""
        for (group_id, topic, partition), record_order in other._record_orders.items():
            if self._record_orders.get((group_id, topic, partition), -1) < record_order:
                self.put(group_id, topic, partition, other._by_group[group_id][topic][partition], record_order)


class PendingOffsets:
    """Offsets committed in transactions still open, by transaction: the coordinator
    partition the transaction's marker goes to, and the producer id."""

    def __init__(self) -> None:
        self._by_transaction: dict[tuple[int, int], OffsetStore] = {}

    def put(
        self, transaction: tuple[int, int], group_id: str, topic: str, partition: int, offset: OffsetAndMetadata,
        record_order: int,
    ) -> None:
        self._by_transaction.setdefault(transaction, OffsetStore()).put(group_id, topic, partition, offset, record_order)

    def drop_coordinator_partition(self, partition: int) -> None:
        """Forgets the open transactions whose marker goes to this coordinator partition."""
        for transaction in [t for t in self._by_transaction if t[0] == partition]:
            del self._by_transaction[transaction]

    def end(self, transaction: tuple[int, int]) -> OffsetStore:
        """Removes the transaction's offsets, and returns them."""
        return self._by_transaction.pop(transaction, OffsetStore())

    def remove(self, group_id: str, topic: str, partition: int) -> None:
        """Removes the partition's offset from every open transaction."""
        for offsets in self._by_transaction.values():
            offsets.remove(group_id, topic, partition)

    def has(self, group_id: str, topic: str, partition: int) -> bool:
        return any(offsets.get(group_id, topic, partition) is not None for offsets in self._by_transaction.values())

    def partitions_of_group(self, group_id: str) -> list[tuple[str, int]]:
        """The group's partitions with an offset in an open transaction, each once."""
        return list(dict.fromkeys(
            tp for offsets in self._by_transaction.values() for tp in offsets.partitions_of_group(group_id)
        ))
