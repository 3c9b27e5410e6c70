"""The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat, ConsumerGroupDescribe),
with the semantics of the consumer-group part of Kafka's GroupMetadataManager.

A consumer group changes only as its records are replayed: each heartbeat works out the
records (member, group epoch, target assignment, current assignment) and applies them.
Consumer groups need the cluster's topics: the shell hands them over with
`on_topics_changed` at startup and whenever they change.
"""

from __future__ import annotations

import base64
import functools
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig
from ..wire.build import ms
from . import group_records
from .assignors import ASSIGNORS, Assignment, PartitionAssignorError, SubscriptionType, java_uuid_order
from .classic_group import ClassicGroup, GroupError, Waiter
from .consumer_group import (
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    ConsumerGroup,
    ConsumerGroupMember,
    MemberState,
    TopicMetadata,
    owned_partitions,
    reconcile,
    subscription_metadata,
    subscription_type,
    target_assignment,
)
from .group_refusals import AUTHORIZED_OPERATIONS_OMITTED, consumer_group_describe_error, consumer_group_heartbeat_response
from .shard import GROUP_AUTHORIZED_OPERATIONS, GroupCoordinatorShard

# Java's String.trim: what a blank string is made of.
_JAVA_TRIMMED = "".join(map(chr, range(33)))


def _random_member_id() -> str:
    """Kafka's Uuid.randomUuid().toString(): url-safe base64, never starting with '-'."""
    while True:
        member_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not member_id.startswith("-"):
            return member_id


class ConsumerGroupProtocol:
    def __init__(self, shard: GroupCoordinatorShard, config: BrokerConfig, clock: Clock) -> None:
        self._shard = shard
        self._clock = clock
        self._consumer_session_timeout_ms = config.int("group.consumer.session.timeout.ms")
        self._consumer_heartbeat_interval_ms = config.int("group.consumer.heartbeat.interval.ms")
        self._consumer_max_group_size = config.int("group.consumer.max.size")
        assignor_names = config.strings("group.consumer.assignors")
        self._consumer_assignors = {name: ASSIGNORS[name] for name in assignor_names}
        self._default_consumer_assignor = assignor_names[0]
        # The cluster's topics: name -> (topic id, partition count), and names by id.
        self._topics: dict[str, tuple[uuid.UUID, int]] = {}
        self._topic_names: dict[uuid.UUID, str] = {}

    def on_topics_changed(self, topics: Mapping[str, tuple[uuid.UUID, int]]) -> None:
        """The cluster's topics, name -> (topic id, partition count): at startup, and again
        whenever they change. Consumer groups subscribed to a topic that changed check
        their subscriptions at their next heartbeat, as Kafka's onNewMetadataImage asks."""
        changed = {name for name in self._topics.keys() | topics.keys() if self._topics.get(name) != topics.get(name)}
        if not changed:
            return
        self._topics = dict(topics)
        self._topic_names = {topic_id: name for name, (topic_id, _) in topics.items()}
        for group in self._shard.groups.values():
            if isinstance(group, ConsumerGroup) and not changed.isdisjoint(group.subscribed_topic_names):
                group.metadata_refresh_needed = True

    def start_sessions(self, group: ConsumerGroup) -> None:
        """A loaded group's members' sessions start now."""
        for member in group.members.values():
            self._schedule_consumer_session(group.group_id, member.member_id)
            if member.state is MemberState.UNREVOKED_PARTITIONS:
                self._schedule_consumer_rebalance(group.group_id, member)

    def describe(self, version: int, request: Any) -> dict:
        with_operations = request.include_authorized_operations
        return {"throttle_time": 0, "groups": [
            self._describe_group(group_id, with_operations) for group_id in request.group_ids
        ]}

    # ConsumerGroupHeartbeat (KIP-848)

    def heartbeat(self, version: int, request: Any, token: object, client_id: str, client_host: str) -> None:
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
        self._shard.reply(waiter, response)

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
        self._shard.apply(group_id, records)
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
        group = self._shard.groups.get(group_id)
        if create and group is None:
            return ConsumerGroup(group_id)
        if create and isinstance(group, ClassicGroup) and group.is_empty():
            records.append(group_records.group_tombstone(group_id))
            return ConsumerGroup(group_id)
        # Kafka could convert a busy classic group of the consumer protocol online: not supported here.
        return self._shard.existing_consumer_group(group_id)

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
                self._shard.timers.cancel(("consumer-rebalance", group.group_id, reconciled.member_id))
        return reconciled

    def _consumer_group_leave(self, request: Any) -> dict[str, Any]:
        """Epoch -1: the member leaves. Epoch -2: a static member leaves for a while, keeping
        its partitions until it is back or its session expires."""
        group_id, member_id, epoch = request.group_id, request.member_id, request.member_epoch
        group = self._shard.existing_consumer_group(group_id)
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
        self._shard.apply(group_id, [group_records.consumer_current_assignment(group_id, away)])
        return consumer_group_heartbeat_response(ErrorCode.none, member_id=member.member_id,
                                                 member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH)

    def _fence_consumer_member(self, group: ConsumerGroup, member: ConsumerGroupMember) -> None:
        """Removes the member and bumps the group epoch: the others get its partitions."""
        records: list[tuple[bytes, bytes | None]] = list(group_records.consumer_member_tombstones(group.group_id, member.member_id))
        metadata = subscription_metadata(group.subscribed_topic_names_with(member, None), self._topics)
        if metadata != group.subscription_metadata:
            records.append(group_records.consumer_subscription_metadata(group.group_id, metadata))
        records.append(group_records.consumer_group_epoch(group.group_id, group.group_epoch + 1))
        self._shard.timers.cancel(("consumer-session", group.group_id, member.member_id))
        self._shard.timers.cancel(("consumer-rebalance", group.group_id, member.member_id))
        self._shard.apply(group.group_id, records)

    def _schedule_consumer_session(self, group_id: str, member_id: str) -> None:
        self._shard.timers.schedule(("consumer-session", group_id, member_id),
                                    self._clock.monotonic_ms() + self._consumer_session_timeout_ms,
                                    functools.partial(self._expire_consumer_session, group_id, member_id))

    def _expire_consumer_session(self, group_id: str, member_id: str) -> None:
        group = self._shard.consumer_group(group_id)
        if group is not None and member_id in group.members:
            self._fence_consumer_member(group, group.members[member_id])

    def _schedule_consumer_rebalance(self, group_id: str, member: ConsumerGroupMember) -> None:
        """A member has its rebalance timeout to revoke partitions, or it is fenced."""
        self._shard.timers.schedule(("consumer-rebalance", group_id, member.member_id),
                                    self._clock.monotonic_ms() + member.rebalance_timeout_ms,
                                    functools.partial(self._expire_consumer_rebalance, group_id, member.member_id, member.member_epoch))

    def _expire_consumer_rebalance(self, group_id: str, member_id: str, member_epoch: int) -> None:
        group = self._shard.consumer_group(group_id)
        member = None if group is None else group.members.get(member_id)
        if group is not None and member is not None and member.member_epoch == member_epoch:
            self._fence_consumer_member(group, member)

    # ConsumerGroupDescribe

    def _describe_group(self, group_id: str, with_operations: bool) -> dict[str, Any]:
        if not group_id:
            return consumer_group_describe_error(group_id, ErrorCode.invalid_group_id, None)
        try:
            group = self._shard.existing_consumer_group(group_id)
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


def _sorted_by_topic_id(assignment: Assignment) -> list[tuple[uuid.UUID, frozenset[int]]]:
    return sorted(assignment.items(), key=lambda item: java_uuid_order(item[0]))


def _updated(value: Any, current: Any) -> Any:
    """A heartbeat field: null means unchanged."""
    return current if value is None else value


def _blank(value: str) -> bool:
    return not value.strip(_JAVA_TRIMMED)
