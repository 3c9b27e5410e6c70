"""DescribeCluster (60)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from .context import Broker, RequestContext
from .metadata import CLUSTER_OPERATIONS, OPERATIONS_NOT_ASKED, controller_id
from .registry import api

BROKER_ENDPOINTS = 1


@api(60, 0, 2)
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
    brokers = [
        {"broker_id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack, "is_fenced": b.fenced}
        for b in sorted(broker.image.brokers.values(), key=lambda b: b.node_id)
        if include_fenced or not b.fenced
    ]
    return {
        "throttle_time": 0,
        "error_code": ErrorCode.none,
        "error_message": None,
        "endpoint_type": endpoint_type,
        "cluster_id": broker.cluster_id,
        "controller_id": controller_id(broker),
        "brokers": brokers,
        "cluster_authorized_operations": CLUSTER_OPERATIONS if request.include_cluster_authorized_operations else OPERATIONS_NOT_ASKED,
    }
