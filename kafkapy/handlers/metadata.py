"""Metadata (3): brokers, topics and partition leaders; creates topics on demand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from ..broker.controller_channel import ControllerUnavailable
from ..metadata.acls import CLUSTER_NAME, AclOperation, ResourceType
from ..metadata.controller import INTERNAL_TOPICS, NewTopic, topic_name_error
from ..metadata.image import Endpoint, MetadataImage, PartitionImage, TopicImage
from ..security.authorizer import CLUSTER_ACL_OPERATIONS, TOPIC_ACL_OPERATIONS, operations_bitfield
from ..wire.protocol import InvalidRequest
from .context import Broker, RequestContext
from .faults import Faults
from .registry import handles

# Bit fields of the operations allowed on each resource when no authorizer is set.
TOPIC_OPERATIONS = operations_bitfield(TOPIC_ACL_OPERATIONS)
CLUSTER_OPERATIONS = operations_bitfield(CLUSTER_ACL_OPERATIONS)
OPERATIONS_NOT_ASKED = -(2**31)


def alive_endpoint(image: MetadataImage, node_id: int, listener: str) -> Endpoint | None:
    """Where clients of `listener` reach a broker that serves; None when it is fenced, not
    registered, or has no such listener (as Kafka's metadata cache answers)."""
    broker = image.brokers.get(node_id)
    return broker.endpoint(listener) if broker is not None and not broker.fenced else None


def brokers(image: MetadataImage, listener: str) -> list[dict[str, Any]]:
    """The brokers that serve, at their endpoints for the listener the request came on;
    those without that listener are left out."""
    return [
        {"node_id": b.node_id, "host": endpoint.host, "port": endpoint.port, "rack": b.rack}
        for b in sorted(image.brokers.values(), key=lambda b: b.node_id)
        if (endpoint := alive_endpoint(image, b.node_id, listener)) is not None
    ]


LeaderError = Callable[[int], ErrorCode]


def listener_leader_error(image: MetadataImage, listener: str, version: int) -> LeaderError:
    """A partition leader's error for the listener the request came on: none, or, when the
    leader is registered without that listener, what Kafka answers (LISTENER_NOT_FOUND from
    Metadata v6, LEADER_NOT_AVAILABLE before), so that a client never gets a leader it
    cannot reach."""
    missing = ErrorCode.listener_not_found if version >= 6 else ErrorCode.leader_not_available

    def error(leader: int) -> ErrorCode:
        broker = image.brokers.get(leader)
        return missing if broker is not None and broker.endpoint(listener) is None else ErrorCode.none
    return error


def controller_id(broker: Broker) -> int:
    # Clients send controller-bound admin requests here; this node answers them.
    return broker.node_id


def partition_entry(topic: str, p: PartitionImage, faults: Faults, leader_error: LeaderError) -> dict[str, Any]:
    error = ErrorCode.leader_not_available if faults.leaderless(topic, p.partition_id) else leader_error(p.leader)
    return {
        "error_code": error,
        "partition_index": p.partition_id,
        "leader_id": p.leader if error == ErrorCode.none else -1,
        "leader_epoch": p.leader_epoch,
        "replica_nodes": p.replicas,
        "isr_nodes": p.isr,
        "offline_replicas": (),
    }


def topic_entry(topic: TopicImage, operations: int, faults: Faults, leader_error: LeaderError) -> dict[str, Any]:
    return {
        "error_code": ErrorCode.none,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": topic.name in INTERNAL_TOPICS,
        "partitions": [
            partition_entry(topic.name, p, faults, leader_error) for p in sorted(topic.partitions.values(), key=lambda p: p.partition_id)
        ],
        "topic_authorized_operations": operations,
    }


def error_entry(name: str | None, error: ErrorCode, topic_id: Any = None) -> dict[str, Any]:
    return {
        "error_code": error, "name": name, "topic_id": topic_id, "is_internal": name in INTERNAL_TOPICS,
        "partitions": (), "topic_authorized_operations": OPERATIONS_NOT_ASKED,
    }


def cluster_operations(broker: Broker, ctx: RequestContext, asked: bool) -> int:
    """The cluster_authorized_operations of Metadata and DescribeCluster, as Kafka answers
    them: none at all without DESCRIBE on the cluster."""
    authorizer = broker.authorizer
    if not asked:
        return OPERATIONS_NOT_ASKED
    if authorizer is None:
        return CLUSTER_OPERATIONS
    if not broker.authorized_on_cluster(ctx, AclOperation.DESCRIBE):
        return 0
    return authorizer.authorized_operations(
        broker.image.acls, ctx.principal, ctx.client_host, ResourceType.CLUSTER, CLUSTER_NAME, CLUSTER_ACL_OPERATIONS)


def creatable(broker: Broker, ctx: RequestContext, names: list[str]) -> dict[str, bool]:
    """Which topics the principal may create on first use: CREATE on the cluster, or on the topic."""
    if broker.authorized_on_cluster(ctx, AclOperation.CREATE):
        return dict.fromkeys(names, True)
    allowed = broker.authorized_names(ctx, AclOperation.CREATE, ResourceType.TOPIC, names)
    return {n: n in allowed for n in names}


async def auto_create(broker: Broker, names: dict[str, bool]) -> dict[str, ErrorCode]:
    """Creates the topics that may be created with the broker's defaults; the error for
    each one that failed or was not allowed."""
    refused = {n: ErrorCode.topic_authorization_failed for n, allowed in names.items() if not allowed}
    wanted = [n for n, allowed in names.items() if allowed]
    if not wanted:
        return refused
    try:
        results = await broker.controller_router.create_topics([NewTopic(n) for n in wanted])
    except ControllerUnavailable:
        return {**refused, **dict.fromkeys(wanted, ErrorCode.leader_not_available)}  # retriable: the client asks again
    return {**refused, **{r.name: r.error for r in results
                          if r.name is not None and r.error not in (ErrorCode.none, ErrorCode.topic_already_exists)}}


@handles(3)
async def handle_metadata(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    version = ctx.api_version
    include_ops = bool(getattr(request, "include_topic_authorized_operations", False))
    allow_create = getattr(request, "allow_auto_topic_creation", True) and broker.config.bool("auto.create.topics.enable")
    image = broker.image
    authorizer = broker.authorizer
    leader_error = listener_leader_error(image, ctx.listener, version)

    def operations(topic: str) -> int:
        if not include_ops:
            return OPERATIONS_NOT_ASKED
        if authorizer is None:
            return TOPIC_OPERATIONS
        return authorizer.authorized_operations(image.acls, ctx.principal, ctx.client_host, ResourceType.TOPIC, topic,
                                                TOPIC_ACL_OPERATIONS)

    if request.topics is None or (version == 0 and not request.topics):
        # As Kafka: all topics means all those the principal may describe.
        describable = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, image.topics)
        topics = [topic_entry(t, operations(t.name), broker.faults, leader_error) for t in image.topics.values() if t.name in describable]
    else:
        wanted: list[tuple[str | None, Any]] = [(t.name, getattr(t, "topic_id", None)) for t in request.topics]
        if version < 12 and any(name is None for name, _ in wanted):
            # Before v12 a topic is named (its answer's name is not nullable): Kafka refuses the request.
            raise InvalidRequest(f"Topic name can not be null for version {version}")
        by_id = {topic_id: image.topic_by_id(topic_id) for name, topic_id in wanted if name is None}
        describable = broker.authorized_names(
            ctx, AclOperation.DESCRIBE, ResourceType.TOPIC,
            [n for n, _ in wanted if n is not None] + [t.name for t in by_id.values() if t is not None])
        missing = [
            n for n, _ in wanted
            if n is not None and n not in image.topics and not topic_name_error(n) and n not in INTERNAL_TOPICS and n in describable
        ]
        failures: dict[str, ErrorCode] = {}
        if missing and allow_create:
            failures = await auto_create(broker, creatable(broker, ctx, list(dict.fromkeys(missing))))
            image = broker.image
        topics = []
        for name, topic_id in wanted:
            if name is None:
                topic = by_id[topic_id]
                if topic is None:
                    topics.append(error_entry(None, ErrorCode.unknown_topic_id, topic_id))
                elif topic.name not in describable:
                    topics.append(error_entry(None, ErrorCode.topic_authorization_failed, topic_id))
                else:
                    topics.append(topic_entry(topic, operations(topic.name), broker.faults, leader_error))
            elif topic_name_error(name):
                topics.append(error_entry(name, ErrorCode.invalid_topic_exception))
            elif name not in describable:
                # Whether it exists or not: the answer reveals nothing.
                topics.append(error_entry(name, ErrorCode.topic_authorization_failed))
            elif name in image.topics:
                topics.append(topic_entry(image.topics[name], operations(name), broker.faults, leader_error))
            else:
                topics.append(error_entry(name, failures.get(name, ErrorCode.unknown_topic_or_partition)))
    return {
        "throttle_time": 0,
        "error_code": ErrorCode.none,
        "brokers": brokers(image, ctx.listener),
        "cluster_id": broker.cluster_id,
        "controller_id": controller_id(broker),
        "topics": topics,
        "cluster_authorized_operations": cluster_operations(broker, ctx, getattr(request, "include_cluster_authorized_operations", False)),
    }
