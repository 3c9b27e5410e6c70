"""Partition reassignments: AlterPartitionReassignments (45) and ListPartitionReassignments
(46), which a broker forwards to the active controller as Kafka does."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..metadata.acls import AclOperation
from .context import Node, RequestContext
from .controller import error_answer, on_active_controller
from .registry import handles


@handles(45)
async def handle_alter_partition_reassignments(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _alter(node, ctx, request))


async def _alter(node: Node, ctx: RequestContext, request: Any) -> Any:
    if not node.authorized_on_cluster(ctx, AclOperation.ALTER):
        return error_answer(ctx, request, ErrorCode.cluster_authorization_failed)
    allow_change = request.allow_replication_factor_change if ctx.api_version >= 1 else True
    wanted = [(t.name, p.partition_index, None if p.replicas is None else list(p.replicas))
              for t in request.topics for p in t.partitions]
    results = iter(await node.controller_service.alter_reassignments(wanted, allow_change))
    responses = []
    for topic in request.topics:
        partitions = []
        for _ in topic.partitions:
            r = next(results)
            partitions.append({"partition_index": r.partition, "error_code": r.error, "error_message": r.message})
        responses.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "allow_replication_factor_change": allow_change,
            "error_code": ErrorCode.none, "error_message": None, "responses": responses}


@handles(46)
async def handle_list_partition_reassignments(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _list(node, ctx, request))


async def _list(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not node.authorized_on_cluster(ctx, AclOperation.DESCRIBE):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None, "topics": []}
    wanted = None if request.topics is None else [(t.name, list(t.partition_indexes)) for t in request.topics]
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for r in await node.controller_service.list_reassignments(wanted):
        by_topic.setdefault(r.topic, []).append({
            "partition_index": r.partition, "replicas": list(r.replicas),
            "adding_replicas": list(r.adding), "removing_replicas": list(r.removing)})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
            "topics": [{"name": name, "partitions": partitions} for name, partitions in by_topic.items()]}
