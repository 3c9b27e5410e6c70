"""Drives a GroupCoordinator as the broker's shell would, with a FakeClock.

Requests are real kio entities of the version asked for; every reply is built into
the kio response entity of its request's version and encoded, so a reply shape that
some version cannot carry fails the test that produced it.
"""

from __future__ import annotations

import io
import struct
import uuid
from dataclasses import dataclass
from typing import Any

from kio.schema.consumer_protocol_subscription.v1.data import ConsumerProtocolSubscription
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer

from kafkapy.clock import FakeClock
from kafkapy.config import BrokerConfig
from kafkapy.coordinator.group_coordinator import GroupCoordinator
from kafkapy.coordinator.shard import Result
from kafkapy.wire.build import build
from kafkapy.wire.protocol import request_type, response_type

OFFSET_COMMIT, OFFSET_FETCH, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 8, 9, 11, 12, 13, 14
TXN_OFFSET_COMMIT = 28
DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS, OFFSET_DELETE = 15, 16, 42, 47
CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69

SESSION_MS = 10_000
REBALANCE_MS = 30_000
NUM_PARTITIONS = 50


def subscription(*topics: str) -> bytes:
    """A consumer's embedded ConsumerProtocolSubscription (version 1)."""
    buffer = io.BytesIO()
    entity_writer(ConsumerProtocolSubscription)(
        buffer, ConsumerProtocolSubscription(topics=topics, user_data=None, owned_partitions=())
    )
    return struct.pack(">h", 1) + buffer.getvalue()


DEFAULT_PROTOCOLS = (("range", subscription("topic")),)


class Token:
    """What the shell hands the coordinator to be answered later."""

    def __init__(self, api_key: int, version: int, name: str) -> None:
        self.api_key = api_key
        self.version = version
        self.name = name

    def __repr__(self) -> str:
        return f"Token({self.name} v{self.version})"


def encodes(api_key: int, version: int, response: dict[str, Any]) -> None:
    """Fails unless the response dict makes a valid response of that version."""
    entity = build(response_type(api_key, version), response)
    entity_writer(type(entity))(io.BytesIO(), entity)


@dataclass(frozen=True)
class Marker:
    """A transaction marker the transaction coordinator wrote into a partition."""

    partition: int
    producer_id: int
    commit: bool


@dataclass(frozen=True)
class Appended:
    """A record as the shell appended it: in a transactional batch of a producer, or not (-1)."""

    partition: int
    key: bytes
    value: bytes | None
    producer_id: int


class Harness:
    def __init__(self, config: dict[str, object] | None = None) -> None:
        self.clock = FakeClock()
        settings: dict[str, object] = {"group.initial.rebalance.delay.ms": 0}
        settings.update(config or {})
        self.config = BrokerConfig(settings)
        self.coordinator = GroupCoordinator(self.config, self.clock, NUM_PARTITIONS)
        self.records: list[tuple[int, bytes, bytes | None]] = []
        # What __consumer_offsets holds, in order: the records and the transaction markers.
        self.log: list[Appended | Marker] = []
        self.replies: dict[Token, dict[str, Any]] = {}
        self.topic_ids: dict[str, uuid.UUID] = {}
        self.topics: dict[str, int] = {}  # partition counts, as last set

    # Plumbing

    def apply(self, result: Result) -> Result:
        """As the shell does: the records are appended, transactional ones replayed once
        appended, then the replies delivered."""
        producer_id = -1 if result.transactional is None else result.transactional[0]
        self.records.extend(result.records)
        self.log.extend(Appended(partition, key, value, producer_id) for partition, key, value in result.records)
        if result.transactional is not None:
            for partition, key, value in result.records:
                self.coordinator.replay(partition, key, value, producer_id=producer_id)
        for token, response in result.replies:
            assert isinstance(token, Token)
            assert token not in self.replies, f"{token} answered twice"
            encodes(token.api_key, token.version, response)
            self.replies[token] = response
        return result

    def reply(self, token: Token) -> dict[str, Any] | None:
        return self.replies.get(token)

    def tick(self, advance_ms: int = 0) -> Result:
        self.clock.advance(advance_ms)
        return self.apply(self.coordinator.tick())

    def settle(self) -> None:
        """Fires timers until none is due now (zero delays chain across ticks)."""
        for _ in range(10):
            deadline = self.coordinator.next_deadline()
            if deadline is None or deadline > self.clock.monotonic_ms():
                return
            self.tick()
        raise AssertionError("timers keep firing")

    def restarted(self, config: dict[str, object] | None = None) -> Harness:
        """A coordinator started again, as the broker does: told the topics, then replaying
        every record written so far, then loaded; on the same clock."""
        fresh = Harness(config)
        fresh.clock = self.clock
        fresh.coordinator = GroupCoordinator(fresh.config, self.clock, NUM_PARTITIONS)
        fresh.topic_ids = dict(self.topic_ids)
        fresh.set_topics(**self.topics)
        fresh.log = list(self.log)
        for entry in self.log:
            if isinstance(entry, Marker):
                fresh.coordinator.replay_end_transaction(entry.partition, entry.producer_id, entry.commit)
            elif entry.producer_id == -1:
                fresh.coordinator.replay(entry.partition, entry.key, entry.value)
            else:
                fresh.coordinator.replay(entry.partition, entry.key, entry.value, producer_id=entry.producer_id)
        for partition in range(NUM_PARTITIONS):
            fresh.apply(fresh.coordinator.loaded(partition))
        return fresh

    def group(self, group_id: str) -> Any:
        return self.coordinator.groups[group_id]

    def state(self, group_id: str) -> str:
        return self.coordinator.groups[group_id].state.value

    # Requests

    def join(
        self, group_id: str, member_id: str = "", *, version: int = 9, instance: str | None = None,
        protocols: tuple[tuple[str, bytes], ...] = DEFAULT_PROTOCOLS, protocol_type: str = "consumer",
        session_ms: int = SESSION_MS, rebalance_ms: int = REBALANCE_MS, client_id: str = "client",
    ) -> Token:
        request = build(request_type(JOIN_GROUP, version), {
            "group_id": group_id, "session_timeout": session_ms, "rebalance_timeout": rebalance_ms,
            "member_id": member_id, "group_instance_id": instance, "protocol_type": protocol_type,
            "protocols": [{"name": name, "metadata": metadata} for name, metadata in protocols],
        })
        token = Token(JOIN_GROUP, version, f"join {member_id or instance or 'new'}")
        self.apply(self.coordinator.join_group(version, client_id, "10.0.0.1", request, token))
        return token

    def join_new(self, group_id: str, **kwargs: Any) -> tuple[str, Token]:
        """A dynamic member's two JoinGroups (v4+): the member id, and the parked second join."""
        first = self.reply(self.join(group_id, **kwargs))
        assert first is not None and first["error_code"] is ErrorCode.member_id_required
        member_id = first["member_id"]
        return member_id, self.join(group_id, member_id, **kwargs)

    def sync(
        self, group_id: str, member_id: str, generation_id: int, assignments: dict[str, bytes] | None = None, *,
        version: int = 5, instance: str | None = None, protocol_type: str | None = "consumer",
        protocol_name: str | None = "range",
    ) -> Token:
        request = build(request_type(SYNC_GROUP, version), {
            "group_id": group_id, "generation_id": generation_id, "member_id": member_id,
            "group_instance_id": instance, "protocol_type": protocol_type, "protocol_name": protocol_name,
            "assignments": [{"member_id": m, "assignment": a} for m, a in (assignments or {}).items()],
        })
        token = Token(SYNC_GROUP, version, f"sync {member_id}")
        self.apply(self.coordinator.sync_group(version, request, token))
        return token

    def heartbeat(self, group_id: str, member_id: str, generation_id: int, *, version: int = 4,
                  instance: str | None = None) -> ErrorCode:
        request = build(request_type(HEARTBEAT, version), {
            "group_id": group_id, "generation_id": generation_id, "member_id": member_id, "group_instance_id": instance,
        })
        token = Token(HEARTBEAT, version, f"heartbeat {member_id}")
        self.apply(self.coordinator.heartbeat(version, request, token))
        return self._answered(token)["error_code"]

    def leave(self, group_id: str, members: list[tuple[str, str | None]], *, version: int = 5) -> dict[str, Any]:
        request = build(request_type(LEAVE_GROUP, version), {
            "group_id": group_id, "member_id": members[0][0],
            "members": [{"member_id": m, "group_instance_id": i} for m, i in members],
        })
        token = Token(LEAVE_GROUP, version, "leave")
        self.apply(self.coordinator.leave_group(version, request, token))
        return self._answered(token)

    def commit(
        self, group_id: str, offsets: dict[tuple[str, int], int | tuple[int, str | None]], *, generation_id: int = -1,
        member_id: str = "", instance: str | None = None, version: int = 9, retention_ms: int = -1,
        leader_epoch: int = -1,
    ) -> dict[str, Any]:
        topics: dict[str, list[dict[str, Any]]] = {}
        for (topic, partition), value in offsets.items():
            offset, metadata = value if isinstance(value, tuple) else (value, "")
            topics.setdefault(topic, []).append({
                "partition_index": partition, "committed_offset": offset, "committed_leader_epoch": leader_epoch,
                "committed_metadata": metadata,
            })
        request = build(request_type(OFFSET_COMMIT, version), {
            "group_id": group_id, "generation_id_or_member_epoch": generation_id, "member_id": member_id,
            "group_instance_id": instance, "retention_time": retention_ms,
            "topics": [{"name": name, "partitions": partitions} for name, partitions in topics.items()],
        })
        token = Token(OFFSET_COMMIT, version, "commit")
        self.apply(self.coordinator.commit_offsets(version, request, token))
        return self._answered(token)

    def txn_commit(
        self, group_id: str, offsets: dict[tuple[str, int], int | tuple[int, str | None]], producer_id: int, *,
        producer_epoch: int = 0, generation_id: int = -1, member_id: str = "", instance: str | None = None,
        version: int = 3, leader_epoch: int = -1, appended: bool = True,
    ) -> dict[str, Any]:
        """A TxnOffsetCommit's response; `appended=False`: the log refuses its batch (a fenced
        producer), so the shell neither replays its records nor delivers the response."""
        topics: dict[str, list[dict[str, Any]]] = {}
        for (topic, partition), value in offsets.items():
            offset, metadata = value if isinstance(value, tuple) else (value, "")
            topics.setdefault(topic, []).append({
                "partition_index": partition, "committed_offset": offset, "committed_leader_epoch": leader_epoch,
                "committed_metadata": metadata,
            })
        request = build(request_type(TXN_OFFSET_COMMIT, version), {
            "transactional_id": f"txn-{producer_id}", "group_id": group_id, "producer_id": producer_id,
            "producer_epoch": producer_epoch, "generation_id": generation_id, "member_id": member_id,
            "group_instance_id": instance,
            "topics": [{"name": name, "partitions": partitions} for name, partitions in topics.items()],
        })
        token = Token(TXN_OFFSET_COMMIT, version, "txn commit")
        result = self.coordinator.txn_commit_offsets(version, request, token)
        if not appended:
            [(_, response)] = result.replies
            return response
        self.apply(result)
        return self._answered(token)

    def end_transaction(self, group_id: str, producer_id: int, commit: bool) -> None:
        """The transaction coordinator writes the marker into the group's partition, then says so."""
        partition = self.coordinator.partition_for(group_id)
        self.log.append(Marker(partition, producer_id, commit))
        result = self.apply(self.coordinator.complete_transaction(partition, producer_id, commit))
        assert result.records == [] and result.replies == []

    def committed(self, response: dict[str, Any]) -> dict[tuple[str, int], ErrorCode]:
        """{(topic, partition): error} of an OffsetCommit or OffsetDelete response."""
        return {(t["name"], p["partition_index"]): p["error_code"] for t in response["topics"] for p in t["partitions"]}

    def fetch(
        self, group_id: str, topics: dict[str, list[int]] | None, *, version: int = 7, require_stable: bool = False,
    ) -> dict[str, Any]:
        request_topics = None if topics is None else [{"name": t, "partition_indexes": p} for t, p in topics.items()]
        body = {"group_id": group_id, "topics": request_topics, "require_stable": require_stable,
                "groups": [{"group_id": group_id, "topics": request_topics}]}
        response = self.coordinator.fetch_offsets(version, build(request_type(OFFSET_FETCH, version), body))
        encodes(OFFSET_FETCH, version, response)
        return response

    def fetch_groups(
        self, groups: dict[str, dict[str, list[int]] | None], *, version: int = 8, member_id: str | None = None,
        member_epoch: int = -1,
    ) -> dict[str, Any]:
        request = build(request_type(OFFSET_FETCH, version), {"groups": [
            {"group_id": g, "topics": None if t is None else [{"name": n, "partition_indexes": p} for n, p in t.items()],
             "member_id": member_id, "member_epoch": member_epoch}
            for g, t in groups.items()
        ]})
        response = self.coordinator.fetch_offsets(version, request)
        encodes(OFFSET_FETCH, version, response)
        return response

    def offsets(self, group_id: str, topics: dict[str, list[int]] | None = None) -> dict[tuple[str, int], tuple[int, str]]:
        """{(topic, partition): (offset, metadata)} as OffsetFetch v7 reports them."""
        response = self.fetch(group_id, topics)
        return {(t["name"], p["partition_index"]): (p["committed_offset"], p["metadata"])
                for t in response["topics"] for p in t["partitions"]}

    def delete_offsets(self, group_id: str, topics: dict[str, list[int]]) -> dict[str, Any]:
        request = build(request_type(OFFSET_DELETE, 0), {"group_id": group_id, "topics": [
            {"name": t, "partitions": [{"partition_index": p} for p in ps]} for t, ps in topics.items()
        ]})
        token = Token(OFFSET_DELETE, 0, "offset delete")
        self.apply(self.coordinator.delete_offsets(0, request, token))
        return self._answered(token)

    def delete_groups(self, *group_ids: str, version: int = 2) -> list[tuple[str, ErrorCode]]:
        token = Token(DELETE_GROUPS, version, "delete groups")
        self.apply(self.coordinator.delete_groups(version, list(group_ids), token))
        return [(r["group_id"], r["error_code"]) for r in self._answered(token)["results"]]

    def describe(self, *group_ids: str, version: int = 5, authorized_operations: bool = False) -> list[dict[str, Any]]:
        request = build(request_type(DESCRIBE_GROUPS, version),
                        {"groups": list(group_ids), "include_authorized_operations": authorized_operations})
        response = self.coordinator.describe_groups(version, request)
        encodes(DESCRIBE_GROUPS, version, response)
        return response["groups"]

    def list_groups(self, *, version: int = 5, states: tuple[str, ...] = (), types: tuple[str, ...] = ()) -> dict[str, tuple[str, str]]:
        """{group id: (state, protocol type)}."""
        request = build(request_type(LIST_GROUPS, version), {"states_filter": states, "types_filter": types})
        response = self.coordinator.list_groups(version, request)
        encodes(LIST_GROUPS, version, response)
        assert all(g["group_type"] in ("classic", "consumer") for g in response["groups"])
        return {g["group_id"]: (g["group_state"], g["protocol_type"]) for g in response["groups"]}

    # Consumer groups (KIP-848)

    def set_topics(self, **partitions: int) -> None:
        """The cluster's topics, as the shell tells the coordinator; ids are 1, 2, ... in the
        order given (which is Kafka's Uuid order too), and kept for topics named again."""
        for name in partitions:
            self.topic_ids.setdefault(name, uuid.UUID(int=len(self.topic_ids) + 1))
        self.topics = dict(partitions)
        self.coordinator.on_topics_changed({name: (self.topic_ids[name], count) for name, count in partitions.items()})

    def consumer_heartbeat(
        self, group_id: str, member_id: str, member_epoch: int, *, version: int = 1, instance: str | None = None,
        rack: str | None = None, rebalance_ms: int = -1, topics: list[str] | None = None, regex: str | None = None,
        assignor: str | None = None, owned: dict[str, list[int]] | None = None, client_id: str = "client",
    ) -> dict[str, Any]:
        """A ConsumerGroupHeartbeat; `owned` by topic name."""
        request = build(request_type(CONSUMER_GROUP_HEARTBEAT, version), {
            "group_id": group_id, "member_id": member_id, "member_epoch": member_epoch, "instance_id": instance,
            "rack_id": rack, "rebalance_timeout": rebalance_ms, "subscribed_topic_names": topics,
            "subscribed_topic_regex": regex, "server_assignor": assignor,
            "topic_partitions": None if owned is None else [
                {"topic_id": self.topic_ids[name], "partitions": partitions} for name, partitions in owned.items()
            ],
        })
        token = Token(CONSUMER_GROUP_HEARTBEAT, version, f"consumer heartbeat {member_id or instance or 'new'}")
        self.apply(self.coordinator.consumer_group_heartbeat(version, request, token, client_id=client_id,
                                                             client_host="10.0.0.1"))
        return self._answered(token)

    def consumer_join(self, group_id: str, member_id: str, topics: list[str], **kwargs: Any) -> dict[str, Any]:
        """A full join request: member epoch 0, a rebalance timeout, the subscription, no partitions."""
        kwargs.setdefault("rebalance_ms", REBALANCE_MS)
        return self.consumer_heartbeat(group_id, member_id, 0, topics=topics, owned={}, **kwargs)

    def assignment(self, response: dict[str, Any]) -> dict[str, set[int]] | None:
        """The assignment of a ConsumerGroupHeartbeat response by topic name; None if it has none."""
        if response["assignment"] is None:
            return None
        names = {topic_id: name for name, topic_id in self.topic_ids.items()}
        return {names[tp["topic_id"]]: set(tp["partitions"]) for tp in response["assignment"]["topic_partitions"]}

    def consumer_describe(self, *group_ids: str, version: int = 1, authorized_operations: bool = False) -> list[dict[str, Any]]:
        request = build(request_type(CONSUMER_GROUP_DESCRIBE, version),
                        {"group_ids": list(group_ids), "include_authorized_operations": authorized_operations})
        response = self.coordinator.consumer_group_describe(version, request)
        encodes(CONSUMER_GROUP_DESCRIBE, version, response)
        return response["groups"]

    def _answered(self, token: Token) -> dict[str, Any]:
        response = self.reply(token)
        assert response is not None, f"{token} was not answered at once"
        return response

    # Whole flows

    def form_group(self, group_id: str, count: int, **join_kwargs: Any) -> list[str]:
        """A Stable group of `count` dynamic members at generation 1, each assigned its own
        id as bytes; the first is the leader."""
        members = []
        tokens = []
        for _ in range(count):
            member_id, token = self.join_new(group_id, **join_kwargs)
            members.append(member_id)
            tokens.append(token)
        self.settle()
        responses = [self.reply(t) for t in tokens]
        assert all(r is not None and r["error_code"] is ErrorCode.none for r in responses)
        leader = responses[0]["leader"]  # type: ignore[index]
        assert leader == members[0]
        generation = responses[0]["generation_id"]  # type: ignore[index]
        protocol = {"protocol_type": responses[0]["protocol_type"], "protocol_name": responses[0]["protocol_name"]}  # type: ignore[index]
        syncs = [self.sync(group_id, m, generation, **protocol) for m in members[1:]]
        syncs.append(self.sync(group_id, leader, generation, {m: m.encode() for m in members}, **protocol))
        assert all(self.reply(s)["error_code"] is ErrorCode.none for s in syncs)  # type: ignore[index]
        assert self.state(group_id) == "Stable"
        return members
