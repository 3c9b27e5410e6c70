"""Broker liveness as the active controller decides it, sans-IO: registration, heartbeats,
fencing, unfencing and controlled shutdown (Kafka's ClusterControlManager and
BrokerHeartbeatManager), and the partition leader changes that follow them.

A broker registers fenced; its first heartbeat after it has replayed the metadata log
up to its own registration record unfences it. A broker that misses heartbeats for
`broker.session.timeout.ms` is fenced and its leaderships move to another in-sync
replica, or to no leader at all (-1) when none is left, as in Kafka; when it is
unfenced again it leads the partitions that had no leader.

Heartbeat times are volatile. A controller that becomes active fences nobody for a full
session from then. Unlike Kafka, which also counts that start as each broker's last
contact, only a heartbeat this controller received makes a session that refuses a new
incarnation of the broker as a duplicate: a broker restarted after a crash (a single
combined node above all) registers at once instead of after the session timeout, while
two live processes with one id are still told apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8, i16, i32, i64, u16

from .image import MetadataImage
from .records import (
    BrokerEndpoint,
    BrokerRegistrationChangeRecord,
    FeatureLevelRecord,
    PartitionChangeRecord,
    RegisterBrokerRecord,
)

NO_LEADER = -1
# The metadata.version a new cluster is written at (Kafka 3.9's level).
METADATA_VERSION = 21


@dataclass(frozen=True)
class Endpoint:
    listener: str
    host: str
    port: int
    security_protocol: int = 0


@dataclass(frozen=True)
class Registered:
    error: ErrorCode
    broker_epoch: int = -1


@dataclass(frozen=True)
class HeartbeatAnswer:
    error: ErrorCode
    is_caught_up: bool = False
    is_fenced: bool = True
    should_shut_down: bool = False


class BrokerLifecycle:
    def __init__(self, session_timeout_ms: int) -> None:
        self.session_timeout_ms = session_timeout_ms
        self._last_heartbeat: dict[int, int] = {}
        self._active_since = 0

    def activate(self, now: int) -> None:
        """This controller became active: it has heard from nobody yet, and fences nobody for a session."""
        self._last_heartbeat = {}
        self._active_since = now

    def register(
        self, image: MetadataImage, now: int, next_offset: int, broker_id: int, incarnation_id: uuid.UUID,
        endpoint: Endpoint, rack: str | None,
    ) -> tuple[Registered, list[Any]]:
        """A BrokerRegistration. The broker epoch is the offset of the registration record,
        as in Kafka: `next_offset` is where the records returned will be appended."""
        current = image.brokers.get(broker_id)
        if current is not None and current.incarnation_id == incarnation_id:
            return Registered(ErrorCode.none, current.epoch), []  # a retry of the same registration
        if current is not None and not current.fenced and self._has_session(broker_id, now):
            return Registered(ErrorCode.duplicate_broker_registration), []
        records: list[Any] = []
        if "metadata.version" not in image.features:
            records.append(FeatureLevelRecord(name="metadata.version", feature_level=i16(METADATA_VERSION)))
        epoch = next_offset + len(records)
        records.append(RegisterBrokerRecord(
            broker_id=i32(broker_id), incarnation_id=incarnation_id, broker_epoch=i64(epoch),
            end_points=(BrokerEndpoint(name=endpoint.listener, host=endpoint.host, port=u16(endpoint.port),
                                       security_protocol=i16(endpoint.security_protocol)),),
            features=(), rack=rack, fenced=True,
        ))
        # Partitions it led are still led by nobody while it is fenced: a new incarnation
        # starts fenced, so its old leaderships go as they would on fencing.
        if current is not None and not current.fenced:
            records += leaders_moved_off(image, broker_id)
        self._last_heartbeat[broker_id] = now
        return Registered(ErrorCode.none, epoch), records

    def heartbeat(
        self, image: MetadataImage, now: int, broker_id: int, broker_epoch: int, metadata_offset: int,
        want_fence: bool, want_shut_down: bool,
    ) -> tuple[HeartbeatAnswer, list[Any]]:
        broker = image.brokers.get(broker_id)
        if broker is None or broker.epoch != broker_epoch:
            return HeartbeatAnswer(ErrorCode.stale_broker_epoch), []
        self._last_heartbeat[broker_id] = now
        # Caught up once it has replayed the log as far as its own registration.
        caught_up = metadata_offset >= broker.epoch
        records: list[Any] = []
        fenced = broker.fenced
        if want_shut_down:
            if not broker.in_controlled_shutdown:
                records.append(_change(broker_id, broker_epoch, in_controlled_shutdown=True))
                records += leaders_moved_off(image, broker_id)
            # Every leadership moved in the records above: once they commit, nothing is led here.
            return HeartbeatAnswer(ErrorCode.none, caught_up, fenced, should_shut_down=True), records
        if want_fence and not fenced:
            records.append(_change(broker_id, broker_epoch, fenced=True))
            records += leaders_moved_off(image, broker_id)
            fenced = True
        elif not want_fence and fenced and caught_up:
            records.append(_change(broker_id, broker_epoch, fenced=False))
            records += leaderless_partitions_led_by(image, broker_id)
            fenced = False
        return HeartbeatAnswer(ErrorCode.none, caught_up, fenced), records

    def expire(self, image: MetadataImage, now: int) -> list[Any]:
        """Fences every broker whose session ran out, and moves its leaderships."""
        records: list[Any] = []
        for broker in sorted(image.brokers.values(), key=lambda b: b.node_id):
            if not broker.fenced and now - self._last_contact(broker.node_id) > self.session_timeout_ms:
                records.append(_change(broker.node_id, broker.epoch, fenced=True))
                records += leaders_moved_off(image, broker.node_id)
        return records

    def next_deadline(self, image: MetadataImage) -> int | None:
        deadlines = [self._last_contact(b.node_id) + self.session_timeout_ms for b in image.brokers.values() if not b.fenced]
        return min(deadlines) if deadlines else None

    def _last_contact(self, broker_id: int) -> int:
        return max(self._last_heartbeat.get(broker_id, self._active_since), self._active_since)

    def _has_session(self, broker_id: int, now: int) -> bool:
        last = self._last_heartbeat.get(broker_id)
        return last is not None and now - last <= self.session_timeout_ms


def _change(broker_id: int, epoch: int, *, fenced: bool | None = None, in_controlled_shutdown: bool = False) -> Any:
    return BrokerRegistrationChangeRecord(
        broker_id=i32(broker_id), broker_epoch=i64(epoch),
        fenced=i8(0 if fenced is None else 1 if fenced else -1),
        in_controlled_shutdown=i8(1 if in_controlled_shutdown else 0),
    )


def _eligible(image: MetadataImage, broker_id: int) -> bool:
    broker = image.brokers.get(broker_id)
    return broker is not None and not broker.fenced and not broker.in_controlled_shutdown


def leaders_moved_off(image: MetadataImage, broker_id: int) -> list[Any]:
    """Leadership and ISR membership taken from a broker that stops serving. The ISR keeps
    its last member even when that member goes, as Kafka's does, so that the partition
    can come back with it; a partition with no other eligible replica has no leader."""
    records: list[Any] = []
    for topic in image.topics.values():
        for partition in topic.partitions.values():
            is_leader = partition.leader == broker_id
            if not is_leader and broker_id not in partition.isr:
                continue
            isr = [r for r in partition.isr if r != broker_id] or list(partition.isr)
            new_isr = _ids(isr) if isr != list(partition.isr) else None
            new_leader = -2  # PartitionChangeRecord's "no change"
            if is_leader:
                candidates = [r for r in isr if r != broker_id and _eligible(image, r)]
                new_leader = candidates[0] if candidates else NO_LEADER
            if new_isr is None and new_leader == -2:
                continue
            records.append(PartitionChangeRecord(
                partition_id=i32(partition.partition_id), topic_id=topic.topic_id, isr=new_isr, leader=i32(new_leader),
            ))
    return records


def leaderless_partitions_led_by(image: MetadataImage, broker_id: int) -> list[Any]:
    """A broker back in service leads the partitions of its ISR that have no leader."""
    return [
        PartitionChangeRecord(partition_id=i32(p.partition_id), topic_id=topic.topic_id, leader=i32(broker_id))
        for topic in image.topics.values()
        for p in topic.partitions.values()
        if p.leader == NO_LEADER and broker_id in p.isr
    ]


def _ids(ids: Sequence[int]) -> tuple[i32, ...]:
    return tuple(i32(i) for i in ids)
