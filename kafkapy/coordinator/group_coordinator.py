"""The group coordinator, sans-IO: classic groups (JoinGroup, SyncGroup, Heartbeat,
LeaveGroup, DescribeGroups, ListGroups, DeleteGroups), consumer groups of the KIP-848
protocol (ConsumerGroupHeartbeat, ConsumerGroupDescribe) and committed offsets
(OffsetCommit, TxnOffsetCommit, OffsetFetch, OffsetDelete), with the semantics of Kafka's
GroupMetadataManager and OffsetMetadataManager.

This is the coordinator's face to the shell, as Kafka's GroupCoordinatorService is: it
maps a group to its `__consumer_offsets` partition and hands each call to the parts that
serve it: the shard (the state and the replay of records, `shard.py`), the classic
protocol (`classic_protocol.py`), the consumer protocol (`consumer_protocol.py`) and the
offsets manager (`offsets_manager.py`).

Every call that changes state returns a Result: the `__consumer_offsets` records to
append, and the replies to deliver once those records are durable. A request may be
answered later, in the Result of another call or of `tick`. The state is that of the
`__consumer_offsets` partitions this broker leads: `replay` rebuilds a partition's state
from its records when the broker becomes its leader, `loaded` starts it, and `unload`
drops it when the broker stops leading it; offsets committed in a transaction are taken when the shell
replays them once appended, and their transaction's marker (`complete_transaction`, or
`replay_end_transaction` at startup) commits or drops them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig
from ..wire.records import NO_PRODUCER_ID
from .classic_group import ClassicGroup
from .classic_protocol import ClassicGroupProtocol
from .consumer_group import ConsumerGroup
from .consumer_protocol import ConsumerGroupProtocol
from .java_hash import java_string_hash
from .offsets import OffsetStore
from .offsets_manager import OffsetsManager
from .shard import GroupCoordinatorShard, Result


class GroupCoordinator:
    def __init__(self, config: BrokerConfig, clock: Clock, num_partitions: int) -> None:
        self._clock = clock
        self._num_partitions = num_partitions
        self._shard = GroupCoordinatorShard(clock, self.partition_for)
        self._classic = ClassicGroupProtocol(self._shard, config, clock)
        self._consumer = ConsumerGroupProtocol(self._shard, config, clock)
        self._offsets = OffsetsManager(self._shard, self._classic, config, clock)

    @property
    def groups(self) -> Mapping[str, ClassicGroup | ConsumerGroup]:
        """Every group, by id."""
        return self._shard.groups

    @property
    def offsets(self) -> OffsetStore:
        """The committed offsets (not those pending in transactions)."""
        return self._shard.offsets

    # The coordinator's API. Calls that change state return a Result: records to append,
    # then replies to deliver once those records are durable.

    def partition_for(self, group_id: str) -> int:
        # Kafka's Utils.abs: the absolute value, except 0 for Integer.MIN_VALUE.
        return abs(java_string_hash(group_id)) % (1 << 31) % self._num_partitions

    def replay(self, partition: int, key: bytes, value: bytes | None, producer_id: int = NO_PRODUCER_ID) -> None:
        """Applies one __consumer_offsets record: at load, and once appended for the
        records of a transactional Result. `producer_id`: of its batch if transactional."""
        self._shard.replay(key, value, None if producer_id == NO_PRODUCER_ID else (partition, producer_id))

    def replay_end_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        """Applies a transaction marker of the partition, at load."""
        self._shard.end_transaction(partition, producer_id, commit)

    def on_topics_changed(self, topics: Mapping[str, tuple[uuid.UUID, int]]) -> None:
        """The cluster's topics, name -> (topic id, partition count): at startup, and again
        whenever they change."""
        self._consumer.on_topics_changed(topics)

    def loaded(self, partition: int) -> Result:
        """After the partition's replay: the loaded members' sessions start now."""
        return self._shard.run(self._loaded, partition)

    def unload(self, partition: int) -> list[object]:
        """Drops the partition's groups and offsets (this broker no longer leads it): the
        tokens of the requests it held parked, which the shell answers NOT_COORDINATOR."""
        return self._shard.unload(partition)

    def join_group(self, version: int, client_id: str, client_host: str, request: Any, token: object) -> Result:
        return self._shard.run(self._classic.join_group, version, client_id, client_host, request, token)

    def sync_group(self, version: int, request: Any, token: object) -> Result:
        return self._shard.run(self._classic.sync_group, version, request, token)

    def heartbeat(self, version: int, request: Any, token: object) -> Result:
        return self._shard.run(self._classic.heartbeat, version, request, token)

    def leave_group(self, version: int, request: Any, token: object) -> Result:
        return self._shard.run(self._classic.leave_group, version, request, token)

    def consumer_group_heartbeat(
        self, version: int, request: Any, token: object, *, client_id: str = "", client_host: str = "",
    ) -> Result:
        """ConsumerGroupHeartbeat: joins, heartbeats and leaves of consumer group members."""
        return self._shard.run(self._consumer.heartbeat, version, request, token, client_id, client_host)

    def consumer_group_describe(self, version: int, request: Any) -> dict:
        return self._consumer.describe(version, request)

    def commit_offsets(self, version: int, request: Any, token: object) -> Result:
        return self._shard.run(self._offsets.commit_offsets, version, request, token)

    def txn_commit_offsets(self, version: int, request: Any, token: object) -> Result:
        """TxnOffsetCommit: the offsets are pending until their transaction ends."""
        return self._shard.run(self._offsets.txn_commit_offsets, version, request, token)

    def complete_transaction(self, partition: int, producer_id: int, commit: bool) -> Result:
        """The transaction's marker is written in the partition: its offsets there are
        committed, or dropped if it aborted."""
        return self._shard.run(self._shard.end_transaction, partition, producer_id, commit)

    def fetch_offsets(self, version: int, request: Any) -> dict:
        """Committed offsets; with require_stable (v7+), a partition with offsets pending
        in a transaction is answered UNSTABLE_OFFSET_COMMIT (the client retries)."""
        return self._offsets.fetch_offsets(version, request)

    def delete_offsets(self, version: int, request: Any, token: object) -> Result:
        return self._shard.run(self._offsets.delete_offsets, version, request, token)

    def delete_groups(self, version: int, group_ids: list[str], token: object) -> Result:
        return self._shard.run(self._shard.delete_groups, version, group_ids, token)

    def list_groups(self, version: int, request: Any) -> dict:
        states = {s.strip().lower() for s in getattr(request, "states_filter", ())}
        types = {t.lower() for t in getattr(request, "types_filter", ())}
        return {"throttle_time": 0, "error_code": ErrorCode.none, "groups": [
            {"group_id": group.group_id, "protocol_type": group.protocol_type or "", "group_state": group.state.value,
             "group_type": group.group_type}
            for group in self._shard.groups.values()
            if (not states or group.state.value.lower() in states) and (not types or group.group_type in types)
        ]}

    def describe_groups(self, version: int, request: Any) -> dict:
        return self._classic.describe_groups(version, request)

    def tick(self) -> Result:
        """Fires every timer due now."""
        return self._shard.run(self._shard.timers.fire_due, self._clock.monotonic_ms())

    def next_deadline(self) -> int | None:
        """When tick is next needed, on the monotonic clock."""
        return self._shard.timers.next_deadline()

    def _loaded(self, partition: int) -> None:
        for group in list(self._shard.groups.values()):
            if self.partition_for(group.group_id) != partition:
                continue
            if isinstance(group, ConsumerGroup):
                self._consumer.start_sessions(group)
            else:
                self._classic.start_sessions(group)
