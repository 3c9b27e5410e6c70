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
from kio.static.primitive import i8, i32, i64

from ..config import BROKER_CONFIGS, TOPIC_CONFIGS, BrokerConfig, ConfigError, ConfigType, parse_topic_configs
from ..log.manager import METADATA_PARTITION
from .image import MetadataImage
from .placement import place_replicas
from .records import (
    RESOURCE_BROKER,
    RESOURCE_TOPIC,
    ConfigRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RemoveTopicRecord,
    TopicRecord,
)

MAX_TOPIC_NAME = 249
# As Kafka's controller: no user operation makes more metadata records than this (one per
# partition), so a partition count of 2**31 - 1 is refused rather than placed.
MAX_RECORDS_PER_USER_OP = 10_000
EXCESSIVE_BATCH = "Unable to perform excessively large batch operation."
# Matched against the whole name: "$" alone would let a trailing newline through.
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


def topic_name_error(name: str) -> str | None:
    """Kafka's topic name rules; the message Kafka gives, or None if the name is fine."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > MAX_TOPIC_NAME:
        return f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME} characters, topic name: {name}"
    if not _LEGAL_TOPIC.fullmatch(name):
        return (
            f'Topic name "{name}" is illegal, it contains a character other than '
            "ASCII alphanumerics, '.', '_' and '-'"
        )
    return None


def _wheel_start(topic_id: uuid.UUID, brokers: int) -> int:
    """Where a topic's leaders start round the brokers: as random as Kafka's, but the same
    for every partition the topic is given later."""
    return topic_id.int % max(brokers, 1)


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


class Refused(Exception):
    """One item of a request refused with a Kafka error."""

    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


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
        for i, topic in enumerate(topics):
            if topic.name in duplicates:
                # As Kafka: one result per duplicated name, and none of its topics made.
                if names.index(topic.name) == i:
                    results.append(TopicResult(topic.name, ErrorCode.invalid_request, "Duplicate topic name."))
                continue
            result, new_records = self._create_one(image, topic, taken)
            results.append(result)
            if result.error == ErrorCode.none and not validate_only:
                records.extend(new_records)
        return results, records

    def _create_one(self, image: MetadataImage, topic: NewTopic, taken: dict[str, str]) -> tuple[TopicResult, list[Any]]:
        name = topic.name
        if name == METADATA_PARTITION[0]:
            return TopicResult(name, ErrorCode.invalid_request, f"Creation of internal topic {name} is prohibited."), []
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
        # Kafka validates the configs before the partitions and replicas.
        try:
            configs = parse_topic_configs(topic.configs)
        except ConfigError as e:
            return TopicResult(name, ErrorCode.invalid_config, str(e)), []
        usable = [b for b in image.brokers.values() if not b.fenced]
        brokers = sorted(b.node_id for b in usable)
        topic_id = uuid.uuid4()
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
            if len({len(replicas) for replicas in assignment.values()}) > 1:
                return TopicResult(
                    name, ErrorCode.invalid_replica_assignment,
                    "The manual partition assignment includes partitions with different numbers of replicas.",
                ), []
        else:
            partitions = topic.num_partitions if topic.num_partitions != -1 else self.config.int("num.partitions")
            factor = topic.replication_factor if topic.replication_factor != -1 else self.config.int("default.replication.factor")
            if factor <= 0:
                return TopicResult(name, ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0, or -1 to use the default value."), []
            if partitions <= 0:
                return TopicResult(name, ErrorCode.invalid_partitions, "Number of partitions was set to an invalid non-positive value."), []
            if partitions > MAX_RECORDS_PER_USER_OP:
                return TopicResult(name, ErrorCode.policy_violation, EXCESSIVE_BATCH), []
            if factor > len(brokers):
                return TopicResult(
                    name, ErrorCode.invalid_replication_factor,
                    f"Unable to replicate the partition {factor} time(s): The target replication factor of {factor} "
                    f"cannot be reached because only {len(brokers)} broker(s) are registered.",
                ), []
            assignment = place_replicas(usable, range(partitions), factor, _wheel_start(topic_id, len(usable)))
        records: list[Any] = [TopicRecord(name=name, topic_id=topic_id)]
        for key, value in topic.configs.items():
            records.append(ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name=name, name=key, value=value))
        records.extend(self.partition_records(topic_id, assignment))
        factor = len(next(iter(assignment.values())))
        return TopicResult(name, ErrorCode.none, None, topic_id, len(assignment), factor, configs), records

    @staticmethod
    def partition_records(
        topic_id: uuid.UUID, assignment: Mapping[int, Sequence[int]], fenced: frozenset[int] = frozenset()
    ) -> list[PartitionRecord]:
        """New partitions: the unfenced replicas are the ISR, the first of them the leader."""
        records = []
        for p, replicas in sorted(assignment.items()):
            isr = tuple(i32(r) for r in replicas if r not in fenced)
            records.append(PartitionRecord(
                partition_id=i32(p), topic_id=topic_id, replicas=tuple(i32(r) for r in replicas), isr=isr,
                leader=isr[0], leader_epoch=i32(0), partition_epoch=i32(0),
            ))
        return records

    def create_partitions(
        self, image: MetadataImage, requests: Sequence[tuple[str, int, Sequence[Sequence[int]] | None]], validate_only: bool
    ) -> tuple[list[TopicResult], list[Any]]:
        """Grows topics to the requested partition counts: (name, count, assignments of the new partitions)."""
        results: list[TopicResult] = []
        records: list[Any] = []
        names = [name for name, _, _ in requests]
        # As Kafka's ControllerApis: one invalid_request per duplicated name, and none of its requests done.
        results += [TopicResult(n, ErrorCode.invalid_request, "Duplicate topic name.") for n in dict.fromkeys(names) if names.count(n) > 1]
        for name, count, assignments in requests:
            if names.count(name) > 1:
                continue
            try:
                result, new_records = self._create_partitions_of(image, name, count, assignments)
            except Refused as e:
                results.append(TopicResult(name, e.error, e.message))
                continue
            results.append(result)
            if not validate_only:
                records.extend(new_records)
        return results, records

    def _create_partitions_of(
        self, image: MetadataImage, name: str, count: int, assignments: Sequence[Sequence[int]] | None
    ) -> tuple[TopicResult, list[PartitionRecord]]:
        topic = image.topics.get(name)
        if topic is None:
            raise Refused(ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist.")
        current = len(topic.partitions)
        if count == current:
            raise Refused(ErrorCode.invalid_partitions, f"Topic already has {current} partition(s).")
        if count < current:
            raise Refused(ErrorCode.invalid_partitions,
                          f"The topic {name} currently has {current} partition(s); {count} would not be an increase.")
        added = count - current
        if added > MAX_RECORDS_PER_USER_OP:
            raise Refused(ErrorCode.policy_violation, EXCESSIVE_BATCH)
        factor = len(topic.partitions[0].replicas)
        if assignments is not None:
            if len(assignments) != added:
                raise Refused(ErrorCode.invalid_replica_assignment,
                              f"Attempted to add {added} additional partition(s), but only {len(assignments)} assignment(s) were specified.")
            for i, replicas in enumerate(assignments):
                check_manual_assignment(image, current + i, replicas, factor)
            new = {current + i: list(a) for i, a in enumerate(assignments)}
        else:
            usable = [b for b in image.brokers.values() if not b.fenced]
            if factor > len(usable):
                raise Refused(ErrorCode.invalid_replication_factor,
                              f"The target replication factor of {factor} cannot be reached because only {len(usable)} broker(s) are registered.")
            new = place_replicas(usable, range(current, count), factor, _wheel_start(topic.topic_id, len(usable)))
        result = TopicResult(name, topic_id=topic.topic_id, num_partitions=count, replication_factor=factor)
        fenced = frozenset(b.node_id for b in image.brokers.values() if b.fenced)
        return result, self.partition_records(topic.topic_id, new, fenced)

    def delete_topics(
        self, image: MetadataImage, names: Sequence[str], ids: Sequence[uuid.UUID]
    ) -> tuple[list[TopicResult], list[Any]]:
        results: list[TopicResult] = []
        records: list[Any] = []
        if not self.config.bool("delete.topic.enable"):
            all_results = [TopicResult(n, ErrorCode.topic_deletion_disabled) for n in names]
            all_results += [TopicResult(None, ErrorCode.topic_deletion_disabled, topic_id=i) for i in ids]
            return all_results, []
        # As Kafka's ControllerApis: a name or id given twice gets one invalid_request and
        # is not deleted; nor is a topic given both by id and by name.
        duplicate_names = [n for n in dict.fromkeys(names) if names.count(n) > 1]
        duplicate_ids = {i for i in ids if ids.count(i) > 1}
        results += [TopicResult(n, ErrorCode.invalid_request, "Duplicate topic name.") for n in duplicate_names]
        results += [TopicResult(None, ErrorCode.invalid_request, "Duplicate topic id.", i) for i in dict.fromkeys(ids) if i in duplicate_ids]
        deleting: dict[uuid.UUID, str] = {}
        for topic_id in dict.fromkeys(ids):
            if topic_id in duplicate_ids:
                continue
            topic = image.topic_by_id(topic_id)
            if topic is None:
                results.append(TopicResult(None, ErrorCode.unknown_topic_id, "This server does not host this topic ID.", topic_id))
            else:
                deleting[topic_id] = topic.name
        for name in dict.fromkeys(names):
            if name in duplicate_names:
                continue
            topic = image.topics.get(name)
            if topic is None:
                results.append(TopicResult(name, ErrorCode.unknown_topic_or_partition, "This server does not host this topic-partition."))
            elif topic.topic_id in deleting or topic.topic_id in duplicate_ids:
                deleting.pop(topic.topic_id, None)
                results.append(TopicResult(
                    name, ErrorCode.invalid_request, "The provided topic name maps to an ID that was already supplied.", topic.topic_id,
                ))
            else:
                deleting[topic.topic_id] = name
        results += [TopicResult(name, topic_id=topic_id) for topic_id, name in deleting.items()]
        records.extend(RemoveTopicRecord(topic_id=t) for t in sorted(deleting))
        return results, records

    @staticmethod
    def reserve_producer_ids(image: MetadataImage, broker_id: int, broker_epoch: int, size: int) -> tuple[int, list[Any]]:
        """The first id of a new block for broker_id, and the record that reserves it."""
        first = image.next_producer_id
        return first, [ProducerIdsRecord(broker_id=i32(broker_id), broker_epoch=i64(broker_epoch), next_producer_id=i64(first + size))]


SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


@dataclass
class ConfigOp:
    name: str
    op: int
    value: str | None


@dataclass
class ConfigChange:
    resource_type: int
    resource_name: str
    ops: list[ConfigOp]


@dataclass
class ConfigResult:
    resource_type: int
    resource_name: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None


def check_manual_assignment(image: MetadataImage, partition: int, replicas: Sequence[int], factor: int | None) -> None:
    """Kafka's validateManualPartitionAssignment, for partitions added to a topic (all with
    the topic's replication `factor`) or reassigned (`factor` None: any)."""
    if not replicas:
        raise Refused(ErrorCode.invalid_replica_assignment, "The manual partition assignment includes an empty replica list.")
    previous = None
    for broker in sorted(replicas):
        if broker not in image.brokers:
            raise Refused(ErrorCode.invalid_replica_assignment,
                          f"The manual partition assignment includes broker {broker}, but no such broker is registered.")
        if broker == previous:
            raise Refused(ErrorCode.invalid_replica_assignment,
                          f"The manual partition assignment includes the broker {broker} more than once.")
        previous = broker
    if factor is not None and len(replicas) != factor:
        raise Refused(ErrorCode.invalid_replica_assignment,
                      f"The manual partition assignment includes a partition with {len(replicas)} replica(s), but this is "
                      f"not consistent with previous partitions, which have {factor} replica(s).")
    if all(image.brokers[b].fenced for b in replicas):
        raise Refused(ErrorCode.invalid_replica_assignment,
                      f"All brokers specified in the manual partition assignment for partition {partition} "
                      "are fenced or in controlled shutdown.")


def _apply_ops(current: Mapping[str, str], ops: Sequence[ConfigOp], defs: Mapping[str, Any], not_a_list: str) -> dict[str, str | None]:
    """The new value (None: removed) of each config the ops touch, not yet validated.
    APPEND and SUBTRACT work on a list config's items, starting from its default when
    it is not set; on any other config they are refused with `not_a_list`."""
    changed: dict[str, str | None] = {}
    for op in ops:
        if op.op == DELETE:
            changed[op.name] = None
        elif op.op in (APPEND, SUBTRACT):
            d = defs.get(op.name)
            if d is None or d.type is not ConfigType.LIST:
                verb = "APPEND" if op.op == APPEND else "SUBTRACT"
                raise Refused(ErrorCode.invalid_config, not_a_list.format(op=verb, lower=verb.lower(), key=op.name))
            old = current.get(op.name)
            old_items = [x for x in (old.split(",") if old is not None else list(d.default or [])) if x]
            given = [x for x in (op.value or "").split(",") if x]
            items = old_items + [x for x in given if x not in old_items] if op.op == APPEND else [x for x in old_items if x not in given]
            changed[op.name] = ",".join(items)
        else:
            changed[op.name] = op.value or ""
    return changed


def _topic_changes(image: MetadataImage, name: str, ops: Sequence[ConfigOp], current: Mapping[str, str]) -> dict[str, str | None]:
    """As Kafka's controller: the name, then the ops, then the resulting values, and
    only then whether the topic exists. Only values that change make records."""
    if not name:
        raise Refused(ErrorCode.invalid_request, "Default topic resources are not allowed.")
    problem = topic_name_error(name)
    if problem:
        raise Refused(ErrorCode.invalid_topic_exception, problem)
    changed = _apply_ops(current, ops, TOPIC_CONFIGS, "Can't {op} to key {key} because its type is not LIST.")
    try:
        parse_topic_configs({n: v for n, v in changed.items() if v is not None})
    except ConfigError as e:
        raise Refused(ErrorCode.invalid_config, str(e)) from e
    if name not in image.topics:
        raise Refused(ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist.")
    return {n: v for n, v in changed.items() if current.get(n) != v}


def _broker_changes(name: str, ops: Sequence[ConfigOp], current: Mapping[str, str]) -> dict[str, str | None]:
    """As Kafka's broker and controller checks. Unlike Kafka, which keeps any name, an
    unknown broker config is refused. Every op makes a record, changed or not, so that
    brokers reload (KAFKA-14136)."""
    if name and not name.isdigit():
        raise Refused(ErrorCode.invalid_request, "Unable to parse broker name as a base 10 number.")
    changed = _apply_ops(current, ops, BROKER_CONFIGS, "Config value {lower} is not allowed for config key: {key}")
    kept = {n: v for n, v in changed.items() if v is not None}
    unknown = [n for n in kept if n not in BROKER_CONFIGS]
    if unknown:
        raise Refused(ErrorCode.invalid_config, f"Unknown broker config name: {unknown[0]}")
    static = [n for n in kept if BROKER_CONFIGS[n].read_only]
    if static:
        raise Refused(ErrorCode.invalid_request, f"Cannot update these configs dynamically: Set({', '.join(static)})")
    try:
        for n, v in kept.items():
            BROKER_CONFIGS[n].parse(v)
    except ConfigError as e:
        # Kafka reports a broker config it cannot apply as invalid_request (KAFKA-13609).
        raise Refused(ErrorCode.invalid_request, str(e)) from e
    return changed


def alter_configs_records(
    image: MetadataImage, changes: Sequence[ConfigChange], validate_only: bool
) -> tuple[list[ConfigResult], list[Any]]:
    """Validates config changes to topics and brokers, and the records that make them."""
    results: list[ConfigResult] = []
    records: list[Any] = []
    seen = [(c.resource_type, c.resource_name) for c in changes]
    for change in changes:
        result = ConfigResult(change.resource_type, change.resource_name)
        results.append(result)
        current = image.configs.get((change.resource_type, change.resource_name), {})
        try:
            if seen.count((change.resource_type, change.resource_name)) > 1:
                raise Refused(ErrorCode.invalid_request, "Each resource must appear at most once.")
            names = [op.name for op in change.ops]
            if len(set(names)) != len(names):
                raise Refused(ErrorCode.invalid_request, "Error due to duplicate config keys")
            nulls = [op.name for op in change.ops if op.op != DELETE and op.value is None]
            if nulls:
                raise Refused(ErrorCode.invalid_request, "Null value not supported for : " + ", ".join(nulls))
            if change.resource_type == RESOURCE_TOPIC:
                changed = _topic_changes(image, change.resource_name, change.ops, current)
            elif change.resource_type == RESOURCE_BROKER:
                changed = _broker_changes(change.resource_name, change.ops, current)
            else:
                raise Refused(ErrorCode.invalid_request, f"Unsupported resource type {change.resource_type}")
        except Refused as e:
            result.error, result.message = e.error, e.message
            continue
        if not validate_only:
            records.extend(
                ConfigRecord(resource_type=i8(change.resource_type), resource_name=change.resource_name, name=n, value=v)
                for n, v in changed.items()
            )
    return results, records
