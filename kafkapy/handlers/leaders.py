"""Partition leadership: ElectLeaders (43), which a broker forwards to the active
controller as Kafka does, and AlterPartition (56), a partition leader's ISR change,
served on the controller listener."""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from ..broker.controller_service import NotController
from ..metadata.acls import AclOperation
from ..metadata.partitions import ELECTION_TYPES, UNKNOWN_BROKER_EPOCH, IsrChange
from .context import Broker, RequestContext
from .controller import error_answer, on_active_controller
from .registry import handles

PREFERRED = 0
_NO_TOPIC = uuid.UUID(int=0)


@handles(43)
async def handle_elect_leaders(broker: Broker, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(broker, ctx, request, lambda: _elect_leaders(broker, ctx, request))


async def _elect_leaders(broker: Broker, ctx: RequestContext, request: Any) -> Any:
    if not broker.authorized_on_cluster(ctx, AclOperation.ALTER):
        return error_answer(ctx, request, ErrorCode.cluster_authorization_failed)
    election_type = request.election_type if ctx.api_version >= 1 else PREFERRED
    wanted = None
    if request.topic_partitions is not None:
        wanted = [(t.topic, list(t.partitions)) for t in request.topic_partitions]
    if election_type not in ELECTION_TYPES:
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request, "replica_election_results": [
            {"topic": name, "partition_result": [
                {"partition_id": p, "error_code": ErrorCode.invalid_request, "error_message": f"Unknown election type {election_type}"}
                for p in partitions]}
            for name, partitions in wanted or []]}
    results = await broker.controller_service.elect_leaders(election_type, wanted)
    by_topic: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in wanted or []}
    for r in results:
        by_topic.setdefault(r.topic, []).append(
            {"partition_id": r.partition, "error_code": r.error, "error_message": r.message})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "replica_election_results": [
        {"topic": name, "partition_result": partitions} for name, partitions in by_topic.items()]}


@handles(56)
async def handle_alter_partition(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not broker.authorized_on_cluster(ctx, AclOperation.CLUSTER_ACTION):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "topics": []}
    proposals = []
    for topic in request.topics:
        for p in topic.partitions:
            if ctx.api_version >= 3:
                members = tuple(m.broker_id for m in p.new_isr_with_epochs)
                epochs = tuple(m.broker_epoch for m in p.new_isr_with_epochs)
            else:
                members = tuple(p.new_isr)
                epochs = (UNKNOWN_BROKER_EPOCH,) * len(members)
            proposals.append((IsrChange(topic.topic_id or _NO_TOPIC, p.partition_index, p.leader_epoch, p.partition_epoch, members), epochs))
    try:
        error, results = await broker.controller_service.alter_partition(request.broker_id, request.broker_epoch, proposals)
    except NotController:
        error, results = ErrorCode.not_controller, []
    if error != ErrorCode.none:
        return {"throttle_time": 0, "error_code": error, "topics": []}
    answers = iter(results)
    return {"throttle_time": 0, "error_code": ErrorCode.none, "topics": [
        {"topic_id": topic.topic_id, "partitions": [
            _partition_answer(p.partition_index, next(answers)) for p in topic.partitions]}
        for topic in request.topics]}


def _partition_answer(index: int, result: Any) -> dict[str, Any]:
    return {"partition_index": index, "error_code": result.error, "leader_id": result.leader,
            "leader_epoch": result.leader_epoch, "isr": list(result.isr), "leader_recovery_state": 0,
            "partition_epoch": result.partition_epoch}
