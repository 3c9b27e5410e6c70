"""Committed offsets (OffsetCommit, TxnOffsetCommit, OffsetFetch, OffsetDelete) and their
retention, with the semantics of Kafka's OffsetMetadataManager.

Offsets committed in a transaction are written as one transactional batch of the producer
(Result.transactional), which the log refuses if the producer is fenced, so the shard
takes them only when the shell replays them, once appended. They stay pending, invisible
to OffsetFetch, until the transaction's marker in their partition commits or drops them.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig
from ..wire.build import ms
from . import group_records
from .classic_group import ClassicGroup, GroupError, GroupState, Waiter
from .classic_protocol import ClassicGroupProtocol
from .consumer_group import ConsumerGroup
from .group_refusals import offset_commit_errors
from .offsets import OffsetAndMetadata
from .shard import GroupCoordinatorShard

# Kafka's default offset.metadata.max.bytes (compared with the metadata's length in UTF-16 units, as Java does).
OFFSET_METADATA_MAX_SIZE = 4096
# OffsetCommit v2-v4's retention time meaning "the broker's retention".
DEFAULT_RETENTION_TIME = -1


def java_length(text: str) -> int:
    """Java's String.length(): UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _fetched_partition(partition: int, offset: OffsetAndMetadata | None) -> dict[str, Any]:
    if offset is None:
        return {"partition_index": partition, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "",
                "error_code": ErrorCode.none}
    return {"partition_index": partition, "committed_offset": offset.committed_offset,
            "committed_leader_epoch": offset.leader_epoch, "metadata": offset.metadata, "error_code": ErrorCode.none}


class OffsetsManager:
    def __init__(
        self, shard: GroupCoordinatorShard, classic: ClassicGroupProtocol, config: BrokerConfig, clock: Clock,
    ) -> None:
        self._shard = shard
        # A classic member's commit keeps its session alive.
        self._classic = classic
        self._clock = clock
        self._offsets_retention_ms = config.int("offsets.retention.minutes") * 60_000
        self._retention_check_interval_ms = config.int("offsets.retention.check.interval.ms")
        self._schedule_offset_expiration()

    def fetch_offsets(self, version: int, request: Any) -> dict:
        """Committed offsets; with require_stable (v7+), a partition with offsets pending
        in a transaction is answered UNSTABLE_OFFSET_COMMIT (the client retries)."""
        require_stable = getattr(request, "require_stable", False)
        if version >= 8:
            return {"throttle_time": 0, "groups": [
                self._fetch_group_offsets(g.group_id, g.topics, getattr(g, "member_id", None),
                                          getattr(g, "member_epoch", -1), require_stable)
                for g in request.groups
            ]}
        group = self._fetch_group_offsets(request.group_id, request.topics, None, -1, require_stable)
        return {"throttle_time": 0, "error_code": group["error_code"], "topics": group["topics"]}

    # OffsetCommit

    def commit_offsets(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        # Version 0 names neither member nor generation: its commits were made outside
        # group management (Kafka kept them in ZooKeeper), so they commit as a simple group.
        member_id = getattr(request, "member_id", "")
        try:
            group = self._validate_offset_commit(version, request.group_id, member_id,
                                                 getattr(request, "group_instance_id", None),
                                                 getattr(request, "generation_id_or_member_epoch", -1))
        except GroupError as e:
            self._shard.reply(waiter, {"throttle_time": 0, "topics": offset_commit_errors(request.topics, e.code)})
            return
        if isinstance(group, ClassicGroup) and group.is_in(GroupState.STABLE, GroupState.PREPARING_REBALANCE):
            # A commit keeps the member's session alive.
            member = group.members[member_id]
            self._classic.schedule_heartbeat(group.group_id, member_id, member.session_timeout_ms)
        now_ms = self._clock.wall_ms()
        retention_ms = ms(getattr(request, "retention_time", None))
        expire_timestamp_ms = None if retention_ms == DEFAULT_RETENTION_TIME else now_ms + retention_ms
        records, topics = self._offset_commit_records(group.group_id, request.topics, now_ms, expire_timestamp_ms)
        self._shard.apply(group.group_id, records)
        self._shard.reply(waiter, {"throttle_time": 0, "topics": topics})

    @staticmethod
    def _offset_commit_records(
        group_id: str, topics: Any, now_ms: int, expire_timestamp_ms: int | None,
    ) -> tuple[list[tuple[bytes, bytes | None]], list[dict[str, Any]]]:
        """An offset commit record for each partition whose metadata is not too large, and
        the response's topics."""
        records: list[tuple[bytes, bytes | None]] = []
        response_topics = []
        for topic in topics:
            partitions = []
            for p in topic.partitions:
                metadata = p.committed_metadata
                if metadata is not None and java_length(metadata) > OFFSET_METADATA_MAX_SIZE:
                    partitions.append({"partition_index": p.partition_index, "error_code": ErrorCode.offset_metadata_too_large})
                    continue
                # Version 1 lets the client name the commit's time; -1 (the default) means now.
                commit_timestamp = getattr(p, "commit_timestamp", -1)
                offset = OffsetAndMetadata(p.committed_offset, getattr(p, "committed_leader_epoch", -1), metadata or "",
                                           now_ms if commit_timestamp == -1 else commit_timestamp, expire_timestamp_ms)
                records.append(group_records.offset_commit(group_id, topic.name, p.partition_index, offset))
                partitions.append({"partition_index": p.partition_index, "error_code": ErrorCode.none})
            response_topics.append({"name": topic.name, "partitions": partitions})
        return records, response_topics

    def _validate_offset_commit(
        self, version: int, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int,
    ) -> ClassicGroup | ConsumerGroup:
        group = self._shard.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                # From v9 the missing group is named; older clients expect ILLEGAL_GENERATION.
                raise GroupError(ErrorCode.group_id_not_found if version >= 9 else ErrorCode.illegal_generation)
            # A consumer committing without membership (or an admin): a simple group holds its offsets.
            group = self._shard.create_group(group_id)
        if isinstance(group, ConsumerGroup):
            group.validate_offset_commit(member_id, generation_id, version)
        else:
            group.validate_offset_commit(member_id, group_instance_id, generation_id)
        return group

    # TxnOffsetCommit

    def txn_commit_offsets(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        try:
            self._validate_txn_offset_commit(version, request)
        except GroupError as e:
            self._shard.reply(waiter, {"throttle_time": 0, "topics": offset_commit_errors(request.topics, e.code)})
            return
        records, topics = self._offset_commit_records(request.group_id, request.topics, self._clock.wall_ms(), None)
        for key, value in records:
            self._shard.write(request.group_id, key, value)
        self._shard.out.transactional = (request.producer_id, request.producer_epoch)
        self._shard.reply(waiter, {"throttle_time": 0, "topics": topics})

    def _validate_txn_offset_commit(self, version: int, request: Any) -> None:
        group_id = request.group_id
        # Before v3 the request names no member and no generation.
        generation_id = getattr(request, "generation_id", -1)
        member_id = getattr(request, "member_id", "")
        if not group_id:
            raise GroupError(ErrorCode.invalid_group_id)
        if request.producer_id < 0:
            # No transaction has it (Kafka's verification of the transaction says so).
            raise GroupError(ErrorCode.invalid_producer_id_mapping)
        group = self._shard.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                raise GroupError(ErrorCode.illegal_generation)
            return  # a simple group, which the replay of its offsets creates
        if isinstance(group, ClassicGroup):
            group.validate_offset_commit(member_id, getattr(request, "group_instance_id", None), generation_id,
                                         is_transactional=True)
            return
        try:
            group.validate_offset_commit(member_id, generation_id, version, is_transactional=True)
        except GroupError as e:
            # TxnOffsetCommit has no STALE_MEMBER_EPOCH: the member epoch is its generation.
            if e.code is ErrorCode.stale_member_epoch:
                raise GroupError(ErrorCode.illegal_generation) from e
            raise


    # OffsetFetch

    def _fetch_group_offsets(
        self, group_id: str, topics: Any, member_id: str | None, member_epoch: int, require_stable: bool,
    ) -> dict[str, Any]:
        """Offsets of the requested partitions, or of every partition if topics is None; a
        consumer group's member (OffsetFetch v9) must name its current epoch."""
        group = self._shard.groups.get(group_id)
        if isinstance(group, ConsumerGroup):
            try:
                group.validate_offset_fetch(member_id, member_epoch)
            except GroupError as e:
                return {"group_id": group_id, "topics": [], "error_code": e.code}
        stored = self._shard.offsets.of_group(group_id) if group is not None else {}

        def fetched(topic: str, partition: int, offset: OffsetAndMetadata | None) -> dict[str, Any]:
            if require_stable and self._shard.pending_offsets.has(group_id, topic, partition):
                return {**_fetched_partition(partition, None), "error_code": ErrorCode.unstable_offset_commit}
            return _fetched_partition(partition, offset)

        if topics is None:
            response_topics = [
                {"name": topic, "partitions": [fetched(topic, p, offset) for p, offset in partitions.items()]}
                for topic, partitions in stored.items()
            ]
        else:
            response_topics = [
                {"name": t.name, "partitions": [fetched(t.name, p, stored.get(t.name, {}).get(p)) for p in t.partition_indexes]}
                for t in topics
            ]
        return {"group_id": group_id, "topics": response_topics, "error_code": ErrorCode.none}

    # OffsetDelete

    def delete_offsets(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        try:
            group = self._validate_offset_delete(request.group_id)
        except GroupError as e:
            self._shard.reply(waiter, {"error_code": e.code, "throttle_time": 0, "topics": []})
            return
        topics = []
        for topic in request.topics:
            if group.is_subscribed_to_topic(topic.name):
                error = ErrorCode.group_subscribed_to_topic
            else:
                error = ErrorCode.none
                for p in topic.partitions:
                    self._shard.delete_offset(group.group_id, topic.name, p.partition_index)
            topics.append({"name": topic.name, "partitions": [
                {"partition_index": p.partition_index, "error_code": error} for p in topic.partitions
            ]})
        self._shard.reply(waiter, {"error_code": ErrorCode.none, "throttle_time": 0, "topics": topics})

    def _validate_offset_delete(self, group_id: str) -> ClassicGroup | ConsumerGroup:
        if not group_id:
            raise GroupError(ErrorCode.invalid_group_id)
        group = self._shard.groups.get(group_id)
        if group is None:
            raise GroupError(ErrorCode.group_id_not_found)
        group.validate_offset_delete()
        return group

    # Retention

    def _schedule_offset_expiration(self) -> None:
        self._shard.timers.schedule(("offset-expiration",), self._clock.monotonic_ms() + self._retention_check_interval_ms,
                                    self._expire_offsets_and_groups)

    def _expire_offsets_and_groups(self) -> None:
        """Drops expired offsets, and empty groups left with no offsets."""
        now_ms = self._clock.wall_ms()
        for group_id in list(self._shard.groups):
            if self._expire_offsets(group_id, now_ms) and self._shard.groups[group_id].is_empty():
                self._shard.delete_group(group_id)
        self._schedule_offset_expiration()

    def _expire_offsets(self, group_id: str, now_ms: int) -> bool:
        """Deletes the group's expired offsets; True if it has none left."""
        stored = self._shard.offsets.of_group(group_id)
        # A transaction in flight keeps the group: its offsets may yet be committed.
        in_transactions = set(self._shard.pending_offsets.partitions_of_group(group_id))
        if not stored:
            return not in_transactions
        group = self._shard.groups[group_id]
        base_timestamp = group.offset_expiration_base()
        if base_timestamp is None:
            return False
        all_expired = True
        for topic, partitions in list(stored.items()):
            if group.is_subscribed_to_topic(topic):
                all_expired = False
                continue
            for partition, offset in list(partitions.items()):
                if (
                    offset.is_expired(now_ms, self._offsets_retention_ms, base_timestamp(offset.commit_timestamp_ms))
                    and (topic, partition) not in in_transactions
                ):
                    self._shard.delete_offset(group_id, topic, partition)
                else:
                    all_expired = False
        return all_expired and not in_transactions
