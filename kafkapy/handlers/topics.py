"""Topic administration: CreateTopics (19), DeleteTopics (20), DeleteRecords (21),
CreatePartitions (37). The controller decides; its records change the cluster."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from ..log.partition import LogError
from ..metadata.acls import AclOperation, ResourceType
from ..metadata.controller import INTERNAL_TOPICS, NewTopic, TopicResult
from .configs import describe_topic
from .context import Broker, Node, RequestContext
from .controller import on_active_controller
from .registry import handles

_ZERO = uuid.UUID(int=0)
HIGH_WATERMARK = -1  # DeleteRecords' "up to the high watermark"


@handles(19)
async def handle_create_topics(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _create_topics(node, ctx, request))


async def _create_topics(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    new_topics = [
        NewTopic(
            name=t.name,
            num_partitions=t.num_partitions,
            replication_factor=t.replication_factor,
            assignments={a.partition_index: list(a.broker_ids) for a in t.assignments},
            configs={c.name: c.value for c in t.configs},
        )
        for t in request.topics
    ]
    names = [t.name for t in new_topics]
    denied: set[str] = set()
    if node.authorizer is not None and not node.authorized_on_cluster(ctx, AclOperation.CREATE):
        denied = set(names) - node.authorized_names(ctx, AclOperation.CREATE, ResourceType.TOPIC, names)
    allowed = [t for t in new_topics if t.name not in denied]
    results = await node.controller_service.write(
        lambda image: node.controller.create_topics(image, allowed, getattr(request, "validate_only", False)))
    results += [TopicResult(name, ErrorCode.topic_authorization_failed, "Authorization failed.") for name in dict.fromkeys(names) if name in denied]
    config = node.effective_config()
    overrides: dict[str | None, Mapping[str, str | None]] = {t.name: t.configs for t in new_topics}
    configs_visible = node.authorized_names(ctx, AclOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, names)
    topics = []
    for r in results:
        ok = r.error == ErrorCode.none
        configs_ok = r.name in configs_visible
        topics.append({
            "name": r.name,
            "topic_id": r.topic_id,
            "error_code": r.error,
            "error_message": r.message,
            "topic_config_error_code": ErrorCode.none if configs_ok else ErrorCode.topic_authorization_failed,
            "num_partitions": r.num_partitions if ok else -1,
            "replication_factor": r.replication_factor if ok else -1,
            # As DescribeConfigs would show them, the topic's own overrides included.
            "configs": describe_topic(config, overrides[r.name], None, request) if ok and configs_ok else None,
        })
    return {"throttle_time": 0, "topics": topics}


@handles(20)
async def handle_delete_topics(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _delete_topics(node, ctx, request))


async def _delete_topics(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if ctx.api_version >= 6:
        names, ids, invalid = [], [], []
        for t in request.topics:
            if t.name is not None and t.topic_id not in (None, _ZERO):
                invalid.append({"name": t.name, "topic_id": t.topic_id, "error_code": ErrorCode.invalid_request,
                                "error_message": "You may not specify both topic name and topic id."})
            elif t.name is not None:
                names.append(t.name)
            elif t.topic_id not in (None, _ZERO):
                ids.append(t.topic_id)
            else:
                invalid.append({"name": None, "topic_id": _ZERO, "error_code": ErrorCode.invalid_request,
                                "error_message": "Neither topic name nor id were specified."})
    else:
        names, ids, invalid = list(request.topic_names), [], []
    denied: list[TopicResult] = []
    if node.authorizer is not None:
        names, ids, denied = _deletable(node, ctx, names, ids)
    results = await node.controller_service.write(lambda image: node.controller.delete_topics(image, names, ids)) + denied
    responses = invalid + [
        {"name": r.name, "topic_id": r.topic_id, "error_code": r.error, "error_message": r.message} for r in results
    ]
    return {"throttle_time": 0, "responses": responses}


def _deletable(node: Node, ctx: RequestContext, names: list[str], ids: list[uuid.UUID]) -> tuple[list[str], list[uuid.UUID], list[TopicResult]]:
    """As Kafka's ControllerApis.deleteTopics: a topic named needs DELETE (else
    TOPIC_AUTHORIZATION_FAILED); one given by id needs DESCRIBE to be found at all (else
    UNKNOWN_TOPIC_ID, revealing nothing), then DELETE."""
    image = node.image
    denied: list[TopicResult] = []
    kept_ids = []
    for topic_id in ids:
        topic = image.topic_by_id(topic_id)
        if topic is None:
            kept_ids.append(topic_id)
        elif not node.authorized(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, topic.name):
            denied.append(TopicResult(None, ErrorCode.unknown_topic_id, "This server does not host this topic ID.", topic_id))
        elif not node.authorized(ctx, AclOperation.DELETE, ResourceType.TOPIC, topic.name):
            denied.append(TopicResult(topic.name, ErrorCode.topic_authorization_failed, None, topic_id))
        else:
            kept_ids.append(topic_id)
    deletable = node.authorized_names(ctx, AclOperation.DELETE, ResourceType.TOPIC, names)
    denied += [TopicResult(n, ErrorCode.topic_authorization_failed) for n in dict.fromkeys(names) if n not in deletable]
    return [n for n in names if n in deletable], kept_ids, denied


def delete_partition(broker: Broker, topic: str, index: int, offset: int) -> dict[str, Any]:
    topic_image = broker.image.topics.get(topic)
    if topic_image is None or index not in topic_image.partitions:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.unknown_topic_or_partition}
    if topic in INTERNAL_TOPICS:
        # As Kafka's ReplicaManager: the coordinators' state is never cut short by a client.
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.invalid_topic_exception}
    log = broker.replicas.get(topic, index)
    if log is None or topic_image.partitions[index].leader != broker.node_id:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.not_leader_or_follower}
    if not log.config.delete:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.policy_violation}
    if offset < HIGH_WATERMARK:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.offset_out_of_range}
    try:
        low = log.delete_records_before(log.high_watermark if offset == HIGH_WATERMARK else offset)
    except LogError as e:
        return {"partition_index": index, "low_watermark": -1, "error_code": e.code}
    return {"partition_index": index, "low_watermark": low, "error_code": ErrorCode.none}


@handles(21)
async def handle_delete_records(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    deletable = broker.authorized_names(ctx, AclOperation.DELETE, ResourceType.TOPIC, (t.name for t in request.topics))
    topics = [
        {"name": t.name, "partitions": [
            delete_partition(broker, t.name, p.partition_index, p.offset) if t.name in deletable else
            {"partition_index": p.partition_index, "low_watermark": -1, "error_code": ErrorCode.topic_authorization_failed}
            for p in t.partitions]}
        for t in request.topics
    ]
    return {"throttle_time": 0, "topics": topics}


@handles(37)
async def handle_create_partitions(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _create_partitions(node, ctx, request))


async def _create_partitions(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    alterable = node.authorized_names(ctx, AclOperation.ALTER, ResourceType.TOPIC, (t.name for t in request.topics))
    requests = [
        (t.name, t.count, [list(a.broker_ids) for a in t.assignments] if t.assignments is not None else None)
        for t in request.topics if t.name in alterable
    ]
    results = await node.controller_service.write(
        lambda image: node.controller.create_partitions(image, requests, request.validate_only))
    results += [TopicResult(n, ErrorCode.topic_authorization_failed) for n in dict.fromkeys(t.name for t in request.topics)
                if n not in alterable]
    return {"throttle_time": 0, "results": [{"name": r.name, "error_code": r.error, "error_message": r.message} for r in results]}
