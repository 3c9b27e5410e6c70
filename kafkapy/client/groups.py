"""Consumer groups: their offsets and descriptions, and a member of a classic group."""

from __future__ import annotations

import importlib
import io
import itertools
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from ..wire.build import build
from .cluster import RETRY_BACKOFF_S, ClusterClient
from .connection import ClientError, Connection, check

SESSION_TIMEOUT_MS = 10_000
REBALANCE_TIMEOUT_MS = 30_000
# Kafka's consumer heartbeats every 3 s; members learn of a rebalance from a heartbeat, so
# more often here lets a console consumer's group settle quickly.
HEARTBEAT_INTERVAL_S = 1.0
# The states in which Kafka's tool resets a group's offsets: no member would overwrite them.
RESETTABLE_STATES = ("Empty", "Dead")


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str | None
    group_type: str | None = None
    """"classic" or "consumer" (KIP-848), where the broker says (ListGroups v5 and later)."""


@dataclass(frozen=True)
class GroupMemberInfo:
    member_id: str
    client_id: str
    client_host: str
    assignment: Mapping[str, list[int]]


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[GroupMemberInfo]


class GroupsClient(ClusterClient):
    """Consumer groups' offsets and descriptions, from their coordinators."""

    def committed_offsets(self, group: str, topics: Sequence[str] | None = None) -> dict[tuple[str, int], int]:
        """The group's committed offset of each partition of `topics` (None: of all it has committed)."""
        requested = None
        if topics is not None:
            infos = [self.topic(t) for t in topics]
            requested = [{"name": i.name, "topic_id": i.topic_id, "partition_indexes": sorted(i.partitions)} for i in infos]

        def fetch_offsets() -> Any:
            response = self.coordinator(group).request("offset_fetch", {
                "group_id": group, "topics": requested, "require_stable": False,
                "groups": [{"group_id": group, "member_id": None, "member_epoch": -1, "topics": requested}],
            })
            found = response.groups[0] if hasattr(response, "groups") else response
            check(getattr(found, "error_code", ErrorCode.none), f"fetching the offsets of group {group!r}")
            return found

        found = self._retrying(fetch_offsets)
        offsets = {}
        for topic in found.topics:
            name = self._topic_name(topic)
            for p in topic.partitions:
                check(p.error_code, f"fetching the offset of group {group!r} for {name}-{p.partition_index}")
                if p.committed_offset >= 0:
                    offsets[(name, p.partition_index)] = p.committed_offset
        return offsets

    def commit_offsets(self, group: str, offsets: Mapping[tuple[str, int], int], generation: int = -1,
                       member_id: str = "") -> None:
        """Commits offsets: as a member of a generation, or (-1, "") as an admin for a group without members."""
        by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (topic, partition), offset in sorted(offsets.items()):
            by_topic[topic].append({"partition_index": partition, "committed_offset": offset,
                                    "committed_leader_epoch": -1, "committed_metadata": ""})
        if not by_topic:
            return
        response = self.coordinator(group).request("offset_commit", {
            "group_id": group, "generation_id_or_member_epoch": generation, "member_id": member_id,
            "group_instance_id": None, "retention_time": -1,
            "topics": [{"name": t, "topic_id": self._topic_id(t), "partitions": ps} for t, ps in by_topic.items()],
        })
        for topic in response.topics:
            for p in topic.partitions:
                check(p.error_code, f"committing the offset of group {group!r} for "
                                    f"{self._topic_name(topic)}-{p.partition_index}")

    def list_groups(self) -> list[GroupListing]:
        """The groups of every broker's coordinators."""
        groups = {}
        for node in sorted(self.metadata([]).brokers):
            response = self.broker(node).request("list_groups", {"states_filter": [], "types_filter": []})
            check(response.error_code, f"listing the groups of broker {node}")
            for g in response.groups:
                groups[g.group_id] = GroupListing(g.group_id, g.protocol_type, getattr(g, "group_state", None),
                                                   getattr(g, "group_type", None))
        return [groups[name] for name in sorted(groups)]

    def describe_group(self, group: str) -> GroupInfo:
        """A group's state and members; a group that does not exist is "Dead", as Kafka says."""

        def describe() -> Any:
            response = self.coordinator(group).request("describe_groups", {
                "groups": [group], "include_authorized_operations": False,
            })
            [found] = response.groups
            if found.error_code != ErrorCode.group_id_not_found:
                check(found.error_code, f"describing group {group!r}", getattr(found, "error_message", None))
            return found

        found = self._retrying(describe)
        if found.error_code == ErrorCode.group_id_not_found:
            return GroupInfo(group, "Dead", "", "", [])
        consumer = found.protocol_type == "consumer"
        members = [
            GroupMemberInfo(m.member_id, m.client_id, m.client_host,
                            decode_assignment(m.member_assignment) if consumer else {})
            for m in found.members
        ]
        return GroupInfo(found.group_id, found.group_state, found.protocol_type, found.protocol_data, members)


    def delete_group(self, group: str) -> None:
        """Deletes a group without members, with its committed offsets."""

        def delete() -> None:
            response = self.coordinator(group).request("delete_groups", {"groups_names": [group]})
            [result] = response.results
            check(result.error_code, f"deleting group {group!r}")

        self._retrying(delete)

    def delete_group_offsets(self, group: str, topic: str, partitions: Sequence[int]) -> None:
        """Deletes a group's committed offsets of these partitions of a topic (OffsetDelete);
        Kafka refuses it for a topic the group's members are subscribed to."""

        def delete() -> None:
            response = self.coordinator(group).request("offset_delete", {
                "group_id": group,
                "topics": [{"name": topic, "partitions": [{"partition_index": p} for p in partitions]}],
            })
            check(response.error_code, f"deleting the offsets of group {group!r}")
            for answered in response.topics:
                for partition in answered.partitions:
                    check(partition.error_code,
                          f"deleting the offset of group {group!r} for {answered.name}-{partition.partition_index}")

        self._retrying(delete)


class GroupMember:
    """A member of a classic consumer group, as Kafka's consumer is one: it joins with the
    "consumer" protocol type and the range assignor (the leader assigns the partitions),
    heartbeats from a background thread, and leaves the group when closed."""

    def __init__(self, client: GroupsClient, group: str, topics: Sequence[str]) -> None:
        self.client = client
        self.group = group
        self.topics = list(topics)
        self.member_id = ""
        self.generation = -1
        self.assignment: dict[str, list[int]] = {}
        self.rejoin_needed = threading.Event()
        self.rejoin_needed.set()
        self._coordinator: Connection | None = None
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    def join(self) -> dict[str, list[int]]:
        """Joins (or rejoins) the group; returns this member's partitions of the new generation."""
        self._end_heartbeat()
        deadline = time.monotonic() + REBALANCE_TIMEOUT_MS / 1000 + self.client.timeout
        while (assignment := self._join_round()) is None:
            if time.monotonic() > deadline:
                raise ClientError(f"could not join group {self.group!r}: it kept rebalancing")
        self.assignment = assignment
        self.rejoin_needed.clear()
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat, args=(self._coordinator, self.generation, self.member_id, self._stop_heartbeat),
            name=f"heartbeat {self.group}", daemon=True,
        )
        self._heartbeat_thread.start()
        return assignment

    def _join_round(self) -> dict[str, list[int]] | None:
        """A JoinGroup and SyncGroup: this member's assignment, or None if another round is needed."""
        coordinator = self._coordinator = self.client.coordinator(self.group)
        joined = coordinator.request("join_group", {
            "group_id": self.group, "session_timeout": SESSION_TIMEOUT_MS, "rebalance_timeout": REBALANCE_TIMEOUT_MS,
            "member_id": self.member_id, "group_instance_id": None, "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": encode_subscription(self.topics)}], "reason": None,
        }, timeout=REBALANCE_TIMEOUT_MS / 1000 + self.client.timeout)
        if joined.error_code in (ErrorCode.member_id_required, ErrorCode.unknown_member_id):
            # A new member gets its id in a first round (KIP-394); a forgotten one starts afresh.
            self.member_id = joined.member_id if joined.error_code == ErrorCode.member_id_required else ""
            return None
        if ErrorCode(joined.error_code).retriable:  # the coordinator is moving or loading
            time.sleep(RETRY_BACKOFF_S)
            return None
        check(joined.error_code, f"joining group {self.group!r}")
        self.member_id, self.generation = joined.member_id, joined.generation_id
        assignments = self._assign(joined.members) if joined.leader == joined.member_id else {}
        synced = coordinator.request("sync_group", {
            "group_id": self.group, "generation_id": self.generation, "member_id": self.member_id,
            "group_instance_id": None, "protocol_type": "consumer", "protocol_name": joined.protocol_name,
            "assignments": [{"member_id": m, "assignment": encode_assignment(a)} for m, a in assignments.items()],
        })
        if synced.error_code in (ErrorCode.rebalance_in_progress, ErrorCode.illegal_generation):
            return None
        if synced.error_code == ErrorCode.unknown_member_id:
            self.member_id = ""
            return None
        check(synced.error_code, f"syncing with group {self.group!r}")
        return decode_assignment(synced.assignment)

    def _assign(self, members: Sequence[Any]) -> dict[str, dict[str, list[int]]]:
        subscriptions = {m.member_id: decode_subscription(m.metadata) for m in members}
        topics = sorted(set(itertools.chain.from_iterable(subscriptions.values())))
        cluster = self.client.metadata(topics)
        counts = {name: len(info.partitions) for name, info in cluster.topics.items()}
        return range_assign(subscriptions, counts)

    def _heartbeat(self, coordinator: Connection, generation: int, member_id: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_INTERVAL_S):
            try:
                response = coordinator.request("heartbeat", {
                    "group_id": self.group, "generation_id": generation, "member_id": member_id,
                    "group_instance_id": None,
                })
            except ClientError:
                response = None
            # A rebalance, a fenced member or a lost coordinator: the consumer rejoins.
            if response is None or response.error_code != ErrorCode.none:
                self.rejoin_needed.set()
                return

    def _end_heartbeat(self) -> None:
        self._stop_heartbeat.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join()
            self._heartbeat_thread = None

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.client.commit_offsets(self.group, offsets, self.generation, self.member_id)

    def close(self) -> None:
        """Leaves the group, so it rebalances now rather than after the session timeout."""
        self._end_heartbeat()
        if not self.member_id:
            return
        response = self.client.coordinator(self.group).request("leave_group", {
            "group_id": self.group, "member_id": self.member_id,
            "members": [{"member_id": self.member_id, "group_instance_id": None, "reason": "the consumer is closing"}],
        })
        self.member_id = ""
        check(response.error_code, f"leaving group {self.group!r}")


def range_assign(subscriptions: Mapping[str, Sequence[str]], partition_counts: Mapping[str, int]) -> dict[str, dict[str, list[int]]]:
    """Kafka's RangeAssignor: for each topic, its subscribers in member id order take
    consecutive ranges of its partitions, the first `count % subscribers` one more each."""
    assignment: dict[str, dict[str, list[int]]] = {member: {} for member in subscriptions}
    for topic, count in sorted(partition_counts.items()):
        members = sorted(m for m, topics in subscriptions.items() if topic in topics)
        if not members:
            continue
        share, extra = divmod(count, len(members))
        start = 0
        for index, member in enumerate(members):
            size = share + (index < extra)
            if size:
                assignment[member][topic] = list(range(start, start + size))
            start += size
    return assignment


# The consumer protocol's subscription and assignment bytes: a version, then the struct at
# that version. Later versions only append fields, so a newer one reads as the newest known.
_CONSUMER_PROTOCOL_VERSION = 3
_VERSION = struct.Struct(">h")


@cache
def _consumer_protocol_type(kind: str, version: int) -> type:
    module = importlib.import_module(f"kio.schema.consumer_protocol_{kind}.v{version}.data")
    return getattr(module, f"ConsumerProtocol{kind.title()}")


def _encode_versioned(kind: str, data: Mapping[str, Any]) -> bytes:
    entity = build(_consumer_protocol_type(kind, _CONSUMER_PROTOCOL_VERSION), data)
    out = io.BytesIO()
    out.write(_VERSION.pack(_CONSUMER_PROTOCOL_VERSION))
    entity_writer(type(entity))(out, entity)
    return out.getvalue()


def _decode_versioned(kind: str, data: bytes) -> Any:
    (version,) = _VERSION.unpack_from(data)
    entity_type = _consumer_protocol_type(kind, min(version, _CONSUMER_PROTOCOL_VERSION))
    return entity_reader(entity_type)(data, _VERSION.size)[0]


def encode_subscription(topics: Sequence[str]) -> bytes:
    return _encode_versioned("subscription", {"topics": sorted(topics), "owned_partitions": []})


def decode_subscription(data: bytes) -> list[str]:
    return list(_decode_versioned("subscription", data).topics)


def encode_assignment(assignment: Mapping[str, Sequence[int]]) -> bytes:
    return _encode_versioned("assignment", {
        "assigned_partitions": [{"topic": t, "partitions": sorted(ps)} for t, ps in sorted(assignment.items())],
    })


def decode_assignment(data: bytes | None) -> dict[str, list[int]]:
    """A member's partitions by topic; none for the empty bytes of a member without any."""
    if not data:
        return {}
    assignment = _decode_versioned("assignment", data)
    return {tp.topic: sorted(tp.partitions) for tp in assignment.assigned_partitions}
