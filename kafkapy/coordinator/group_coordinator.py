"""The group coordinator, sans-IO: classic groups (JoinGroup, SyncGroup, Heartbeat,
LeaveGroup, DescribeGroups, ListGroups, DeleteGroups), consumer groups of the KIP-848
protocol (ConsumerGroupHeartbeat, ConsumerGroupDescribe) and committed offsets
(OffsetCommit, TxnOffsetCommit, OffsetFetch, OffsetDelete), with the semantics of Kafka's
GroupMetadataManager and OffsetMetadataManager.

Every call returns a Result: the `__consumer_offsets` records to append, and the
replies to deliver once those records are durable. A request may be answered later,
in the Result of another call or of `tick` (a JoinGroup parked until the rebalance
completes, a follower's SyncGroup parked until the leader's). The coordinator updates
its own state as it writes records, as Kafka's coordinator replays its own writes
(consumer groups literally so: their records are replayed as they are written);
`replay` rebuilds that state from the records at startup.

Offsets committed in a transaction are the exception: they are written as one
transactional batch of the producer (Result.transactional), which the log refuses if
the producer is fenced, so the coordinator takes them only when the shell replays them,
once appended. They stay pending, invisible to OffsetFetch, until the transaction's
marker in their partition: `complete_transaction` (or `replay_end_transaction` at
startup) commits or drops them.

Consumer groups need the cluster's topics: the shell hands them over with
`on_topics_changed` at startup and whenever they change.
"""

from __future__ import annotations

import base64
import functools
import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig
from ..wire.build import ms
from ..wire.records import NO_PRODUCER_ID
from . import group_records
from .assignors import ASSIGNORS, Assignment, PartitionAssignorError, SubscriptionType, java_uuid_order
from .classic_group import (
    ClassicGroup,
    ClassicGroupMember,
    GroupError,
    GroupState,
    Protocols,
    Waiter,
    protocol_names,
)
from .consumer_group import (
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    NO_ASSIGNMENT_EPOCH,
    ConsumerGroup,
    ConsumerGroupMember,
    MemberState,
    TopicMetadata,
    assignment_from_record,
    owned_partitions,
    reconcile,
    subscription_metadata,
    subscription_type,
    target_assignment,
)
from .offsets import OffsetAndMetadata, OffsetStore, PendingOffsets
from .records.consumer_offsets import (
    ConsumerGroupCurrentMemberAssignmentKey,
    ConsumerGroupMemberMetadataKey,
    ConsumerGroupMetadataKey,
    ConsumerGroupPartitionMetadataKey,
    ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMetadataKey,
)
from .timers import Timers

# Kafka's internal default of how long a new member's parked JoinGroup may wait.
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000
# Kafka's default offset.metadata.max.bytes (compared with the metadata's length in UTF-16 units, as Java does).
OFFSET_METADATA_MAX_SIZE = 4096
# OffsetCommit v2-v4's retention time meaning "the broker's retention".
DEFAULT_RETENTION_TIME = -1
# With no authorizer, every operation a group resource supports: READ(3), DELETE(6),
# DESCRIBE(8), DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11).
GROUP_AUTHORIZED_OPERATIONS = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)
# Java's String.trim: what a blank string is made of.
_JAVA_TRIMMED = "".join(map(chr, range(33)))


@dataclass
class Result:
    records: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)
    replies: list[tuple[object, dict]] = field(default_factory=list)
    transactional: tuple[int, int] | None = None
    """(producer id, producer epoch) when the records are a transaction's offsets: the shell
    appends them as a transactional batch of that producer, then replays them."""


def java_string_hash(text: str) -> int:
    """Java's String.hashCode: over UTF-16 code units, in signed 32-bit arithmetic."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def java_length(text: str) -> int:
    """Java's String.length(): UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class _Join:
    """A JoinGroup request, normalized across versions."""

    waiter: Waiter
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    protocol_type: str
    protocols: Protocols
    session_timeout_ms: int
    rebalance_timeout_ms: int


def _join_response(
    version: int, error: ErrorCode, *, member_id: str, generation_id: int = -1, protocol_type: str | None = None,
    protocol_name: str | None = None, leader: str = "", skip_assignment: bool = False,
    members: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    # Before v7 the protocol name is not nullable; from v7 on, "no protocol" is null.
    if version < 7 and protocol_name is None:
        protocol_name = ""
    elif version >= 7 and protocol_name == "":
        protocol_name = None
    return {
        "throttle_time": 0, "error_code": error, "generation_id": generation_id, "protocol_type": protocol_type,
        "protocol_name": protocol_name, "leader": leader, "skip_assignment": skip_assignment,
        "member_id": member_id, "members": list(members),
    }


def _sync_response(
    error: ErrorCode, protocol_type: str | None = None, protocol_name: str | None = None, assignment: bytes = b"",
) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": error, "protocol_type": protocol_type, "protocol_name": protocol_name,
            "assignment": assignment}


def _leave_response(version: int, error: ErrorCode, members: list[dict[str, Any]]) -> dict[str, Any]:
    if version <= 2 and error is ErrorCode.none:
        # One member per request before v3: its error is the response's.
        error = next((m["error_code"] for m in members if m["error_code"] is not ErrorCode.none), ErrorCode.none)
    return {"throttle_time": 0, "error_code": error, "members": members}


def _fetched_partition(partition: int, offset: OffsetAndMetadata | None) -> dict[str, Any]:
    if offset is None:
        return {"partition_index": partition, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "",
                "error_code": ErrorCode.none}
    return {"partition_index": partition, "committed_offset": offset.committed_offset,
            "committed_leader_epoch": offset.leader_epoch, "metadata": offset.metadata, "error_code": ErrorCode.none}


def _random_member_id() -> str:
    """Kafka's Uuid.randomUuid().toString(): url-safe base64, never starting with '-'."""
    while True:
        member_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not member_id.startswith("-"):
            return member_id


class GroupCoordinator:
    def __init__(self, config: BrokerConfig, clock: Clock, num_partitions: int) -> None:
        self._clock = clock
        self._num_partitions = num_partitions
        self._initial_rebalance_delay_ms = config.int("group.initial.rebalance.delay.ms")
        self._min_session_timeout_ms = config.int("group.min.session.timeout.ms")
        self._max_session_timeout_ms = config.int("group.max.session.timeout.ms")
        self._max_group_size = config.int("group.max.size")
        self._offsets_retention_ms = config.int("offsets.retention.minutes") * 60_000
        self._retention_check_interval_ms = config.int("offsets.retention.check.interval.ms")
        self._consumer_session_timeout_ms = config.int("group.consumer.session.timeout.ms")
        self._consumer_heartbeat_interval_ms = config.int("group.consumer.heartbeat.interval.ms")
        self._consumer_max_group_size = config.int("group.consumer.max.size")
        assignor_names = config.strings("group.consumer.assignors")
        self._consumer_assignors = {name: ASSIGNORS[name] for name in assignor_names}
        self._default_consumer_assignor = assignor_names[0]
        self.groups: dict[str, ClassicGroup | ConsumerGroup] = {}
        self.offsets = OffsetStore()
        self.pending_offsets = PendingOffsets()
        # The order of offset records as written or replayed, which is their order in the
        # log: the shell appends records in the order the coordinator writes them.
        self._record_order = itertools.count()
        # The cluster's topics: name -> (topic id, partition count), and names by id.
        self._topics: dict[str, tuple[uuid.UUID, int]] = {}
        self._topic_names: dict[uuid.UUID, str] = {}
        self._timers = Timers()
        self._out = Result()
        self._schedule_offset_expiration()

    # The coordinator's API. Calls that change state return a Result: records to append,
    # then replies to deliver once those records are durable.

    def partition_for(self, group_id: str) -> int:
        # Kafka's Utils.abs: the absolute value, except 0 for Integer.MIN_VALUE.
        return abs(java_string_hash(group_id)) % (1 << 31) % self._num_partitions

    def replay(self, partition: int, key: bytes, value: bytes | None, producer_id: int = NO_PRODUCER_ID) -> None:
        """Applies one __consumer_offsets record: at startup, and once appended for the
        records of a transactional Result. `producer_id`: of its batch if transactional."""
        self._replay(key, value, None if producer_id == NO_PRODUCER_ID else (partition, producer_id))

    def replay_end_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        """Applies a transaction marker of the partition, at startup."""
        self._end_transaction(partition, producer_id, commit)

    def on_topics_changed(self, topics: Mapping[str, tuple[uuid.UUID, int]]) -> None:
        """The cluster's topics, name -> (topic id, partition count): at startup, and again
        whenever they change. Consumer groups subscribed to a topic that changed check
        their subscriptions at their next heartbeat, as Kafka's onNewMetadataImage asks."""
        changed = {name for name in self._topics.keys() | topics.keys() if self._topics.get(name) != topics.get(name)}
        if not changed:
            return
        self._topics = dict(topics)
        self._topic_names = {topic_id: name for name, (topic_id, _) in topics.items()}
        for group in self.groups.values():
            if isinstance(group, ConsumerGroup) and not changed.isdisjoint(group.subscribed_topic_names):
                group.metadata_refresh_needed = True

    def loaded(self) -> Result:
        """After replay: the loaded members' sessions start now."""
        return self._run(self._loaded)

    def join_group(self, version: int, client_id: str, client_host: str, request: Any, token: object) -> Result:
        return self._run(self._join_group, version, client_id, client_host, request, token)

    def sync_group(self, version: int, request: Any, token: object) -> Result:
        return self._run(self._sync_group, version, request, token)

    def heartbeat(self, version: int, request: Any, token: object) -> Result:
        return self._run(self._heartbeat, version, request, token)

    def leave_group(self, version: int, request: Any, token: object) -> Result:
        return self._run(self._leave_group, version, request, token)

    def consumer_group_heartbeat(
        self, version: int, request: Any, token: object, *, client_id: str = "", client_host: str = "",
    ) -> Result:
        """ConsumerGroupHeartbeat: joins, heartbeats and leaves of consumer group members."""
        return self._run(self._consumer_group_heartbeat, version, request, token, client_id, client_host)

    def consumer_group_describe(self, version: int, request: Any) -> dict:
        with_operations = request.include_authorized_operations
        return {"throttle_time": 0, "groups": [
            self._describe_consumer_group(group_id, with_operations) for group_id in request.group_ids
        ]}

    def commit_offsets(self, version: int, request: Any, token: object) -> Result:
        return self._run(self._commit_offsets, version, request, token)

    def txn_commit_offsets(self, version: int, request: Any, token: object) -> Result:
        """TxnOffsetCommit: the offsets are pending until their transaction ends."""
        return self._run(self._txn_commit_offsets, version, request, token)

    def complete_transaction(self, partition: int, producer_id: int, commit: bool) -> Result:
        """The transaction's marker is written in the partition: its offsets there are
        committed, or dropped if it aborted."""
        return self._run(self._end_transaction, partition, producer_id, commit)

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

    def delete_offsets(self, version: int, request: Any, token: object) -> Result:
        return self._run(self._delete_offsets, version, request, token)

    def delete_groups(self, version: int, group_ids: list[str], token: object) -> Result:
        return self._run(self._delete_groups, version, group_ids, token)

    def list_groups(self, version: int, request: Any) -> dict:
        states = {s.strip().lower() for s in getattr(request, "states_filter", ())}
        types = {t.lower() for t in getattr(request, "types_filter", ())}
        return {"throttle_time": 0, "error_code": ErrorCode.none, "groups": [
            {"group_id": group.group_id, "protocol_type": group.protocol_type or "", "group_state": group.state.value,
             "group_type": group.group_type}
            for group in self.groups.values()
            if (not states or group.state.value.lower() in states) and (not types or group.group_type in types)
        ]}

    def describe_groups(self, version: int, request: Any) -> dict:
        with_operations = version >= 3 and getattr(request, "include_authorized_operations", False)
        described = [self._describe(version, group_id) for group_id in request.groups]
        for group in described:
            if with_operations and group["error_code"] is ErrorCode.none:
                group["authorized_operations"] = GROUP_AUTHORIZED_OPERATIONS
        return {"throttle_time": 0, "groups": described}

    def tick(self) -> Result:
        """Fires every timer due now."""
        return self._run(self._timers.fire_due, self._clock.monotonic_ms())

    def next_deadline(self) -> int | None:
        """When tick is next needed, on the monotonic clock."""
        return self._timers.next_deadline()

    def _run(self, operation: Callable[..., None], *args: Any) -> Result:
        self._out = Result()
        operation(*args)
        out, self._out = self._out, Result()
        return out

    # Loading

    def _loaded(self) -> None:
        for group in list(self.groups.values()):
            if isinstance(group, ConsumerGroup):
                for consumer in group.members.values():
                    self._schedule_consumer_session(group.group_id, consumer.member_id)
                    if consumer.state is MemberState.UNREVOKED_PARTITIONS:
                        self._schedule_consumer_rebalance(group.group_id, consumer)
                continue
            for member in group.members.values():
                self._schedule_heartbeat(group.group_id, member.member_id, member.session_timeout_ms)
            if len(group.members) > self._max_group_size:
                # group.max.size was lowered while the group was away: let its members go.
                self._prepare_rebalance(group)

    # JoinGroup

    def _join_group(self, version: int, client_id: str, client_host: str, request: Any, token: object) -> None:
        session_timeout_ms = ms(request.session_timeout)
        join = _Join(
            waiter=Waiter(token, version),
            group_id=request.group_id,
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            client_id=client_id,
            # Kafka reports a client's address as Java's InetAddress prints it.
            client_host=f"/{client_host}",
            protocol_type=request.protocol_type,
            protocols=tuple((p.name, bytes(p.metadata)) for p in request.protocols),
            session_timeout_ms=session_timeout_ms,
            # v0 has no rebalance timeout: the session timeout serves as both.
            rebalance_timeout_ms=ms(getattr(request, "rebalance_timeout", request.session_timeout)),
        )
        if not join.group_id:
            self._reply_join(join.waiter, ErrorCode.invalid_group_id, member_id=join.member_id)
            return
        if not self._min_session_timeout_ms <= session_timeout_ms <= self._max_session_timeout_ms:
            self._reply_join(join.waiter, ErrorCode.invalid_session_timeout, member_id=join.member_id)
            return
        group = self.groups.get(join.group_id)
        if isinstance(group, ConsumerGroup):
            if not group.is_empty():
                # Kafka would take the member into the consumer group (an online migration):
                # not supported here, the member is refused.
                self._reply_join(join.waiter, ErrorCode.inconsistent_group_protocol, member_id=join.member_id)
                return
            # An empty consumer group gives way to the classic group.
            self._apply(join.group_id, group_records.consumer_group_tombstones(join.group_id, []))
            group = None
        is_new_group = group is None
        if group is None:
            if join.member_id:
                self._reply_join(join.waiter, ErrorCode.unknown_member_id, member_id=join.member_id)
                return
            group = self._create_group(join.group_id)
        records_before = len(self._out.records)
        if not self._accept_joining_member(group, join.member_id):
            self._remove_member(group, join.member_id)
            self._reply_join(join.waiter, ErrorCode.group_max_size_reached, member_id="")
        elif not join.member_id:
            self._join_new_member(group, join)
        else:
            self._join_existing_member(group, join)
        if is_new_group and len(self._out.records) == records_before:
            # A group that nothing else recorded yet is recorded as empty, so it exists in the log.
            self._write(group.group_id, *group_records.empty_group_metadata(group))

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        if group.is_in(GroupState.EMPTY):
            return True
        member = group.members.get(member_id)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            # Counting members that rejoined (not all members) lets a lowered max size
            # shrink the group, turning away the last ones to rejoin.
            return (member is not None and member.awaiting_join is not None) or group.num_awaiting_join() < self._max_group_size
        return member is not None or len(group.members) < self._max_group_size

    def _join_new_member(self, group: ClassicGroup, join: _Join) -> None:
        if not group.supports_protocols(join.protocol_type, protocol_names(join.protocols)):
            self._reply_join(join.waiter, ErrorCode.inconsistent_group_protocol, member_id="")
            return
        new_member_id = group.generate_member_id(join.client_id, join.group_instance_id)
        if join.group_instance_id is not None:
            existing_member_id = group.static_members.get(join.group_instance_id)
            if existing_member_id is not None:
                self._replace_static_member_then_rebalance_or_complete_join(group, join, existing_member_id, new_member_id)
            else:
                self._add_member_then_rebalance_or_complete_join(group, join, new_member_id)
        elif join.waiter.version >= 4:
            # The member must come back with this id; until then it is pending, and
            # expires like a member that stops heartbeating.
            group.add_pending_member(new_member_id)
            self._schedule_heartbeat(group.group_id, new_member_id, join.session_timeout_ms)
            self._reply_join(join.waiter, ErrorCode.member_id_required, member_id=new_member_id)
        else:
            self._add_member_then_rebalance_or_complete_join(group, join, new_member_id)

    def _join_existing_member(self, group: ClassicGroup, join: _Join) -> None:
        member_id = join.member_id
        if not group.supports_protocols(join.protocol_type, protocol_names(join.protocols)):
            self._reply_join(join.waiter, ErrorCode.inconsistent_group_protocol, member_id=member_id)
            return
        if member_id in group.pending_join_members:
            if join.group_instance_id is not None:
                # Pending members are dynamic by construction: Kafka fails such a request.
                self._reply_join(join.waiter, ErrorCode.unknown_server_error, member_id=member_id)
            else:
                self._add_member_then_rebalance_or_complete_join(group, join, member_id)
            return
        try:
            group.validate_member(member_id, join.group_instance_id)
        except GroupError as e:
            self._reply_join(join.waiter, e.code, member_id=member_id)
            return
        member = group.members[member_id]
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._update_member_then_rebalance_or_complete_join(group, member, join)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            if member.matches(join.protocols):
                # Most likely the member missed its JoinGroup response: send it again.
                self._reply_join(join.waiter, ErrorCode.none, **self._generation(group, member_id, group.is_leader(member_id)))
            else:
                self._update_member_then_rebalance_or_complete_join(group, member, join)
        elif group.is_leader(member_id) or not member.matches(join.protocols):  # Stable, as the group has members
            # A leader's JoinGroup always rebalances: it is how the leader asks for a
            # new assignment when something outside the member metadata changed.
            self._update_member_then_rebalance_or_complete_join(group, member, join)
        else:
            self._reply_join(join.waiter, ErrorCode.none, **self._generation(group, member_id, False))

    def _update_member_then_rebalance_or_complete_join(self, group: ClassicGroup, member: ClassicGroupMember, join: _Join) -> None:
        self._update_member(group, member, join)
        self._maybe_prepare_rebalance_or_complete_join(group)

    def _update_member(self, group: ClassicGroup, member: ClassicGroupMember, join: _Join) -> None:
        # A JoinGroup already parked for this member is superseded (its client gave up on it).
        self._complete_join(member, ErrorCode.rebalance_in_progress, member_id=member.member_id)
        group.update_member(member, join.protocols, join.rebalance_timeout_ms, join.session_timeout_ms, join.waiter)

    def _add_member_then_rebalance_or_complete_join(self, group: ClassicGroup, join: _Join, member_id: str) -> None:
        member = ClassicGroupMember(
            member_id, join.group_instance_id, join.client_id, join.client_host, join.rebalance_timeout_ms,
            join.session_timeout_ms, join.protocol_type, join.protocols, is_new=True,
        )
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True
        group.add(member, join.waiter)
        # A new member cannot heartbeat while its JoinGroup is parked, and a client that
        # gave up and retried would leave it behind: bound how long it may wait.
        self._schedule_heartbeat(group.group_id, member_id, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(group)

    def _replace_static_member_then_rebalance_or_complete_join(
        self, group: ClassicGroup, join: _Join, old_member_id: str, new_member_id: str,
    ) -> None:
        assert join.group_instance_id is not None
        leader_before = group.leader_id
        old = group.members[old_member_id]
        # Whoever still waits as the old member id is a duplicate instance: fence it.
        self._complete_join(old, ErrorCode.fenced_instance_id, member_id=old_member_id)
        self._complete_sync(old, ErrorCode.fenced_instance_id)
        self._timers.cancel(("heartbeat", group.group_id, old_member_id))
        member = group.replace_static_member(join.group_instance_id, old_member_id, new_member_id)
        self._schedule_heartbeat(group.group_id, new_member_id, member.session_timeout_ms)
        group.update_member(member, join.protocols, join.rebalance_timeout_ms, join.session_timeout_ms, join.waiter)
        if group.is_in(GroupState.STABLE):
            if group.protocol_name == group.select_protocol():
                # The restarted instance takes its old place: record its new id, no rebalance.
                self._write(group.group_id, *group_records.group_metadata(group, group.group_assignment()))
                if join.waiter.version >= 9:
                    # The leader learns it leads, but may keep the current assignment.
                    is_leader = group.is_leader(new_member_id)
                    self._complete_join(member, ErrorCode.none, skip_assignment=is_leader,
                                        **self._generation(group, new_member_id, is_leader))
                else:
                    self._complete_join(member, ErrorCode.none, **{**self._generation(group, new_member_id, False),
                                                                   "leader": leader_before or ""})
            else:
                self._maybe_prepare_rebalance_or_complete_join(group)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            # The leader may be assigning to the old member id: assign again.
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join_phase(group)

    def _generation(self, group: ClassicGroup, member_id: str, with_members: bool) -> dict[str, Any]:
        """JoinGroup response fields describing the current generation to a member."""
        members = []
        if with_members:
            assert group.protocol_name is not None
            members = [
                {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata(group.protocol_name)}
                for m in group.members.values()
            ]
        return {"member_id": member_id, "generation_id": group.generation_id, "protocol_type": group.protocol_type,
                "protocol_name": group.protocol_name, "leader": group.leader_id or "", "members": members}

    # Rebalancing

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join_phase(group)

    def _prepare_rebalance(self, group: ClassicGroup) -> None:
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_with_error(group, ErrorCode.rebalance_in_progress)
        self._remove_sync_expiration(group)
        is_initial_rebalance = group.is_in(GroupState.EMPTY)
        if is_initial_rebalance:
            # A new group waits a little for more members, to avoid a rebalance per member.
            delay_ms = self._initial_rebalance_delay_ms
            remaining_ms = max(group.rebalance_timeout_ms() - delay_ms, 0)
            self._schedule_join(group.group_id, delay_ms, functools.partial(
                self._try_complete_initial_rebalance, group.group_id, delay_ms, remaining_ms))
        group.transition_to(GroupState.PREPARING_REBALANCE, self._clock.wall_ms())
        if not is_initial_rebalance:
            self._maybe_complete_join_else_schedule(group)

    def _maybe_complete_join_else_schedule(self, group: ClassicGroup) -> None:
        if group.has_all_members_joined():
            self._complete_join_phase(group)
        else:
            self._schedule_join(group.group_id, group.rebalance_timeout_ms(),
                                functools.partial(self._complete_join_phase_of, group.group_id))

    def _try_complete_initial_rebalance(self, group_id: str, delay_ms: int, remaining_ms: int) -> None:
        group = self._classic_group(group_id)
        if group is None:
            return
        if group.new_member_added and remaining_ms != 0:
            # Someone joined during the delay: wait again, within the rebalance timeout.
            group.new_member_added = False
            new_delay_ms = min(self._initial_rebalance_delay_ms, remaining_ms)
            new_remaining_ms = max(remaining_ms - delay_ms, 0)
            self._schedule_join(group_id, new_delay_ms, functools.partial(
                self._try_complete_initial_rebalance, group_id, new_delay_ms, new_remaining_ms))
        else:
            self._complete_join_phase(group)

    def _maybe_complete_join_phase(self, group: ClassicGroup) -> None:
        if (
            group.is_in(GroupState.PREPARING_REBALANCE)
            and group.previous_state is not GroupState.EMPTY  # the initial rebalance ends by its timer
            and group.has_all_members_joined()
        ):
            self._complete_join_phase(group)

    def _complete_join_phase_of(self, group_id: str) -> None:
        group = self._classic_group(group_id)
        if group is not None:
            self._complete_join_phase(group)

    def _complete_join_phase(self, group: ClassicGroup) -> None:
        """Ends the join phase: dynamic members that did not rejoin are removed, and the
        next generation starts with a selected protocol and leader."""
        self._timers.cancel(("join", group.group_id))
        for member in group.not_yet_rejoined_members():
            if not member.is_static:
                self._remove_member(group, member.member_id)
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Nobody rejoined: wait until the session timeouts remove the silent members.
            self._schedule_join(group.group_id, group.rebalance_timeout_ms(),
                                functools.partial(self._complete_join_phase_of, group.group_id))
            return
        group.init_next_generation(self._clock.wall_ms())
        if group.is_in(GroupState.EMPTY):
            self._write(group.group_id, *group_records.group_metadata(group, {}))
            return
        for member in list(group.members.values()):
            is_leader = group.is_leader(member.member_id)
            self._complete_join(member, ErrorCode.none, **self._generation(group, member.member_id, is_leader))
            self._schedule_heartbeat(group.group_id, member.member_id, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        # Members that do not send their SyncGroup within the rebalance timeout are removed.
        self._timers.schedule(("sync", group.group_id), self._clock.monotonic_ms() + group.rebalance_timeout_ms(),
                              functools.partial(self._expire_pending_sync, group.group_id, group.generation_id))

    def _expire_pending_sync(self, group_id: str, generation_id: int) -> None:
        group = self._classic_group(group_id)
        if group is None or generation_id != group.generation_id:
            return
        if group.is_in(GroupState.COMPLETING_REBALANCE, GroupState.STABLE) and group.pending_sync_members:
            for member_id in list(group.pending_sync_members):
                self._remove_member(group, member_id)
            self._prepare_rebalance(group)

    def _remove_sync_expiration(self, group: ClassicGroup) -> None:
        group.pending_sync_members.clear()
        self._timers.cancel(("sync", group.group_id))

    def _reset_and_propagate_assignment_with_error(self, group: ClassicGroup, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _set_and_propagate_assignment(self, group: ClassicGroup, assignment: dict[str, bytes]) -> None:
        for member in group.members.values():
            member.assignment = assignment.get(member.member_id, b"")
        self._propagate_assignment(group, ErrorCode.none)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode) -> None:
        ok = error is ErrorCode.none
        for member in group.members.values():
            if self._complete_sync(member, error, protocol_type=group.protocol_type if ok else None,
                                   protocol_name=group.protocol_name if ok else None, assignment=member.assignment):
                # The session restarts now: an expiry while the member waited was ignored.
                self._schedule_heartbeat(group.group_id, member.member_id, member.session_timeout_ms)

    # Members leaving, by request or by silence

    def _remove_member(self, group: ClassicGroup, member_id: str) -> None:
        """Removes a member (or pending member), answering its parked requests."""
        member = group.members.get(member_id)
        if member is not None:
            # The client retries its JoinGroup from scratch if it is still alive.
            self._complete_join(member, ErrorCode.unknown_member_id, member_id="")
            self._complete_sync(member, ErrorCode.unknown_member_id)
        self._timers.cancel(("heartbeat", group.group_id, member_id))
        group.remove(member_id)

    def _expire_heartbeat(self, group_id: str, member_id: str) -> None:
        group = self._classic_group(group_id)
        if group is None:
            return
        if member_id in group.pending_join_members:
            self._remove_member(group, member_id)
            if group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
                self._complete_join_phase(group)
            return
        member = group.members.get(member_id)
        if member is not None and not member.has_satisfied_heartbeat():
            self._remove_member(group, member_id)
            if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group)
            elif group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
                self._complete_join_phase(group)

    # SyncGroup

    def _sync_group(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        protocol_type = getattr(request, "protocol_type", None)
        protocol_name = getattr(request, "protocol_name", None)
        if not request.group_id:
            self._reply(waiter, _sync_response(ErrorCode.invalid_group_id))
            return
        if version >= 5 and (protocol_type is None or protocol_name is None):
            self._reply(waiter, _sync_response(ErrorCode.inconsistent_group_protocol))
            return
        group = self.groups.get(request.group_id)
        if group is None or group.is_empty():
            self._reply(waiter, _sync_response(ErrorCode.unknown_member_id))
            return
        if isinstance(group, ConsumerGroup):
            self._reply(waiter, _sync_response(_classic_member_refusal(group, request.member_id,
                                                                       getattr(request, "group_instance_id", None))))
            return
        member_id = request.member_id
        try:
            self._validate_sync(group, member_id, getattr(request, "group_instance_id", None), request.generation_id,
                                protocol_type, protocol_name)
        except GroupError as e:
            self._reply(waiter, _sync_response(e.code))
            return
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._reply(waiter, _sync_response(ErrorCode.rebalance_in_progress))
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            member = group.members[member_id]
            # A SyncGroup already parked for this member is superseded (its client gave up on it).
            self._complete_sync(member, ErrorCode.rebalance_in_progress)
            member.awaiting_sync = waiter
            self._remove_pending_sync_member(group, member_id)
            if group.is_leader(member_id):
                assignment = {a.member_id: bytes(a.assignment) for a in request.assignments}
                for other_id in group.members:
                    assignment.setdefault(other_id, b"")
                self._write(group.group_id, *group_records.group_metadata(group, assignment))
                self._set_and_propagate_assignment(group, assignment)
                group.transition_to(GroupState.STABLE, self._clock.wall_ms())
        else:
            self._remove_pending_sync_member(group, member_id)
            self._reply(waiter, _sync_response(ErrorCode.none, group.protocol_type, group.protocol_name,
                                               group.members[member_id].assignment))

    @staticmethod
    def _validate_sync(
        group: ClassicGroup, member_id: str, group_instance_id: str | None, generation_id: int,
        protocol_type: str | None, protocol_name: str | None,
    ) -> None:
        group.validate_member(member_id, group_instance_id)
        if generation_id != group.generation_id:
            raise GroupError(ErrorCode.illegal_generation)
        if _inconsistent(protocol_type, group.protocol_type) or _inconsistent(protocol_name, group.protocol_name):
            raise GroupError(ErrorCode.inconsistent_group_protocol)

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            self._timers.cancel(("sync", group.group_id))

    # Heartbeat

    def _heartbeat(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        self._reply(waiter, {"throttle_time": 0, "error_code": self._heartbeat_error(request)})

    def _heartbeat_error(self, request: Any) -> ErrorCode:
        if not request.group_id:
            return ErrorCode.invalid_group_id
        group = self.groups.get(request.group_id)
        if group is None:
            return ErrorCode.unknown_member_id
        if isinstance(group, ConsumerGroup):
            return _classic_member_refusal(group, request.member_id, getattr(request, "group_instance_id", None))
        try:
            group.validate_member(request.member_id, getattr(request, "group_instance_id", None))
        except GroupError as e:
            return e.code
        if request.generation_id != group.generation_id:
            return ErrorCode.illegal_generation
        member = group.members[request.member_id]
        self._schedule_heartbeat(group.group_id, member.member_id, member.session_timeout_ms)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    # LeaveGroup

    def _leave_group(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        if version >= 3:
            identities = [(m.member_id, m.group_instance_id) for m in request.members]
        else:
            identities = [(request.member_id, None)]
        if not request.group_id:
            self._reply(waiter, _leave_response(version, ErrorCode.invalid_group_id, []))
            return
        group = self.groups.get(request.group_id)
        if group is None:
            responses = [_left(member_id, instance_id, ErrorCode.unknown_member_id) for member_id, instance_id in identities]
            self._reply(waiter, _leave_response(version, ErrorCode.none, responses))
            return
        if isinstance(group, ConsumerGroup):
            # An admin removing a static member by instance id alone is not fenced for its member id.
            responses = [
                _left(member_id, instance_id, _classic_member_refusal(group, member_id, instance_id) if member_id
                      else ErrorCode.unknown_member_id)
                for member_id, instance_id in identities
            ]
            self._reply(waiter, _leave_response(version, ErrorCode.none, responses))
            return
        responses = [self._leave(group, member_id, instance_id) for member_id, instance_id in identities]
        if any(r["error_code"] is ErrorCode.none for r in responses):
            if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group)
            elif group.is_in(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group)
        self._reply(waiter, _leave_response(version, ErrorCode.none, responses))

    def _leave(self, group: ClassicGroup, member_id: str, group_instance_id: str | None) -> dict[str, Any]:
        if not member_id:
            # An admin removing a static member by its instance id alone.
            static_member_id = group.static_members.get(group_instance_id) if group_instance_id is not None else None
            if static_member_id is None:
                return _left(member_id, group_instance_id, ErrorCode.unknown_member_id)
            self._remove_member(group, static_member_id)
        elif member_id in group.pending_join_members:
            self._remove_member(group, member_id)
        else:
            try:
                group.validate_member(member_id, group_instance_id)
            except GroupError as e:
                return _left(member_id, group_instance_id, e.code)
            self._remove_member(group, member_id)
        return _left(member_id, group_instance_id, ErrorCode.none)

    # OffsetCommit

    def _commit_offsets(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        member_id = request.member_id
        try:
            group = self._validate_offset_commit(version, request.group_id, member_id,
                                                 getattr(request, "group_instance_id", None),
                                                 request.generation_id_or_member_epoch)
        except GroupError as e:
            self._reply(waiter, {"throttle_time": 0, "topics": offset_commit_errors(request.topics, e.code)})
            return
        if isinstance(group, ClassicGroup) and group.is_in(GroupState.STABLE, GroupState.PREPARING_REBALANCE):
            # A commit keeps the member's session alive.
            member = group.members[member_id]
            self._schedule_heartbeat(group.group_id, member_id, member.session_timeout_ms)
        now_ms = self._clock.wall_ms()
        retention_ms = ms(getattr(request, "retention_time", None))
        expire_timestamp_ms = None if retention_ms == DEFAULT_RETENTION_TIME else now_ms + retention_ms
        records, topics = self._offset_commit_records(group.group_id, request.topics, now_ms, expire_timestamp_ms)
        self._apply(group.group_id, records)
        self._reply(waiter, {"throttle_time": 0, "topics": topics})

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
                offset = OffsetAndMetadata(p.committed_offset, getattr(p, "committed_leader_epoch", -1), metadata or "",
                                           now_ms, expire_timestamp_ms)
                records.append(group_records.offset_commit(group_id, topic.name, p.partition_index, offset))
                partitions.append({"partition_index": p.partition_index, "error_code": ErrorCode.none})
            response_topics.append({"name": topic.name, "partitions": partitions})
        return records, response_topics

    def _validate_offset_commit(
        self, version: int, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int,
    ) -> ClassicGroup | ConsumerGroup:
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                # From v9 the missing group is named; older clients expect ILLEGAL_GENERATION.
                raise GroupError(ErrorCode.group_id_not_found if version >= 9 else ErrorCode.illegal_generation)
            # A consumer committing without membership (or an admin): a simple group holds its offsets.
            group = self._create_group(group_id)
        if isinstance(group, ConsumerGroup):
            group.validate_offset_commit(member_id, generation_id, version)
        else:
            group.validate_offset_commit(member_id, group_instance_id, generation_id)
        return group

    # TxnOffsetCommit

    def _txn_commit_offsets(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        try:
            self._validate_txn_offset_commit(version, request)
        except GroupError as e:
            self._reply(waiter, {"throttle_time": 0, "topics": offset_commit_errors(request.topics, e.code)})
            return
        records, topics = self._offset_commit_records(request.group_id, request.topics, self._clock.wall_ms(), None)
        for key, value in records:
            self._write(request.group_id, key, value)
        self._out.transactional = (request.producer_id, request.producer_epoch)
        self._reply(waiter, {"throttle_time": 0, "topics": topics})

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
        group = self.groups.get(group_id)
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

    def _end_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        offsets = self.pending_offsets.end((partition, producer_id))
        if commit:
            self.offsets.take_later(offsets)

    # OffsetFetch

    def _fetch_group_offsets(
        self, group_id: str, topics: Any, member_id: str | None, member_epoch: int, require_stable: bool,
    ) -> dict[str, Any]:
        """Offsets of the requested partitions, or of every partition if topics is None; a
        consumer group's member (OffsetFetch v9) must name its current epoch."""
        group = self.groups.get(group_id)
        if isinstance(group, ConsumerGroup):
            try:
                group.validate_offset_fetch(member_id, member_epoch)
            except GroupError as e:
                return {"group_id": group_id, "topics": [], "error_code": e.code}
        stored = self.offsets.of_group(group_id) if group is not None else {}

        def fetched(topic: str, partition: int, offset: OffsetAndMetadata | None) -> dict[str, Any]:
            if require_stable and self.pending_offsets.has(group_id, topic, partition):
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

    def _delete_offsets(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        try:
            group = self._validate_offset_delete(request.group_id)
        except GroupError as e:
            self._reply(waiter, {"error_code": e.code, "throttle_time": 0, "topics": []})
            return
        topics = []
        for topic in request.topics:
            if group.is_subscribed_to_topic(topic.name):
                error = ErrorCode.group_subscribed_to_topic
            else:
                error = ErrorCode.none
                for p in topic.partitions:
                    self._delete_offset(group.group_id, topic.name, p.partition_index)
            topics.append({"name": topic.name, "partitions": [
                {"partition_index": p.partition_index, "error_code": error} for p in topic.partitions
            ]})
        self._reply(waiter, {"error_code": ErrorCode.none, "throttle_time": 0, "topics": topics})

    def _validate_offset_delete(self, group_id: str) -> ClassicGroup | ConsumerGroup:
        if not group_id:
            raise GroupError(ErrorCode.invalid_group_id)
        group = self.groups.get(group_id)
        if group is None:
            raise GroupError(ErrorCode.group_id_not_found)
        group.validate_offset_delete()
        return group

    # DeleteGroups, ListGroups, DescribeGroups

    def _delete_groups(self, version: int, group_ids: list[str], token: object) -> None:
        waiter = Waiter(token, version)
        results = []
        for group_id in dict.fromkeys(group_ids):  # duplicates are answered once, as Kafka does
            group = self.groups.get(group_id)
            try:
                if group is None:
                    raise GroupError(ErrorCode.group_id_not_found)
                group.validate_delete_group()
            except GroupError as e:
                results.append({"group_id": group_id, "error_code": e.code})
                continue
            for topic, partition in dict.fromkeys(self.offsets.partitions_of_group(group_id)
                                                  + self.pending_offsets.partitions_of_group(group_id)):
                self._delete_offset(group_id, topic, partition)
            self._delete_group(group_id)
            results.append({"group_id": group_id, "error_code": ErrorCode.none})
        self._reply(waiter, {"throttle_time": 0, "results": results})

    def _describe(self, version: int, group_id: str) -> dict[str, Any]:
        group = self.groups.get(group_id)
        if not isinstance(group, ClassicGroup):
            # From v6 a missing group is an error; before, it looks like a dead group. A
            # consumer group is missing to this API.
            message = f"Group {group_id} not found." if group is None else f"Group {group_id} is not a classic group."
            return {
                "error_code": ErrorCode.group_id_not_found if version >= 6 else ErrorCode.none,
                "error_message": message if version >= 6 else None,
                "group_id": group_id, "group_state": GroupState.DEAD.value, "protocol_type": "", "protocol_data": "",
                "members": [], "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
            }
        # The protocol, and the members' metadata for it, are only shown once settled.
        protocol = group.protocol_name if group.is_in(GroupState.STABLE) else None
        return {
            "error_code": ErrorCode.none, "error_message": None, "group_id": group_id, "group_state": group.state.value,
            "protocol_type": group.protocol_type or "", "protocol_data": protocol or "",
            "members": [
                {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
                 "client_host": m.client_host, "member_metadata": b"" if protocol is None else m.metadata(protocol),
                 "member_assignment": m.assignment}
                for m in group.members.values()
            ],
            "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
        }

    # ConsumerGroupHeartbeat (KIP-848)

    def _consumer_group_heartbeat(self, version: int, request: Any, token: object, client_id: str, client_host: str) -> None:
        waiter = Waiter(token, version)
        try:
            self._validate_consumer_heartbeat(version, request)
            if request.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                response = self._consumer_group_leave(request)
            else:
                # Kafka reports a client's address as Java's InetAddress prints it.
                response = self._consumer_group_member_heartbeat(request, client_id, f"/{client_host}")
        except GroupError as e:
            response = consumer_group_heartbeat_response(e.code, error_message=e.message)
        self._reply(waiter, response)

    def _validate_consumer_heartbeat(self, version: int, request: Any) -> None:
        """Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid."""
        def invalid(message: str) -> GroupError:
            return GroupError(ErrorCode.invalid_request, message)

        epoch = request.member_epoch
        regex = getattr(request, "subscribed_topic_regex", None)
        # From v1 the consumer generates its member id; in v0 the coordinator does, on join.
        if (version >= 1 or epoch > 0 or epoch == LEAVE_GROUP_MEMBER_EPOCH) and _blank(request.member_id):
            raise invalid("MemberId can't be empty.")
        for value, name in ((request.group_id, "GroupId"), (request.instance_id, "InstanceId"), (request.rack_id, "RackId")):
            if value is not None and _blank(value):
                raise invalid(f"{name} can't be empty.")
        if regex:
            # Kafka resolves regular expressions in the background and records the result,
            # which this coordinator does not do (yet). An empty one, as librdkafka sends
            # with topic names, subscribes to nothing more.
            raise invalid("SubscribedTopicRegex is not supported.")
        if epoch == 0:
            if ms(request.rebalance_timeout) == -1:
                raise invalid("RebalanceTimeoutMs must be provided in first request.")
            if request.topic_partitions is None or request.topic_partitions:
                raise invalid("TopicPartitions must be empty when (re-)joining.")
            if request.subscribed_topic_names is None:
                raise invalid("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.")
        elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            if request.instance_id is None:
                raise invalid("InstanceId can't be null.")
        elif epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise invalid("MemberEpoch is invalid.")
        if request.server_assignor is not None and request.server_assignor not in self._consumer_assignors:
            raise GroupError(ErrorCode.unsupported_assignor,
                             f"ServerAssignor {request.server_assignor} is not supported. Supported assignors: "
                             f"{', '.join(self._consumer_assignors)}.")

    def _consumer_group_member_heartbeat(self, request: Any, client_id: str, client_host: str) -> dict[str, Any]:
        """A join (member epoch 0) or a heartbeat: (1) the member is created or updated, and the
        group epoch bumped if its subscription changed; (2) a new target assignment is computed
        if the group epoch passed it; (3) the member reconciles towards its target."""
        records: list[tuple[bytes, bytes | None]] = []
        group_id = request.group_id
        joining = request.member_epoch == 0
        owned = owned_partitions(request.topic_partitions)
        group = self._consumer_group_to_join(group_id, joining, records)
        member_id = request.member_id
        if len(group.members) >= self._consumer_max_group_size and (not member_id or member_id not in group.members):
            raise GroupError(ErrorCode.group_max_size_reached,
                             f"The consumer group has reached its maximum capacity of {self._consumer_max_group_size} members.")
        if not member_id:
            member_id = _random_member_id()
        if request.instance_id is None:
            member = self._dynamic_member(group, member_id, request.member_epoch, owned, joining)
        else:
            member = self._static_member(group, member_id, request.member_epoch, request.instance_id, owned, joining, records)

        rebalance_timeout_ms = ms(request.rebalance_timeout)
        names = request.subscribed_topic_names
        updated = replace(
            member,
            instance_id=_updated(request.instance_id, member.instance_id),
            rack_id=_updated(request.rack_id, member.rack_id),
            rebalance_timeout_ms=member.rebalance_timeout_ms if rebalance_timeout_ms == -1 else rebalance_timeout_ms,
            server_assignor=_updated(request.server_assignor, member.server_assignor),
            subscribed_topic_names=member.subscribed_topic_names if names is None else frozenset(names),
            client_id=client_id,
            client_host=client_host,
        )
        bump_group_epoch = False
        if updated != member:
            records.append(group_records.consumer_member_subscription(group_id, updated))
            bump_group_epoch = updated.subscribed_topic_names != member.subscribed_topic_names

        # (1) The group epoch, bumped if the subscriptions, or the topics they name, changed.
        group_epoch = group.group_epoch
        metadata = group.subscription_metadata
        subscribed = group.subscribed_topic_names
        num_members = len(group.members)
        if bump_group_epoch or group.metadata_refresh_needed:
            subscribed = group.subscribed_topic_names_with(member, updated)
            metadata = subscription_metadata(subscribed, self._topics)
            if updated.member_id not in group.members and updated.instance_id not in group.static_members:
                num_members += 1
            if metadata != group.subscription_metadata:
                bump_group_epoch = True
                records.append(group_records.consumer_subscription_metadata(group_id, metadata))
            if bump_group_epoch:
                group_epoch += 1
                records.append(group_records.consumer_group_epoch(group_id, group_epoch))
            group.metadata_refresh_needed = False

        # (2) The target assignment, computed again if the group epoch moved past it.
        if group_epoch > group.target_assignment_epoch:
            kind = subscription_type(subscribed, num_members)
            target = self._update_target_assignment(group, group_epoch, member, updated, metadata, kind, records)
            target_epoch = group_epoch
        else:
            target_epoch = group.target_assignment_epoch
            target = group.target_assignment_of(updated.member_id, updated.instance_id)

        # (3) The member's next step towards its target.
        reconciled = self._maybe_reconcile(group, updated, target_epoch, target, owned, records)
        self._apply(group_id, records)
        self._schedule_consumer_session(group_id, member_id)

        response = consumer_group_heartbeat_response(
            ErrorCode.none, member_id=reconciled.member_id, member_epoch=reconciled.member_epoch,
            heartbeat_interval=self._consumer_heartbeat_interval_ms,
        )
        # A full request (a join, or a member resending everything after an error) always
        # gets the assignment; otherwise only a changed one is sent.
        full_request = joining or (rebalance_timeout_ms != -1 and names is not None and owned is not None)
        if full_request or reconciled.assigned_partitions != member.assigned_partitions:
            response["assignment"] = {"topic_partitions": [
                {"topic_id": topic_id, "partitions": sorted(partitions)}
                for topic_id, partitions in _sorted_by_topic_id(reconciled.assigned_partitions)
            ]}
        return response

    def _consumer_group_to_join(self, group_id: str, create: bool, records: list[tuple[bytes, bytes | None]]) -> ConsumerGroup:
        """The consumer group, or (when joining) a new one, which its records will bring into
        being. An empty classic group gives way to it."""
        group = self.groups.get(group_id)
        if create and group is None:
            return ConsumerGroup(group_id)
        if create and isinstance(group, ClassicGroup) and group.is_empty():
            records.append(group_records.group_tombstone(group_id))
            return ConsumerGroup(group_id)
        # Kafka could convert a busy classic group of the consumer protocol online: not supported here.
        return self._existing_consumer_group(group_id)

    def _dynamic_member(
        self, group: ConsumerGroup, member_id: str, member_epoch: int, owned: Mapping[uuid.UUID, frozenset[int]] | None,
        create: bool,
    ) -> ConsumerGroupMember:
        member = (group.members.get(member_id) or ConsumerGroupMember(member_id)) if create else group.member(member_id)
        _check_member_epoch(member, member_epoch, owned)
        return member

    def _static_member(
        self, group: ConsumerGroup, member_id: str, member_epoch: int, instance_id: str,
        owned: Mapping[uuid.UUID, frozenset[int]] | None, create: bool, records: list[tuple[bytes, bytes | None]],
    ) -> ConsumerGroupMember:
        existing = group.static_member(instance_id)
        if create:
            if existing is None:
                return group.members.get(member_id) or ConsumerGroupMember(member_id)
            if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                raise GroupError(ErrorCode.unreleased_instance_id,
                                 f"Static member {member_id} with instance id {instance_id} cannot join the group because "
                                 f"the instance id is owned by {existing.member_id} member.")
            # The instance comes back (its previous incarnation left with epoch -2): it takes
            # over the member's place, assignment included, under its new member id.
            new = replace(existing, member_id=member_id, member_epoch=0, previous_member_epoch=0)
            records.extend(group_records.consumer_member_tombstones(group.group_id, existing.member_id))
            records.append(group_records.consumer_member_subscription(group.group_id, new))
            records.append(group_records.consumer_target_assignment(
                group.group_id, member_id, group.target_assignment.get(existing.member_id, {})))
            records.append(group_records.consumer_current_assignment(group.group_id, new))
            return new
        if existing is None:
            raise GroupError(ErrorCode.unknown_member_id, f"Instance id {instance_id} is unknown.")
        if existing.member_id != member_id:
            raise _fenced_instance(member_id, instance_id, existing.member_id)
        _check_member_epoch(existing, member_epoch, owned)
        return existing

    def _update_target_assignment(
        self, group: ConsumerGroup, group_epoch: int, member: ConsumerGroupMember, updated: ConsumerGroupMember,
        metadata: Mapping[str, TopicMetadata], kind: SubscriptionType, records: list[tuple[bytes, bytes | None]],
    ) -> Assignment:
        """Records the delta to the group's new target assignment; the member's part of it."""
        preferred = group.preferred_server_assignor_with(member, updated)
        assignor = self._consumer_assignors.get(preferred or "", self._consumer_assignors[self._default_consumer_assignor])
        replaced = group.static_members.get(updated.instance_id) if updated.instance_id is not None else None
        try:
            new = target_assignment(group, assignor, metadata, kind, updated,
                                    None if replaced == updated.member_id else replaced)
        except PartitionAssignorError as e:
            raise GroupError(ErrorCode.unknown_server_error,
                             f"Failed to compute a new target assignment for epoch {group_epoch}: {e}") from e
        for member_id, assignment in new.items():
            if assignment != group.target_assignment.get(member_id):
                records.append(group_records.consumer_target_assignment(group.group_id, member_id, assignment))
        records.append(group_records.consumer_target_assignment_epoch(group.group_id, group_epoch))
        return new.get(updated.member_id, {})

    def _maybe_reconcile(
        self, group: ConsumerGroup, member: ConsumerGroupMember, target_epoch: int, target: Assignment,
        owned: Mapping[uuid.UUID, frozenset[int]] | None, records: list[tuple[bytes, bytes | None]],
    ) -> ConsumerGroupMember:
        if member.is_reconciled_to(target_epoch):
            return member
        reconciled = reconcile(member, target_epoch, target, group.current_partition_epoch, owned)
        if reconciled != member:
            records.append(group_records.consumer_current_assignment(group.group_id, reconciled))
            if reconciled.state is MemberState.UNREVOKED_PARTITIONS:
                self._schedule_consumer_rebalance(group.group_id, reconciled)
            else:
                self._timers.cancel(("consumer-rebalance", group.group_id, reconciled.member_id))
        return reconciled

    def _consumer_group_leave(self, request: Any) -> dict[str, Any]:
        """Epoch -1: the member leaves. Epoch -2: a static member leaves for a while, keeping
        its partitions until it is back or its session expires."""
        group_id, member_id, epoch = request.group_id, request.member_id, request.member_epoch
        group = self._existing_consumer_group(group_id)
        if request.instance_id is None:
            self._fence_consumer_member(group, group.member(member_id))
            return consumer_group_heartbeat_response(ErrorCode.none, member_id=member_id, member_epoch=epoch)
        member = group.static_member(request.instance_id)
        if member is None:
            raise GroupError(ErrorCode.unknown_member_id, f"Instance id {request.instance_id} is unknown.")
        if member.member_id != member_id:
            raise _fenced_instance(member_id, request.instance_id, member.member_id)
        if epoch == LEAVE_GROUP_MEMBER_EPOCH:
            self._fence_consumer_member(group, member)
            return consumer_group_heartbeat_response(ErrorCode.none, member_id=member_id, member_epoch=epoch)
        away = replace(member, member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH, partitions_pending_revocation={})
        self._apply(group_id, [group_records.consumer_current_assignment(group_id, away)])
        return consumer_group_heartbeat_response(ErrorCode.none, member_id=member.member_id,
                                                 member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH)

    def _fence_consumer_member(self, group: ConsumerGroup, member: ConsumerGroupMember) -> None:
        """Removes the member and bumps the group epoch: the others get its partitions."""
        records: list[tuple[bytes, bytes | None]] = list(group_records.consumer_member_tombstones(group.group_id, member.member_id))
        metadata = subscription_metadata(group.subscribed_topic_names_with(member, None), self._topics)
        if metadata != group.subscription_metadata:
            records.append(group_records.consumer_subscription_metadata(group.group_id, metadata))
        records.append(group_records.consumer_group_epoch(group.group_id, group.group_epoch + 1))
        self._timers.cancel(("consumer-session", group.group_id, member.member_id))
        self._timers.cancel(("consumer-rebalance", group.group_id, member.member_id))
        self._apply(group.group_id, records)

    def _schedule_consumer_session(self, group_id: str, member_id: str) -> None:
        self._timers.schedule(("consumer-session", group_id, member_id),
                              self._clock.monotonic_ms() + self._consumer_session_timeout_ms,
                              functools.partial(self._expire_consumer_session, group_id, member_id))

    def _expire_consumer_session(self, group_id: str, member_id: str) -> None:
        group = self._consumer_group(group_id)
        if group is not None and member_id in group.members:
            self._fence_consumer_member(group, group.members[member_id])

    def _schedule_consumer_rebalance(self, group_id: str, member: ConsumerGroupMember) -> None:
        """A member has its rebalance timeout to revoke partitions, or it is fenced."""
        self._timers.schedule(("consumer-rebalance", group_id, member.member_id),
                              self._clock.monotonic_ms() + member.rebalance_timeout_ms,
                              functools.partial(self._expire_consumer_rebalance, group_id, member.member_id, member.member_epoch))

    def _expire_consumer_rebalance(self, group_id: str, member_id: str, member_epoch: int) -> None:
        group = self._consumer_group(group_id)
        member = None if group is None else group.members.get(member_id)
        if group is not None and member is not None and member.member_epoch == member_epoch:
            self._fence_consumer_member(group, member)

    # ConsumerGroupDescribe

    def _describe_consumer_group(self, group_id: str, with_operations: bool) -> dict[str, Any]:
        if not group_id:
            return consumer_group_describe_error(group_id, ErrorCode.invalid_group_id, None)
        try:
            group = self._existing_consumer_group(group_id)
        except GroupError as e:
            return consumer_group_describe_error(group_id, e.code, e.message)
        return {
            "error_code": ErrorCode.none, "error_message": None, "group_id": group_id, "group_state": group.state.value,
            "group_epoch": group.group_epoch, "assignment_epoch": group.target_assignment_epoch,
            "assignor_name": group.preferred_server_assignor() or self._default_consumer_assignor,
            "members": [
                {"member_id": m.member_id, "instance_id": m.instance_id, "rack_id": m.rack_id, "member_epoch": m.member_epoch,
                 "client_id": m.client_id, "client_host": m.client_host,
                 "subscribed_topic_names": sorted(m.subscribed_topic_names), "subscribed_topic_regex": m.subscribed_topic_regex,
                 "assignment": self._described_assignment(m.assigned_partitions),
                 "target_assignment": self._described_assignment(group.target_assignment.get(m.member_id, {})),
                 "member_type": 1}  # a member of the consumer protocol (0 would be a classic one)
                for m in group.members.values()
            ],
            "authorized_operations": GROUP_AUTHORIZED_OPERATIONS if with_operations else AUTHORIZED_OPERATIONS_OMITTED,
        }

    def _described_assignment(self, assignment: Assignment) -> dict[str, Any]:
        """Partitions of topics that still exist, named."""
        return {"topic_partitions": [
            {"topic_id": topic_id, "topic_name": self._topic_names[topic_id], "partitions": sorted(partitions)}
            for topic_id, partitions in _sorted_by_topic_id(assignment) if topic_id in self._topic_names
        ]}

    # Replay

    def _replay(self, key: bytes, value: bytes | None, transaction: tuple[int, int] | None = None) -> None:
        """transaction: (partition, producer id) of the transactional batch holding the record."""
        record = group_records.decode(key, value)
        if isinstance(record, group_records.OffsetRecord):
            if record.offset is None:
                self._remove_offset(record.group_id, record.topic, record.partition)
            else:
                if record.group_id not in self.groups:
                    # Offsets committed outside of any membership belong to a "simple" group.
                    self._create_group(record.group_id)
                record_order = next(self._record_order)
                if transaction is None:
                    self.offsets.put(record.group_id, record.topic, record.partition, record.offset, record_order)
                else:
                    self.pending_offsets.put(transaction, record.group_id, record.topic, record.partition, record.offset,
                                             record_order)
        elif isinstance(record, group_records.GroupRecord):
            if record.group is None:
                self._remove_group(record.group_id)
            else:
                self.groups[record.group_id] = record.group
        elif isinstance(record, group_records.ConsumerGroupRecord):
            self._replay_consumer_group(record.key, record.value)

    def _replay_consumer_group(self, key: group_records.ConsumerGroupKey, value: Any) -> None:
        group = self._persisted_consumer_group(key.group_id, create=value is not None)
        if group is None:
            return  # a tombstone of what is already gone
        if isinstance(key, ConsumerGroupMetadataKey):
            if value is not None:
                group.group_epoch = value.epoch
            else:
                if group.members or group.target_assignment or group.target_assignment_epoch != NO_ASSIGNMENT_EPOCH:
                    raise RuntimeError(f"Consumer group {key.group_id} is deleted before its members and assignment")
                del self.groups[key.group_id]
        elif isinstance(key, ConsumerGroupPartitionMetadataKey):
            group.subscription_metadata = {} if value is None else {
                t.topic_name: TopicMetadata(t.topic_id, t.topic_name, t.num_partitions) for t in value.topics
            }
        elif isinstance(key, ConsumerGroupMemberMetadataKey):
            member = group.members.get(key.member_id)
            if value is not None:
                group.update_member((member or ConsumerGroupMember(key.member_id)).with_metadata(value))
            elif member is not None:
                if member.member_epoch != LEAVE_GROUP_MEMBER_EPOCH or key.member_id in group.target_assignment:
                    raise RuntimeError(f"Member {key.member_id} of {key.group_id} is deleted before its assignments")
                group.remove_member(key.member_id)
        elif isinstance(key, ConsumerGroupTargetAssignmentMemberKey):
            if value is not None:
                group.update_target_assignment(key.member_id, assignment_from_record(value.topic_partitions))
            elif key.member_id in group.target_assignment:
                group.remove_target_assignment(key.member_id)
        elif isinstance(key, ConsumerGroupTargetAssignmentMetadataKey):
            if value is None and group.target_assignment:
                raise RuntimeError(f"The target assignment of {key.group_id} is deleted before its members' parts")
            group.target_assignment_epoch = NO_ASSIGNMENT_EPOCH if value is None else value.assignment_epoch
        elif isinstance(key, ConsumerGroupCurrentMemberAssignmentKey):
            member = group.members.get(key.member_id)
            if value is not None:
                group.update_member((member or ConsumerGroupMember(key.member_id)).with_assignment(value))
            elif member is not None:
                # The member is on its way out: it owns nothing any more.
                group.update_member(replace(member, member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                                            previous_member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                                            assigned_partitions={}, partitions_pending_revocation={}))

    def _persisted_consumer_group(self, group_id: str, create: bool) -> ConsumerGroup | None:
        group = self.groups.get(group_id)
        if isinstance(group, ConsumerGroup):
            return group
        if group is None and not create:
            return None
        if group is not None and not group.is_simple():
            raise RuntimeError(f"Group {group_id} is not a consumer group")
        # A simple group has no record of its own, only offsets: the consumer group takes its place.
        consumer_group = ConsumerGroup(group_id)
        self.groups[group_id] = consumer_group
        return consumer_group

    # Offset retention

    def _schedule_offset_expiration(self) -> None:
        self._timers.schedule(("offset-expiration",), self._clock.monotonic_ms() + self._retention_check_interval_ms,
                              self._expire_offsets_and_groups)

    def _expire_offsets_and_groups(self) -> None:
        """Drops expired offsets, and empty groups left with no offsets."""
        now_ms = self._clock.wall_ms()
        for group_id in list(self.groups):
            if self._expire_offsets(group_id, now_ms) and self.groups[group_id].is_empty():
                self._delete_group(group_id)
        self._schedule_offset_expiration()

    def _expire_offsets(self, group_id: str, now_ms: int) -> bool:
        """Deletes the group's expired offsets; True if it has none left."""
        stored = self.offsets.of_group(group_id)
        # A transaction in flight keeps the group: its offsets may yet be committed.
        in_transactions = set(self.pending_offsets.partitions_of_group(group_id))
        if not stored:
            return not in_transactions
        group = self.groups[group_id]
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
                    self._delete_offset(group_id, topic, partition)
                else:
                    all_expired = False
        return all_expired and not in_transactions

    # State and records

    def _create_group(self, group_id: str) -> ClassicGroup:
        group = ClassicGroup(group_id, self._clock.wall_ms())
        self.groups[group_id] = group
        return group

    def _remove_group(self, group_id: str) -> None:
        group = self.groups.pop(group_id, None)
        if isinstance(group, ClassicGroup):
            group.transition_to(GroupState.DEAD, self._clock.wall_ms())

    def _delete_group(self, group_id: str) -> None:
        group = self.groups[group_id]
        if isinstance(group, ConsumerGroup):
            self._apply(group_id, group_records.consumer_group_tombstones(group_id, list(group.members)))
        else:
            self._write(group_id, *group_records.group_tombstone(group_id))
            self._remove_group(group_id)

    def _classic_group(self, group_id: str) -> ClassicGroup | None:
        """The group if it is classic: timers of a group that was since replaced by one
        of another type find nothing to do."""
        group = self.groups.get(group_id)
        return group if isinstance(group, ClassicGroup) else None

    def _consumer_group(self, group_id: str) -> ConsumerGroup | None:
        group = self.groups.get(group_id)
        return group if isinstance(group, ConsumerGroup) else None

    def _existing_consumer_group(self, group_id: str) -> ConsumerGroup:
        group = self.groups.get(group_id)
        if group is None:
            raise GroupError(ErrorCode.group_id_not_found, f"Group {group_id} not found.")
        if not isinstance(group, ConsumerGroup):
            raise GroupError(ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group.")
        return group

    def _delete_offset(self, group_id: str, topic: str, partition: int) -> None:
        if self.offsets.get(group_id, topic, partition) is not None or self.pending_offsets.has(group_id, topic, partition):
            self._remove_offset(group_id, topic, partition)
            self._write(group_id, *group_records.offset_tombstone(group_id, topic, partition))

    def _remove_offset(self, group_id: str, topic: str, partition: int) -> None:
        """What a tombstone does: the offset goes, and so do those pending in transactions."""
        self.offsets.remove(group_id, topic, partition)
        self.pending_offsets.remove(group_id, topic, partition)

    def _write(self, group_id: str, key: bytes, value: bytes | None) -> None:
        self._out.records.append((self.partition_for(group_id), key, value))

    def _apply(self, group_id: str, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Writes records and replays them, as Kafka's coordinator does with its writes."""
        for key, value in records:
            self._write(group_id, key, value)
            self._replay(key, value)

    # Timers and replies

    def _schedule_heartbeat(self, group_id: str, member_id: str, timeout_ms: int) -> None:
        self._timers.schedule(("heartbeat", group_id, member_id), self._clock.monotonic_ms() + timeout_ms,
                              functools.partial(self._expire_heartbeat, group_id, member_id))

    def _schedule_join(self, group_id: str, delay_ms: int, action: Callable[[], None]) -> None:
        self._timers.schedule(("join", group_id), self._clock.monotonic_ms() + delay_ms, action)

    def _reply(self, waiter: Waiter, response: dict[str, Any]) -> None:
        self._out.replies.append((waiter.token, response))

    def _reply_join(self, waiter: Waiter, error: ErrorCode, **fields: Any) -> None:
        self._reply(waiter, _join_response(waiter.version, error, **fields))

    def _complete_join(self, member: ClassicGroupMember, error: ErrorCode, **fields: Any) -> None:
        waiter, member.awaiting_join = member.awaiting_join, None
        if waiter is not None:
            self._reply_join(waiter, error, **fields)

    def _complete_sync(self, member: ClassicGroupMember, error: ErrorCode, **fields: Any) -> bool:
        """Answers the member's parked SyncGroup, if any; whether there was one."""
        waiter, member.awaiting_sync = member.awaiting_sync, None
        if waiter is None:
            return False
        self._reply(waiter, _sync_response(error, **fields))
        return True


def consumer_group_heartbeat_response(
    error: ErrorCode, *, error_message: str | None = None, member_id: str | None = None, member_epoch: int = 0,
    heartbeat_interval: int = 0,
) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": error, "error_message": error_message, "member_id": member_id,
            "member_epoch": member_epoch, "heartbeat_interval": heartbeat_interval, "assignment": None}


def offset_commit_errors(topics: Any, error: ErrorCode) -> list[dict[str, Any]]:
    """The response topics of an OffsetCommit or TxnOffsetCommit refused as a whole."""
    return [
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": error} for p in t.partitions]}
        for t in topics
    ]


def consumer_group_describe_error(group_id: str, error: ErrorCode, message: str | None) -> dict[str, Any]:
    return {"error_code": error, "error_message": message, "group_id": group_id, "group_state": "", "group_epoch": 0,
            "assignment_epoch": 0, "assignor_name": "", "members": [], "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED}


def _check_member_epoch(member: ConsumerGroupMember, received: int, owned: Mapping[uuid.UUID, frozenset[int]] | None) -> None:
    """A member must heartbeat with its epoch, or with the previous one if it owns no more
    than its assignment (the response bumping its epoch may have been lost)."""
    if received > member.member_epoch:
        raise GroupError(ErrorCode.fenced_member_epoch,
                         f"The consumer group member has a greater member epoch ({received}) than the one known by the "
                         f"group coordinator ({member.member_epoch}). The member must abandon all its partitions and rejoin.")
    if received < member.member_epoch and (
        received != member.previous_member_epoch or not _is_subset(owned, member.assigned_partitions)
    ):
        raise GroupError(ErrorCode.fenced_member_epoch,
                         f"The consumer group member has a smaller member epoch ({received}) than the one known by the "
                         f"group coordinator ({member.member_epoch}). The member must abandon all its partitions and rejoin.")


def _fenced_instance(member_id: str, instance_id: str, owner_id: str) -> GroupError:
    return GroupError(ErrorCode.fenced_instance_id,
                      f"Static member {member_id} with instance id {instance_id} was fenced by member {owner_id}.")


def _is_subset(owned: Mapping[uuid.UUID, frozenset[int]] | None, assigned: Assignment) -> bool:
    if owned is None:
        return False
    return all(topic_id in assigned and partitions <= assigned[topic_id] for topic_id, partitions in owned.items())


def _classic_member_refusal(group: ConsumerGroup, member_id: str, instance_id: str | None) -> ErrorCode:
    """Why a classic SyncGroup, Heartbeat or LeaveGroup of a consumer group's member fails: no
    member speaks the classic protocol here, but a wrong instance's member id is fenced first."""
    if instance_id is not None:
        static = group.static_member(instance_id)
        if static is not None and static.member_id != member_id:
            return ErrorCode.fenced_instance_id
    return ErrorCode.unknown_member_id


def _sorted_by_topic_id(assignment: Assignment) -> list[tuple[uuid.UUID, frozenset[int]]]:
    return sorted(assignment.items(), key=lambda item: java_uuid_order(item[0]))


def _updated(value: Any, current: Any) -> Any:
    """A heartbeat field: null means unchanged."""
    return current if value is None else value


def _blank(value: str) -> bool:
    return not value.strip(_JAVA_TRIMMED)


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current


def _left(member_id: str, group_instance_id: str | None, error: ErrorCode) -> dict[str, Any]:
    return {"member_id": member_id, "group_instance_id": group_instance_id, "error_code": error}
