"""The cluster and its disks: DescribeCluster (60), DescribeLogDirs (35)."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from kio.schema.errors import ErrorCode

from ..log.manager import METADATA_PARTITION, TopicPartition
from ..metadata.acls import AclOperation
from .context import Broker, RequestContext
from .metadata import OPERATIONS_NOT_ASKED, cluster_operations, controller_id
from .registry import handles

BROKER_ENDPOINTS = 1


@handles(60)
async def handle_describe_cluster(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    endpoint_type = getattr(request, "endpoint_type", BROKER_ENDPOINTS)
    if endpoint_type != BROKER_ENDPOINTS:
        return {
            "throttle_time": 0, "error_code": ErrorCode.unsupported_endpoint_type,
            "error_message": "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            "endpoint_type": endpoint_type, "cluster_id": broker.cluster_id, "controller_id": -1, "brokers": [],
            "cluster_authorized_operations": OPERATIONS_NOT_ASKED,
        }
    include_fenced = getattr(request, "include_fenced_brokers", False)
    # Each broker at its endpoint for the listener the request came on; one without it is left out.
    brokers = [
        {"broker_id": b.node_id, "host": endpoint.host, "port": endpoint.port, "rack": b.rack, "is_fenced": b.fenced}
        for b in sorted(broker.image.brokers.values(), key=lambda b: b.node_id)
        if (include_fenced or not b.fenced) and (endpoint := b.endpoint(ctx.listener)) is not None
    ]
    return {
        "throttle_time": 0,
        "error_code": ErrorCode.none,
        "error_message": None,
        "endpoint_type": endpoint_type,
        "cluster_id": broker.cluster_id,
        "controller_id": controller_id(broker),
        "brokers": brokers,
        "cluster_authorized_operations": cluster_operations(broker, ctx, request.include_cluster_authorized_operations),
    }


@handles(35)
async def handle_describe_log_dirs(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not broker.authorized_on_cluster(ctx, AclOperation.DESCRIBE):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "results": []}
    logs = broker.replicas.logs
    wanted: set[TopicPartition] | None = None
    if request.topics is not None:
        wanted = {TopicPartition(t.topic, p) for t in request.topics for p in t.partitions}
    per_dir: dict[Any, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for tp, log in sorted(logs.logs.items()):
        if tp == TopicPartition(*METADATA_PARTITION) or (wanted is not None and tp not in wanted):
            continue
        per_dir[logs.dir_of(tp)][tp.topic].append(
            {"partition_index": tp.partition, "partition_size": log.size, "offset_lag": 0, "is_future_key": False}
        )
    results = []
    for d in logs.dirs:
        stats = os.statvfs(d)
        results.append({
            "error_code": ErrorCode.none,
            "log_dir": str(d.resolve()),
            "topics": [{"name": name, "partitions": parts} for name, parts in per_dir[d].items()],
            "total_bytes": stats.f_blocks * stats.f_frsize,
            "usable_bytes": stats.f_bavail * stats.f_frsize,
        })
    return {"throttle_time": 0, "error_code": ErrorCode.none, "results": results}
