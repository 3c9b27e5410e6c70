"""The cluster image: what the metadata log says, as of one offset.

An image is never changed in place: `apply` returns a new one. Readers hold on to the
image they started with and see a consistent cluster while records are applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from kio.static.primitive import i8, i16, i32, i64, u16

from .acls import EMPTY_ACLS, Acl, AclImage
from .records import (
    AccessControlEntryRecord,
    BrokerEndpoint,
    BrokerRegistrationChangeRecord,
    ConfigRecord,
    FeatureLevelRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveAccessControlEntryRecord,
    RemoveTopicRecord,
    RemoveUserScramCredentialRecord,
    TopicRecord,
    UserScramCredentialRecord,
)
from .scram import ScramCredentials

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


_ZERO_UUID = uuid.UUID(int=0)


@dataclass(frozen=True)
class Endpoint:
    """Where a broker serves one of its listeners, as it registered it (advertised)."""
    listener: str
    host: str
    port: int
    security_protocol: int = 0


@dataclass(frozen=True)
class BrokerImage:
    node_id: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None
    fenced: bool
    epoch: int
    incarnation_id: uuid.UUID = _ZERO_UUID
    in_controlled_shutdown: bool = False

    def endpoint(self, listener: str) -> Endpoint | None:
        """The broker's endpoint for a listener name; None when it has no such listener."""
        return next((e for e in self.endpoints if e.listener == listener), None)


def endpoint_records(endpoints: Iterable[Endpoint]) -> tuple[BrokerEndpoint, ...]:
    """A RegisterBrokerRecord's end_points."""
    return tuple(BrokerEndpoint(name=e.listener, host=e.host, port=u16(e.port), security_protocol=i16(e.security_protocol))
                 for e in endpoints)


@dataclass(frozen=True)
class PartitionImage:
    partition_id: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    # A reassignment in progress (Kafka's PartitionRegistration): the replicas it adds, and
    # those it will take out once every target replica is in the ISR.
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def reassigning(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)


def merge_partition(old: PartitionImage, record: PartitionChangeRecord) -> PartitionImage:
    """The partition once `record` is applied. As Kafka's PartitionRegistration.merge: any
    leader but -2 (no change) starts a new leader epoch, even when it names the same
    broker; every change is a new partition epoch."""
    new_leader = record.leader != -2
    return replace(
        old,
        isr=tuple(record.isr) if record.isr is not None else old.isr,
        replicas=tuple(record.replicas) if record.replicas is not None else old.replicas,
        adding_replicas=tuple(record.adding_replicas) if record.adding_replicas is not None else old.adding_replicas,
        removing_replicas=tuple(record.removing_replicas) if record.removing_replicas is not None else old.removing_replicas,
        leader=record.leader if new_leader else old.leader,
        leader_epoch=old.leader_epoch + 1 if new_leader else old.leader_epoch,
        partition_epoch=old.partition_epoch + 1,
    )


@dataclass(frozen=True)
class TopicImage:
    name: str
    topic_id: uuid.UUID
    partitions: Mapping[int, PartitionImage] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class MetadataImage:
    offset: int = -1
    brokers: Mapping[int, BrokerImage] = field(default_factory=lambda: _EMPTY)
    topics: Mapping[str, TopicImage] = field(default_factory=lambda: _EMPTY)
    topic_names: Mapping[uuid.UUID, str] = field(default_factory=lambda: _EMPTY)
    # (resource type, resource name) -> {config name: value}
    configs: Mapping[tuple[int, str], Mapping[str, str]] = field(default_factory=lambda: _EMPTY)
    features: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    next_producer_id: int = 0
    acls: AclImage = EMPTY_ACLS
    scram_credentials: ScramCredentials = field(default_factory=lambda: _EMPTY)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicImage | None:
        name = self.topic_names.get(topic_id)
        return self.topics.get(name) if name is not None else None

    def topic_configs(self, name: str) -> Mapping[str, str]:
        return self.configs.get((2, name), _EMPTY)

    def dynamic_broker_configs(self, node_id: int) -> tuple[Mapping[str, str], Mapping[str, str]]:
        """(cluster-wide defaults, this node's own) dynamic broker configs."""
        return self.configs.get((4, ""), _EMPTY), self.configs.get((4, str(node_id)), _EMPTY)

    def to_records(self) -> list[Any]:
        """The fewest records that rebuild this image from an empty one, in the order
        Kafka's MetadataImage.write puts them: features first (metadata.version tells a
        reader how to read the rest), then brokers, topics with their partitions,
        configs, producer ids, ACLs and SCRAM credentials."""
        records: list[Any] = [
            FeatureLevelRecord(name=name, feature_level=i16(level))
            for name, level in sorted(self.features.items(), key=lambda item: (item[0] != "metadata.version", item[0]))
        ]
        for broker in sorted(self.brokers.values(), key=lambda b: b.node_id):
            records.append(RegisterBrokerRecord(
                broker_id=i32(broker.node_id), incarnation_id=broker.incarnation_id, broker_epoch=i64(broker.epoch),
                end_points=endpoint_records(broker.endpoints),
                features=(), rack=broker.rack, fenced=broker.fenced, in_controlled_shutdown=broker.in_controlled_shutdown,
            ))
        for topic in sorted(self.topics.values(), key=lambda t: t.name):
            records.append(TopicRecord(name=topic.name, topic_id=topic.topic_id))
            for p in sorted(topic.partitions.values(), key=lambda p: p.partition_id):
                records.append(PartitionRecord(
                    partition_id=i32(p.partition_id), topic_id=topic.topic_id,
                    replicas=tuple(i32(r) for r in p.replicas), isr=tuple(i32(r) for r in p.isr),
                    adding_replicas=tuple(i32(r) for r in p.adding_replicas),
                    removing_replicas=tuple(i32(r) for r in p.removing_replicas),
                    leader=i32(p.leader), leader_epoch=i32(p.leader_epoch), partition_epoch=i32(p.partition_epoch),
                ))
        for (resource_type, resource_name), values in sorted(self.configs.items()):
            records.extend(
                ConfigRecord(resource_type=i8(resource_type), resource_name=resource_name, name=name, value=value)
                for name, value in sorted(values.items())
            )
        if self.next_producer_id != MetadataImage.next_producer_id:
            # As Kafka's ProducerIdsImage: only the next id matters, not who reserved it.
            records.append(ProducerIdsRecord(broker_id=i32(-1), broker_epoch=i64(-1), next_producer_id=i64(self.next_producer_id)))
        records.extend(self.acls.to_records())
        records.extend(credential for _, credential in sorted(self.scram_credentials.items()))
        return records

    def apply(self, records: Iterable[Any], offset: int) -> MetadataImage:
        """A new image with the records applied in order."""
        brokers = dict(self.brokers)
        topics = dict(self.topics)
        topic_names = dict(self.topic_names)
        configs = dict(self.configs)
        features = dict(self.features)
        next_producer_id = self.next_producer_id
        # ACL changes are gathered and the ACL index built once, and only when there are any.
        added_acls: dict[uuid.UUID, Acl] = {}
        removed_acls: list[uuid.UUID] = []
        scram_credentials = dict(self.scram_credentials)
        for record in records:
            match record:
                case RegisterBrokerRecord():
                    endpoints = tuple(Endpoint(e.name, e.host, e.port, e.security_protocol) for e in record.end_points)
                    brokers[record.broker_id] = BrokerImage(
                        record.broker_id, endpoints, record.rack, record.fenced, record.broker_epoch,
                        record.incarnation_id, record.in_controlled_shutdown,
                    )
                case BrokerRegistrationChangeRecord():
                    old_broker = brokers[record.broker_id]
                    brokers[record.broker_id] = replace(
                        old_broker,
                        fenced={-1: False, 1: True}.get(record.fenced, old_broker.fenced),
                        in_controlled_shutdown=old_broker.in_controlled_shutdown or record.in_controlled_shutdown == 1,
                    )
                case TopicRecord():
                    topics[record.name] = TopicImage(record.name, record.topic_id, MappingProxyType({}))
                    topic_names[record.topic_id] = record.name
                case PartitionRecord():
                    topic = topics[topic_names[record.topic_id]]
                    partitions = dict(topic.partitions)
                    partitions[record.partition_id] = PartitionImage(
                        record.partition_id, tuple(record.replicas), tuple(record.isr),
                        record.leader, record.leader_epoch, record.partition_epoch,
                        tuple(record.adding_replicas), tuple(record.removing_replicas),
                    )
                    topics[topic.name] = replace(topic, partitions=MappingProxyType(partitions))
                case PartitionChangeRecord():
                    topic = topics[topic_names[record.topic_id]]
                    changed = merge_partition(topic.partitions[record.partition_id], record)
                    topics[topic.name] = replace(
                        topic, partitions=MappingProxyType({**topic.partitions, record.partition_id: changed})
                    )
                case RemoveTopicRecord():
                    name = topic_names.pop(record.topic_id)
                    del topics[name]
                    configs.pop((2, name), None)
                case ConfigRecord():
                    key = (record.resource_type, record.resource_name)
                    values = dict(configs.get(key, {}))
                    if record.value is None:
                        values.pop(record.name, None)
                    else:
                        values[record.name] = record.value
                    # No entry rather than an empty one: the image is the same whichever
                    # way its configs came and went, so a snapshot rebuilds it equal.
                    if values:
                        configs[key] = MappingProxyType(values)
                    else:
                        configs.pop(key, None)
                case FeatureLevelRecord():
                    features[record.name] = record.feature_level
                case ProducerIdsRecord():
                    next_producer_id = record.next_producer_id
                case AccessControlEntryRecord():
                    added_acls[record.id] = Acl.from_record(record)
                case RemoveAccessControlEntryRecord():
                    if added_acls.pop(record.id, None) is None:
                        removed_acls.append(record.id)
                case UserScramCredentialRecord():
                    scram_credentials[record.name, record.mechanism] = record
                case RemoveUserScramCredentialRecord():
                    scram_credentials.pop((record.name, record.mechanism), None)
                case NoOpRecord():
                    pass
        return MetadataImage(
            offset=offset,
            brokers=MappingProxyType(brokers),
            topics=MappingProxyType(topics),
            topic_names=MappingProxyType(topic_names),
            configs=MappingProxyType(configs),
            features=MappingProxyType(features),
            next_producer_id=next_producer_id,
            acls=self.acls.with_changes(added_acls, removed_acls) if added_acls or removed_acls else self.acls,
            scram_credentials=MappingProxyType(scram_credentials),
        )
