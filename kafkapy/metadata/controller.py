"""The controller's decisions, sans-IO: a request and the current image in, the
records that carry it out (and a result per item) out. Nothing is changed here; the
records change the cluster once the quorum has committed them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from ..config import BrokerConfig, ConfigError, parse_topic_configs
from .image import MetadataImage
from .records import (
    RESOURCE_TOPIC,
    ConfigRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RemoveTopicRecord,
    TopicRecord,
)

MAX_TOPIC_NAME = 249
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


def topic_name_error(name: str) -> str | None:
    """Kafka's topic name rules; the message Kafka gives, or None if the name is fine."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > MAX_TOPIC_NAME:
        return f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME} characters, topic name: {name}"
    if not _LEGAL_TOPIC.match(name):
        return (
            f'Topic name "{name}" is illegal, it contains a character other than '
            "ASCII alphanumerics, '.', '_' and '-'"
        )
    return None


def _collision_key(name: str) -> str:
    return name.replace(".", "_")


@dataclass
class NewTopic:
    name: str
    num_partitions: int = -1
    replication_factor: int = -1
    assignments: Mapping[int, Sequence[int]] = field(default_factory=dict)
    configs: Mapping[str, str | None] = field(default_factory=dict)


@dataclass
class TopicResult:
    name: str | None
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    topic_id: uuid.UUID = uuid.UUID(int=0)
    num_partitions: int = -1
    replication_factor: int = -1
    configs: dict[str, object] = field(default_factory=dict)


class Controller:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config

    def create_topics(
        self, image: MetadataImage, topics: Sequence[NewTopic], validate_only: bool = False
    ) -> tuple[list[TopicResult], list[Any]]:
        records: list[Any] = []
        results: list[TopicResult] = []
        names = [t.name for t in topics]
        duplicates = {n for n in names if names.count(n) > 1}
        taken = {_collision_key(n): n for n in image.topics}
        for topic in topics:
            if topic.name in duplicates:
                results.append(TopicResult(topic.name, ErrorCode.invalid_request, "Duplicate topic name."))
                continue
            result, new_records = self._create_one(image, topic, taken)
            results.append(result)
            if result.error == ErrorCode.none:
                taken[_collision_key(topic.name)] = topic.name
                if not validate_only:
                    records.extend(new_records)
        return results, records

    def _create_one(self, image: MetadataImage, topic: NewTopic, taken: dict[str, str]) -> tuple[TopicResult, list[Any]]:
        name = topic.name
        problem = topic_name_error(name)
        if problem:
            return TopicResult(name, ErrorCode.invalid_topic_exception, problem), []
        if name in image.topics:
            return TopicResult(name, ErrorCode.topic_already_exists, f"Topic '{name}' already exists."), []
        if _collision_key(name) in taken:
            return TopicResult(
                name, ErrorCode.invalid_topic_exception,
                f"Topic '{name}' collides with existing topic: {taken[_collision_key(name)]}",
            ), []
        brokers = sorted(b.node_id for b in image.brokers.values() if not b.fenced)
        if topic.assignments:
            if topic.num_partitions != -1 or topic.replication_factor != -1:
                return TopicResult(
                    name, ErrorCode.invalid_request,
                    "Both numPartitions or replicationFactor and replicasAssignments were set. "
                    "Both cannot be used at the same time.",
                ), []
            if sorted(topic.assignments) != list(range(len(topic.assignments))):
                return TopicResult(name, ErrorCode.invalid_replica_assignment, "Partitions should be a consecutive 0-based integer sequence"), []
            assignment = {p: list(r) for p, r in topic.assignments.items()}
            for p, replicas in assignment.items():
                if not replicas or len(set(replicas)) != len(replicas) or any(r not in brokers for r in replicas):
                    return TopicResult(
                        name, ErrorCode.invalid_replica_assignment,
                        f"The manual partition assignment includes a partition with no replicas, duplicate or unknown brokers: partition {p}",
                    ), []
        else:
            partitions = topic.num_partitions if topic.num_partitions != -1 else self.config.int("num.partitions")
            factor = topic.replication_factor if topic.replication_factor != -1 else self.config.int("default.replication.factor")
            if partitions <= 0:
                return TopicResult(name, ErrorCode.invalid_partitions, "Number of partitions was set to an invalid non-positive value."), []
            if factor <= 0:
                return TopicResult(name, ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0, or -1 to use the default value."), []
            if factor > len(brokers):
                return TopicResult(
                    name, ErrorCode.invalid_replication_factor,
                    f"Unable to replicate the partition {factor} time(s): The target replication factor of {factor} "
                    f"cannot be reached because only {len(brokers)} broker(s) are registered.",
                ), []
            assignment = {p: [brokers[(p + i) % len(brokers)] for i in range(factor)] for p in range(partitions)}
        try:
            configs = parse_topic_configs(topic.configs)
        except ConfigError as e:
            return TopicResult(name, ErrorCode.invalid_config, str(e)), []
        topic_id = uuid.uuid4()
        records: list[Any] = [TopicRecord(name=name, topic_id=topic_id)]
        for key, value in topic.configs.items():
            records.append(ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name=name, name=key, value=value))
        records.extend(self.partition_records(topic_id, assignment))
        factor = len(next(iter(assignment.values())))
        return TopicResult(name, ErrorCode.none, None, topic_id, len(assignment), factor, configs), records

    @staticmethod
    def partition_records(topic_id: uuid.UUID, assignment: Mapping[int, Sequence[int]]) -> list[PartitionRecord]:
        return [
            PartitionRecord(
                partition_id=p, topic_id=topic_id, replicas=tuple(replicas), isr=tuple(replicas),
                leader=replicas[0], leader_epoch=0, partition_epoch=0,
            )
            for p, replicas in sorted(assignment.items())
        ]

    def delete_topics(
        self, image: MetadataImage, names: Sequence[str], ids: Sequence[uuid.UUID]
    ) -> tuple[list[TopicResult], list[Any]]:
        results: list[TopicResult] = []
        records: list[Any] = []
        if not self.config.bool("delete.topic.enable"):
            all_results = [TopicResult(n, ErrorCode.topic_deletion_disabled) for n in names]
            all_results += [TopicResult(None, ErrorCode.topic_deletion_disabled, topic_id=i) for i in ids]
            return all_results, []
        deleting: set[uuid.UUID] = set()
        for name in names:
            topic = image.topics.get(name)
            if name in names[names.index(name) + 1 :] or (topic and topic.topic_id in deleting):
                results.append(TopicResult(name, ErrorCode.invalid_request, "Duplicate topic name."))
            elif topic is None:
                results.append(TopicResult(name, ErrorCode.unknown_topic_or_partition, "This server does not host this topic-partition."))
            else:
                deleting.add(topic.topic_id)
                results.append(TopicResult(name, topic_id=topic.topic_id))
        for topic_id in ids:
            topic = image.topic_by_id(topic_id)
            if topic is None:
                results.append(TopicResult(None, ErrorCode.unknown_topic_id, "This server does not host this topic ID.", topic_id))
            elif topic.topic_id in deleting:
                results.append(TopicResult(topic.name, ErrorCode.invalid_request, "Duplicate topic id.", topic_id))
            else:
                deleting.add(topic.topic_id)
                results.append(TopicResult(topic.name, topic_id=topic_id))
        records.extend(RemoveTopicRecord(topic_id=t) for t in sorted(deleting))
        return results, records

    @staticmethod
    def reserve_producer_ids(image: MetadataImage, broker_id: int, broker_epoch: int, size: int) -> tuple[int, list[Any]]:
        """The first id of a new block for broker_id, and the record that reserves it."""
        first = image.next_producer_id
        return first, [ProducerIdsRecord(broker_id=broker_id, broker_epoch=broker_epoch, next_producer_id=first + size)]
