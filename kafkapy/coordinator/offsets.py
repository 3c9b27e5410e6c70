"""Committed offsets, by group, topic and partition."""

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
    def __init__(self) -> None:
        self._by_group: dict[str, dict[str, dict[int, OffsetAndMetadata]]] = {}

    def get(self, group_id: str, topic: str, partition: int) -> OffsetAndMetadata | None:
        return self._by_group.get(group_id, {}).get(topic, {}).get(partition)

    def put(self, group_id: str, topic: str, partition: int, offset: OffsetAndMetadata) -> None:
        self._by_group.setdefault(group_id, {}).setdefault(topic, {})[partition] = offset

    def remove(self, group_id: str, topic: str, partition: int) -> None:
        topics = self._by_group.get(group_id)
        if topics is None or partition not in topics.get(topic, {}):
            return
        del topics[topic][partition]
        if not topics[topic]:
            del topics[topic]
        if not topics:
            del self._by_group[group_id]

    def of_group(self, group_id: str) -> dict[str, dict[int, OffsetAndMetadata]]:
        """{topic: {partition: offset}} of the group (empty if it has none); do not modify."""
        return self._by_group.get(group_id, {})

    def partitions_of_group(self, group_id: str) -> list[tuple[str, int]]:
        return [(topic, partition) for topic, partitions in self.of_group(group_id).items() for partition in partitions]
