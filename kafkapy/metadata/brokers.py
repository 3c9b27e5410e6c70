"""Broker liveness as the active controller decides it, sans-IO: registration, heartbeats,
fencing, unfencing and controlled shutdown (Kafka's ClusterControlManager and
BrokerHeartbeatManager), and the partition leader changes that follow them.

A broker registers fenced; its first heartbeat after it has replayed the metadata log
up to its own registration record unfences it. A broker that misses heartbeats for
`broker.session.timeout.ms` is fenced: it leaves every ISR and its leaderships move to
another in-sync replica, or to no leader at all (-1) when none is left, as in Kafka; when
it is unfenced again it leads the leaderless partitions whose ISR it is still in (the
elections themselves are in partitions.py).

Heartbeat times are volatile. A controller that becomes active fences nobody for a full
session from then. Unlike Kafka, which also counts that start as each broker's last
contact, only a heartbeat this controller received makes a session that refuses a new
incarnation of the broker as a duplicate: a broker restarted after a crash (a single
combined node above all) registers at once instead of after the session timeout, while
two live processes with one id are still told apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8, i16, i32, i64

from ..config import BrokerConfig
from .image import Endpoint, MetadataImage, endpoint_records
from .partitions import NO_LEADER, ReplicationControl
from .records import (
    BrokerRegistrationChangeRecord,
    FeatureLevelRecord,
    RegisterBrokerRecord,
)

__all__ = ["NO_LEADER", "BrokerLifecycle", "Endpoint", "HeartbeatAnswer", "Registered"]
# The metadata.version a new cluster is written at (Kafka 3.9's level).
METADATA_VERSION = 21


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
    def __init__(self, session_timeout_ms: int, replication: ReplicationControl | None = None) -> None:
        self.session_timeout_ms = session_timeout_ms
        self.replication = replication or ReplicationControl(BrokerConfig())
        self._last_heartbeat: dict[int, int] = {}
        self._active_since = 0

    def activate(self, now: int) -> None:
        """This controller became active: it has heard from nobody yet, and fences nobody for a session."""
        self._last_heartbeat = {}
        self._active_since = now

    def register(
        self, image: MetadataImage, now: int, next_offset: int, broker_id: int, incarnation_id: uuid.UUID,
        endpoints: tuple[Endpoint, ...], rack: str | None,
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
            end_points=endpoint_records(endpoints),
            features=(), rack=rack, fenced=True,
        ))
        # Partitions it led are still led by nobody while it is fenced: a new incarnation
        # starts fenced, so its old leaderships go as they would on fencing.
        if current is not None and not current.fenced:
            records += self.replication.broker_leaves(image, broker_id)
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
                records += self.replication.broker_leaves(image, broker_id)
            # Every leadership moved in the records above: once they commit, nothing is led here.
            return HeartbeatAnswer(ErrorCode.none, caught_up, fenced, should_shut_down=True), records
        if want_fence and not fenced:
            records.append(_change(broker_id, broker_epoch, fenced=True))
            records += self.replication.broker_leaves(image, broker_id)
            fenced = True
        elif not want_fence and fenced and caught_up:
            records.append(_change(broker_id, broker_epoch, fenced=False))
            records += self.replication.broker_returns(image, broker_id)
            fenced = False
        return HeartbeatAnswer(ErrorCode.none, caught_up, fenced), records

    def expire(self, image: MetadataImage, now: int) -> list[Any]:
        """Fences one broker whose session ran out, and moves its leaderships. One at a
        time, as Kafka: the next fencing's elections must see this one's broker fenced."""
        for broker in sorted(image.brokers.values(), key=lambda b: b.node_id):
            if not broker.fenced and now - self._last_contact(broker.node_id) > self.session_timeout_ms:
                return [_change(broker.node_id, broker.epoch, fenced=True), *self.replication.broker_leaves(image, broker.node_id)]
        return []

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
