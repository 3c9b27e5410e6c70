"""Metadata (3): brokers, topics and partition leaders; creates topics on demand."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..broker.controller_channel import ControllerUnavailable
from ..metadata.controller import INTERNAL_TOPICS, NewTopic, topic_name_error
from ..metadata.image import MetadataImage, PartitionImage, TopicImage
from .context import Broker, RequestContext
from .faults import Faults
from .registry import api

# Bit fields of AclOperation codes allowed on each resource when no authorizer is set.
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))
OPERATIONS_NOT_ASKED = -(2**31)


def brokers(image: MetadataImage) -> list[dict[str, Any]]:
    return [
        {"node_id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack}
        for b in sorted(image.brokers.values(), key=lambda b: b.node_id)
        if not b.fenced
    ]


def controller_id(broker: Broker) -> int:
    # Clients send controller-bound admin requests here; this node answers them.
    return broker.node_id


def partition_entry(topic: str, p: PartitionImage, faults: Faults) -> dict[str, Any]:
    leaderless = faults.leaderless(topic, p.partition_id)
    return {
        "error_code": ErrorCode.leader_not_available if leaderless else ErrorCode.none,
        "partition_index": p.partition_id,
        "leader_id": -1 if leaderless else p.leader,
        "leader_epoch": p.leader_epoch,
        "replica_nodes": p.replicas,
        "isr_nodes": p.isr,
        "offline_replicas": (),
    }


def topic_entry(topic: TopicImage, include_operations: bool, faults: Faults) -> dict[str, Any]:
    return {
        "error_code": ErrorCode.none,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": topic.name in INTERNAL_TOPICS,
        "partitions": [
            partition_entry(topic.name, p, faults) for p in sorted(topic.partitions.values(), key=lambda p: p.partition_id)
        ],
        "topic_authorized_operations": TOPIC_OPERATIONS if include_operations else OPERATIONS_NOT_ASKED,
    }


def error_entry(name: str | None, error: ErrorCode, topic_id: Any = None) -> dict[str, Any]:
    return {
        "error_code": error, "name": name, "topic_id": topic_id, "is_internal": False,
        "partitions": (), "topic_authorized_operations": OPERATIONS_NOT_ASKED,
    }


async def auto_create(broker: Broker, names: list[str]) -> dict[str, ErrorCode]:
    """Creates topics with the broker's defaults; the error for each one that failed."""
    try:
        results = await broker.controller_router.create_topics([NewTopic(n) for n in names])
    except ControllerUnavailable:
        return dict.fromkeys(names, ErrorCode.leader_not_available)  # retriable: the client asks again
    return {r.name: r.error for r in results if r.name is not None and r.error not in (ErrorCode.none, ErrorCode.topic_already_exists)}


@api(3, 0, 13)
async def handle_metadata(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    version = ctx.api_version
    include_ops = bool(getattr(request, "include_topic_authorized_operations", False))
    allow_create = getattr(request, "allow_auto_topic_creation", True) and broker.config.bool("auto.create.topics.enable")
    image = broker.image
    if request.topics is None or (version == 0 and not request.topics):
        topics = [topic_entry(t, include_ops, broker.faults) for t in image.topics.values()]
    else:
        wanted: list[tuple[str | None, Any]] = [(t.name, getattr(t, "topic_id", None)) for t in request.topics]
        missing = [
            n for n, _ in wanted
            if n is not None and n not in image.topics and not topic_name_error(n) and n not in INTERNAL_TOPICS
        ]
        failures: dict[str, ErrorCode] = {}
        if missing and allow_create:
            failures = await auto_create(broker, list(dict.fromkeys(missing)))
            image = broker.image
        topics = []
        for name, topic_id in wanted:
            if name is None:
                topic = image.topic_by_id(topic_id)
                topics.append(topic_entry(topic, include_ops, broker.faults) if topic else error_entry(None, ErrorCode.unknown_topic_id, topic_id))
            elif topic_name_error(name):
                topics.append(error_entry(name, ErrorCode.invalid_topic_exception))
            elif name in image.topics:
                topics.append(topic_entry(image.topics[name], include_ops, broker.faults))
            else:
                topics.append(error_entry(name, failures.get(name, ErrorCode.unknown_topic_or_partition)))
    return {
        "throttle_time": 0,
        "error_code": ErrorCode.none,
        "brokers": brokers(image),
        "cluster_id": broker.cluster_id,
        "controller_id": controller_id(broker),
        "topics": topics,
        "cluster_authorized_operations": (
            CLUSTER_OPERATIONS if getattr(request, "include_cluster_authorized_operations", False) else OPERATIONS_NOT_ASKED
        ),
    }
