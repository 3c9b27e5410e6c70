"""The controller's own APIs, served on the controller listener as Kafka's ControllerApis
serves them: Envelope (58), BrokerRegistration (62), BrokerHeartbeat (63) and
AllocateProducerIds (67); and `on_active_controller`, which runs a client's request that
only the controller may carry out here or forwards it to the active controller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kio.schema.errors import ErrorCode

from ..broker.controller_channel import ControllerUnavailable
from ..broker.controller_service import NotController
from ..coordinator.producer_ids import BLOCK_SIZE
from ..metadata.acls import AclOperation
from ..metadata.brokers import Endpoint
from ..security.envelope_principal import decode_principal
from ..wire.build import error_response
from ..wire.protocol import encode_response, response_type
from .context import ANONYMOUS, Broker, Node, RequestContext
from .registry import handles


async def on_active_controller(node: Node, ctx: RequestContext, request: Any, here: Callable[[], Awaitable[Any]]) -> Any:
    """`here()` on the active controller; elsewhere the request goes, whole, to the one that is."""
    if node.controller_service.is_active:
        try:
            return await here()
        except NotController:
            pass
    if ctx.via_controller_listener:
        # Forwarded here by a broker that thought this node active: it asks the next one.
        return error_answer(ctx, request, ErrorCode.not_controller)
    assert isinstance(node, Broker), "only a broker has broker listeners"
    try:
        return await node.controller_router.forward(ctx.frame, ctx.client_host, ctx.principal, ctx.api_key, ctx.api_version, here)
    except ControllerUnavailable:
        return error_answer(ctx, request, ErrorCode.request_timed_out)


def error_answer(ctx: RequestContext, request: Any, error: ErrorCode) -> Any:
    """The error for each item of a request, as Kafka's getErrorResponse gives it: a client
    finds an answer for every topic or resource it asked about."""
    match ctx.api_key:
        case 19:  # CreateTopics
            return {"throttle_time": 0, "topics": [
                {"name": t.name, "topic_id": None, "error_code": error, "error_message": None,
                 "topic_config_error_code": ErrorCode.none, "num_partitions": -1, "replication_factor": -1, "configs": None}
                for t in request.topics]}
        case 20:  # DeleteTopics
            named = request.topics if ctx.api_version >= 6 else [_Named(n) for n in request.topic_names]
            return {"throttle_time": 0, "responses": [
                {"name": t.name, "topic_id": getattr(t, "topic_id", None), "error_code": error, "error_message": None}
                for t in named]}
        case 37:  # CreatePartitions
            return {"throttle_time": 0, "results": [{"name": t.name, "error_code": error, "error_message": None}
                                                    for t in request.topics]}
        case 33 | 44:  # AlterConfigs, IncrementalAlterConfigs
            return {"throttle_time": 0, "responses": [
                {"error_code": error, "error_message": None, "resource_type": r.resource_type, "resource_name": r.resource_name}
                for r in request.resources]}
        case 30:  # CreateAcls
            return {"throttle_time": 0, "results": [{"error_code": error, "error_message": None} for _ in request.creations]}
        case 31:  # DeleteAcls
            return {"throttle_time": 0, "filter_results": [
                {"error_code": error, "error_message": None, "matching_acls": []} for _ in request.filters]}
        case 51:  # AlterUserScramCredentials: once for each user named
            users = dict.fromkeys([*(d.name for d in request.deletions), *(u.name for u in request.upsertions)])
            return {"throttle_time": 0, "results": [{"user": user, "error_code": error, "error_message": None} for user in users]}
        case 43:  # ElectLeaders
            return {"throttle_time": 0, "error_code": error, "replica_election_results": [
                {"topic": t.topic, "partition_result": [
                    {"partition_id": p, "error_code": error, "error_message": None} for p in t.partitions]}
                for t in request.topic_partitions or ()]}
        case 45:  # AlterPartitionReassignments
            return {"throttle_time": 0, "allow_replication_factor_change": getattr(request, "allow_replication_factor_change", True),
                    "error_code": error, "error_message": None, "responses": [
                        {"name": t.name, "partitions": [
                            {"partition_index": p.partition_index, "error_code": error, "error_message": None}
                            for p in t.partitions]}
                        for t in request.topics]}
    return error_response(response_type(ctx.api_key, ctx.api_version), error)


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


@handles(58)
async def handle_envelope(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not node.controller_service.is_active:
        return {"response_data": None, "error_code": ErrorCode.not_controller}
    # As Kafka's EnvelopeUtils: only a broker may forward, and it must say for whom.
    if not node.authorized_on_cluster(ctx, AclOperation.CLUSTER_ACTION):
        return {"response_data": None, "error_code": ErrorCode.cluster_authorization_failed}
    try:
        principal = decode_principal(request.request_principal) if request.request_principal else ANONYMOUS
    except ValueError:
        return {"response_data": None, "error_code": ErrorCode.principal_deserialization_failure}
    from . import respond  # the dispatcher imports every handler module, this one included

    correlation_id, inner = await respond(node, request.request_data, request.client_host_address.decode(),
                                          controller_listener=True, principal=principal)
    chunks, _ = encode_response(correlation_id, inner)
    # The embedded response is its header and body, without the size prefix.
    return {"response_data": b"".join(bytes(c) for c in chunks)[4:], "error_code": ErrorCode.none}


@handles(62)
async def handle_broker_registration(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not node.authorized_on_cluster(ctx, AclOperation.CLUSTER_ACTION):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "broker_epoch": -1}
    if request.cluster_id != node.cluster_id:
        return {"throttle_time": 0, "error_code": ErrorCode.inconsistent_cluster_id, "broker_epoch": -1}
    endpoints = tuple(Endpoint(e.name, e.host, e.port, e.security_protocol) for e in request.listeners)
    try:
        registered = await node.controller_service.register_broker(request.broker_id, request.incarnation_id, endpoints, request.rack)
    except NotController:
        return {"throttle_time": 0, "error_code": ErrorCode.not_controller, "broker_epoch": -1}
    return {"throttle_time": 0, "error_code": registered.error, "broker_epoch": registered.broker_epoch}


@handles(63)
async def handle_broker_heartbeat(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not node.authorized_on_cluster(ctx, AclOperation.CLUSTER_ACTION):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "is_caught_up": False,
                "is_fenced": True, "should_shut_down": False}
    try:
        answer = await node.controller_service.broker_heartbeat(
            request.broker_id, request.broker_epoch, request.current_metadata_offset, request.want_fence, request.want_shut_down)
    except NotController:
        return {"throttle_time": 0, "error_code": ErrorCode.not_controller, "is_caught_up": False, "is_fenced": True,
                "should_shut_down": False}
    return {"throttle_time": 0, "error_code": answer.error, "is_caught_up": answer.is_caught_up,
            "is_fenced": answer.is_fenced, "should_shut_down": answer.should_shut_down}


@handles(67)
async def handle_allocate_producer_ids(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not node.authorized_on_cluster(ctx, AclOperation.CLUSTER_ACTION):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "producer_id_start": -1,
                "producer_id_len": 0}
    try:
        first = await node.controller_service.reserve_producer_ids(request.broker_id, request.broker_epoch, BLOCK_SIZE)
    except NotController:
        return {"throttle_time": 0, "error_code": ErrorCode.not_controller, "producer_id_start": -1, "producer_id_len": 0}
    return {"throttle_time": 0, "error_code": ErrorCode.none, "producer_id_start": first, "producer_id_len": BLOCK_SIZE}
