"""The group APIs, each handed to the group coordinator once this broker is known to
coordinate the group: the classic JoinGroup (11), Heartbeat (12), LeaveGroup (13),
SyncGroup (14), DescribeGroups (15), ListGroups (16), DeleteGroups (42), and the
consumer group protocol's ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69)."""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
from kio.schema.errors import ErrorCode

from ..coordinator.group_refusals import (
    AUTHORIZED_OPERATIONS_OMITTED,
    consumer_group_describe_error,
    consumer_group_heartbeat_response,
)
from ..metadata.acls import AclOperation, ResourceType
from ..security.authorizer import GROUP_ACL_OPERATIONS
from .context import Broker, RequestContext
from .registry import handles

# The group.coordinator.rebalance.protocols value enabling ConsumerGroupHeartbeat.
CONSUMER_PROTOCOL = "consumer"


def group_read_error(broker: Broker, ctx: RequestContext, group_id: str) -> ErrorCode | None:
    """GROUP_AUTHORIZATION_FAILED without READ on the group, as Kafka checks before anything else."""
    if broker.authorizer is None or broker.authorized(ctx, AclOperation.READ, ResourceType.GROUP, group_id):
        return None
    return ErrorCode.group_authorization_failed


def group_operations(broker: Broker, ctx: RequestContext, group_id: str) -> int:
    """The group's authorized_operations bit field for DescribeGroups, with an authorizer."""
    authorizer = broker.authorizer
    assert authorizer is not None
    return authorizer.authorized_operations(
        broker.image.acls, ctx.principal, ctx.client_host, ResourceType.GROUP, group_id, GROUP_ACL_OPERATIONS)


@handles(11)
async def handle_join_group(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def failed(error: ErrorCode) -> dict[str, Any]:
        # The protocol name may be null from v7 on only.
        return {"throttle_time": 0, "error_code": error, "generation_id": -1, "protocol_type": None,
                "protocol_name": None if ctx.api_version >= 7 else "",
                "leader": "", "skip_assignment": False, "member_id": request.member_id, "members": []}

    error = group_read_error(broker, ctx, request.group_id) or await broker.groups.coordinator_error(request.group_id)
    if error:
        return failed(error)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(
        request.group_id,
        lambda token: coordinator.join_group(ctx.api_version, ctx.client_id or "", ctx.client_host, request, token),
        failed,
    )


@handles(12)
async def handle_heartbeat(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error}

    error = group_read_error(broker, ctx, request.group_id) or await broker.groups.coordinator_error(request.group_id)
    if error:
        return failed(error)
    if hold_ms := broker.faults.heartbeat_hold_ms(request.group_id):
        # Injected: the coordinator does not hear of this heartbeat, and the client waits.
        await anyio.sleep(hold_ms / 1000)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(
        request.group_id, lambda token: coordinator.heartbeat(ctx.api_version, request, token), failed)


@handles(13)
async def handle_leave_group(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error, "members": []}

    error = group_read_error(broker, ctx, request.group_id) or await broker.groups.coordinator_error(request.group_id)
    if error:
        return failed(error)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(
        request.group_id, lambda token: coordinator.leave_group(ctx.api_version, request, token), failed)


@handles(14)
async def handle_sync_group(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error, "protocol_type": None, "protocol_name": None, "assignment": b""}

    error = group_read_error(broker, ctx, request.group_id) or await broker.groups.coordinator_error(request.group_id)
    if error:
        return failed(error)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(
        request.group_id, lambda token: coordinator.sync_group(ctx.api_version, request, token), failed)


@handles(15)
async def handle_describe_groups(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if broker.authorizer is None:
        return broker.groups.coordinator.describe_groups(ctx.api_version, request)
    describable = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, request.groups)
    response = broker.groups.coordinator.describe_groups(
        ctx.api_version, dataclasses.replace(request, groups=tuple(g for g in request.groups if g in describable)))
    described = iter(response["groups"])
    groups = []
    for group_id in request.groups:
        if group_id not in describable:
            groups.append({"error_code": ErrorCode.group_authorization_failed, "error_message": None, "group_id": group_id,
                           "group_state": "", "protocol_type": "", "protocol_data": "", "members": [],
                           "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED})
            continue
        group = next(described)
        if group["authorized_operations"] != AUTHORIZED_OPERATIONS_OMITTED:
            group["authorized_operations"] = group_operations(broker, ctx, group_id)
        groups.append(group)
    response["groups"] = groups
    return response


@handles(16)
async def handle_list_groups(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    response = broker.groups.coordinator.list_groups(ctx.api_version, request)
    # As Kafka: DESCRIBE on the cluster lists every group, otherwise those the principal may describe.
    if broker.authorizer is not None and not broker.authorized_on_cluster(ctx, AclOperation.DESCRIBE):
        describable = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, (g["group_id"] for g in response["groups"]))
        response["groups"] = [g for g in response["groups"] if g["group_id"] in describable]
    return response


@handles(42)
async def handle_delete_groups(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    runtime = broker.groups
    requested = list(dict.fromkeys(request.groups_names))
    deletable = broker.authorized_names(ctx, AclOperation.DELETE, ResourceType.GROUP, requested)
    denied = [{"group_id": g, "error_code": ErrorCode.group_authorization_failed} for g in requested if g not in deletable]
    group_ids = [g for g in requested if g in deletable]
    if not runtime.topic_ready():
        return {"throttle_time": 0, "results": denied + [
            {"group_id": g, "error_code": ErrorCode.coordinator_not_available} for g in group_ids]}
    # As Kafka: each group is answered by the state of its own partition here.
    errors = {g: runtime.partition_error(runtime.coordinator.partition_for(g)) for g in group_ids}
    served = [g for g in group_ids if errors[g] is None]
    response: dict[str, Any] = {"throttle_time": 0, "results": []}
    if served:
        response = await runtime.call(
            None, lambda token: runtime.coordinator.delete_groups(ctx.api_version, served, token),
            lambda error: {"throttle_time": 0, "results": [{"group_id": g, "error_code": error} for g in served]},
        )
    response["results"] = list(response["results"]) + [
        {"group_id": g, "error_code": error} for g, error in errors.items() if error is not None
    ] + denied
    return response


@handles(68)
async def handle_consumer_group_heartbeat(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if CONSUMER_PROTOCOL not in broker.config.strings("group.coordinator.rebalance.protocols"):
        return consumer_group_heartbeat_response(ErrorCode.unsupported_version)
    error = group_read_error(broker, ctx, request.group_id) or await broker.groups.coordinator_error(request.group_id)
    if error:
        return consumer_group_heartbeat_response(error)
    if broker.authorizer is not None and request.subscribed_topic_names:
        # As Kafka: DESCRIBE on every topic the member subscribes to.
        names = set(request.subscribed_topic_names)
        hidden = names - broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, names)
        if hidden:
            return consumer_group_heartbeat_response(
                ErrorCode.topic_authorization_failed, error_message=f"Unauthorized topics: {', '.join(sorted(hidden))}")
    coordinator = broker.groups.coordinator
    return await broker.groups.call(request.group_id, lambda token: coordinator.consumer_group_heartbeat(
        ctx.api_version, request, token, client_id=ctx.client_id or "", client_host=ctx.client_host),
        consumer_group_heartbeat_response)


@handles(69)
async def handle_consumer_group_describe(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    errors: dict[str, ErrorCode | None] = {}
    if broker.authorizer is not None:
        describable = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, request.group_ids)
        errors = {g: ErrorCode.group_authorization_failed for g in request.group_ids if g not in describable}
    errors |= {g: await broker.groups.coordinator_error(g) for g in request.group_ids if g and g not in errors}
    served = tuple(g for g in request.group_ids if not errors.get(g))
    response = broker.groups.coordinator.consumer_group_describe(ctx.api_version, dataclasses.replace(request, group_ids=served))
    if broker.authorizer is not None and request.include_authorized_operations:
        for group in response["groups"]:
            if group["error_code"] == ErrorCode.none:
                group["authorized_operations"] = group_operations(broker, ctx, group["group_id"])
    response["groups"] = list(response["groups"]) + [
        consumer_group_describe_error(g, error, None) for g, error in errors.items() if error
    ]
    return response
