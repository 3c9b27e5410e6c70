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

from .records import (
    ConfigRecord,
    FeatureLevelRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
)

_EMPTY: Mapping[Any, Any] = MappingProxyType({})


@dataclass(frozen=True)
class BrokerImage:
    node_id: int
    host: str
    port: int
    rack: str | None
    fenced: bool
    epoch: int


@dataclass(frozen=True)
class PartitionImage:
    partition_id: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int


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

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicImage | None:
        name = self.topic_names.get(topic_id)
        return self.topics.get(name) if name is not None else None

    def topic_configs(self, name: str) -> Mapping[str, str]:
        return self.configs.get((2, name), _EMPTY)

    def dynamic_broker_configs(self, node_id: int) -> tuple[Mapping[str, str], Mapping[str, str]]:
        """(cluster-wide defaults, this node's own) dynamic broker configs."""
        return self.configs.get((4, ""), _EMPTY), self.configs.get((4, str(node_id)), _EMPTY)

    def apply(self, records: Iterable[Any], offset: int) -> MetadataImage:
        """A new image with the records applied in order."""
        brokers = dict(self.brokers)
        topics = dict(self.topics)
        topic_names = dict(self.topic_names)
        configs = dict(self.configs)
        features = dict(self.features)
        next_producer_id = self.next_producer_id
        for record in records:
            match record:
                case RegisterBrokerRecord():
                    endpoint = record.end_points[0]
                    brokers[record.broker_id] = BrokerImage(
                        record.broker_id, endpoint.host, endpoint.port, record.rack, record.fenced, record.broker_epoch
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
                    )
                    topics[topic.name] = replace(topic, partitions=MappingProxyType(partitions))
                case PartitionChangeRecord():
                    topic = topics[topic_names[record.topic_id]]
                    old = topic.partitions[record.partition_id]
                    # As Kafka's PartitionRegistration.merge: any leader but -2 (no change)
                    # starts a new leader epoch, even when it names the same broker.
                    new_leader = record.leader != -2
                    changed = replace(
                        old,
                        isr=tuple(record.isr) if record.isr is not None else old.isr,
                        replicas=tuple(record.replicas) if record.replicas is not None else old.replicas,
                        leader=record.leader if new_leader else old.leader,
                        leader_epoch=old.leader_epoch + 1 if new_leader else old.leader_epoch,
                        partition_epoch=old.partition_epoch + 1,
                    )
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
                    configs[key] = MappingProxyType(values)
                case FeatureLevelRecord():
                    features[record.name] = record.feature_level
                case ProducerIdsRecord():
                    next_producer_id = record.next_producer_id
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
        )
