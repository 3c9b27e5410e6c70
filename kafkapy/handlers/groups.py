"""The group APIs, each handed to the group coordinator once this broker is known to
coordinate the group: the classic JoinGroup (11), Heartbeat (12), LeaveGroup (13),
SyncGroup (14), DescribeGroups (15), ListGroups (16), DeleteGroups (42), and the
consumer group protocol's ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69)."""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
from kio.schema.errors import ErrorCode

from ..coordinator.consumer_protocol import consumer_group_describe_error, consumer_group_heartbeat_response
from .context import Broker, RequestContext
from .registry import api

# The group.coordinator.rebalance.protocols value enabling ConsumerGroupHeartbeat.
CONSUMER_PROTOCOL = "consumer"


@api(11, 0, 9)
async def handle_join_group(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error, "generation_id": -1, "protocol_type": None, "protocol_name": None,
                "leader": "", "skip_assignment": False, "member_id": request.member_id, "members": []}

    error = await broker.groups.coordinator_error(request.group_id)
    if error:
        return failed(error)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(
        request.group_id,
        lambda token: coordinator.join_group(ctx.api_version, ctx.client_id or "", ctx.client_host, request, token),
        failed,
    )


@api(12, 0, 4)
async def handle_heartbeat(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error}

    error = await broker.groups.coordinator_error(request.group_id)
    if error:
        return failed(error)
    if hold_ms := broker.faults.heartbeat_hold_ms(request.group_id):
        # Injected: the coordinator does not hear of this heartbeat, and the client waits.
        await anyio.sleep(hold_ms / 1000)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(
        request.group_id, lambda token: coordinator.heartbeat(ctx.api_version, request, token), failed)


@api(13, 0, 5)
async def handle_leave_group(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error, "members": []}

    error = await broker.groups.coordinator_error(request.group_id)
    if error:
        return failed(error)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(
        request.group_id, lambda token: coordinator.leave_group(ctx.api_version, request, token), failed)


@api(14, 0, 5)
async def handle_sync_group(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error, "protocol_type": None, "protocol_name": None, "assignment": b""}

    error = await broker.groups.coordinator_error(request.group_id)
    if error:
        return failed(error)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(
        request.group_id, lambda token: coordinator.sync_group(ctx.api_version, request, token), failed)


@api(15, 0, 6)
async def handle_describe_groups(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    return broker.groups.coordinator.describe_groups(ctx.api_version, request)


@api(16, 0, 5)
async def handle_list_groups(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    return broker.groups.coordinator.list_groups(ctx.api_version, request)


@api(42, 0, 2)
async def handle_delete_groups(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    runtime = broker.groups
    group_ids = list(dict.fromkeys(request.groups_names))
    if not runtime.topic_ready():
        return {"throttle_time": 0, "results": [{"group_id": g, "error_code": ErrorCode.coordinator_not_available} for g in group_ids]}
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
    ]
    return response


@api(68, 0, 1)
async def handle_consumer_group_heartbeat(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if CONSUMER_PROTOCOL not in broker.config.strings("group.coordinator.rebalance.protocols"):
        return consumer_group_heartbeat_response(ErrorCode.unsupported_version)
    error = await broker.groups.coordinator_error(request.group_id)
    if error:
        return consumer_group_heartbeat_response(error)
    coordinator = broker.groups.coordinator
    return await broker.groups.call(request.group_id, lambda token: coordinator.consumer_group_heartbeat(
        ctx.api_version, request, token, client_id=ctx.client_id or "", client_host=ctx.client_host),
        consumer_group_heartbeat_response)


@api(69, 0, 1)
async def handle_consumer_group_describe(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    errors = {g: await broker.groups.coordinator_error(g) for g in request.group_ids if g}
    served = tuple(g for g in request.group_ids if not errors.get(g))
    response = broker.groups.coordinator.consumer_group_describe(ctx.api_version, dataclasses.replace(request, group_ids=served))
    response["groups"] = list(response["groups"]) + [
        consumer_group_describe_error(g, error, None) for g, error in errors.items() if error
    ]
    return response
