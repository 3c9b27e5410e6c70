"""Transactions: InitProducerId (22), AddPartitionsToTxn (24), AddOffsetsToTxn (25),
EndTxn (26), DescribeTransactions (65), ListTransactions (66), DescribeProducers (61)."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from kio.schema.errors import ErrorCode

from ..broker.controller_channel import ControllerUnavailable
from ..coordinator.transaction_coordinator import transaction_state_error
from ..metadata.acls import AclOperation, ResourceType
from ..metadata.controller import INTERNAL_TOPICS
from .context import Broker, RequestContext
from .registry import handles


@handles(22)
async def handle_init_producer_id(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if broker.authorizer is not None and (refused := _init_refusal(broker, ctx, request.transactional_id)):
        return _init_error(refused)
    with contextlib.suppress(ControllerUnavailable):  # the ids left may still do
        await broker.producer_ids.reserve_if_wanted()
    if not broker.producer_ids.has_ids:
        # As Kafka's RPCProducerIdManager while it waits for a block: retriable.
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_load_in_progress, "producer_id": -1, "producer_epoch": -1}
    if request.transactional_id is None:
        # Without a transactional id Kafka always hands out a fresh id at epoch 0.
        return {"throttle_time": 0, "error_code": ErrorCode.none, "producer_id": broker.producer_ids.generate(), "producer_epoch": 0}
    error = await broker.transactions.coordinator_error(request.transactional_id)
    if error:
        return _init_error(error)
    coordinator = broker.transactions.coordinator
    return await broker.transactions.call(
        request.transactional_id, lambda token: coordinator.init_producer_id(ctx.api_version, request, token), _init_error)


def _init_refusal(broker: Broker, ctx: RequestContext, transactional_id: str | None) -> ErrorCode | None:
    """As Kafka: a transactional producer needs WRITE on its id; an idempotent one
    IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679)."""
    authorizer = broker.authorizer
    assert authorizer is not None
    if transactional_id is not None:
        return None if _may_write_txn(broker, ctx, transactional_id) else ErrorCode.transactional_id_authorization_failed
    if broker.authorized_on_cluster(ctx, AclOperation.IDEMPOTENT_WRITE) or authorizer.authorize_by_resource_type(
            broker.image.acls, ctx.principal, ctx.client_host, AclOperation.WRITE, ResourceType.TOPIC):
        return None
    return ErrorCode.cluster_authorization_failed


def _may_write_txn(broker: Broker, ctx: RequestContext, transactional_id: str) -> bool:
    return broker.authorized(ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id)


def _init_error(error: ErrorCode) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": error, "producer_id": -1, "producer_epoch": -1}


def _partition_errors(broker: Broker, ctx: RequestContext, topics: Any) -> dict[tuple[str, int], ErrorCode]:
    """What Kafka's request handler finds wrong before the coordinator sees the partitions."""
    errors = {}
    version = ctx.api_version
    writable = broker.authorized_names(ctx, AclOperation.WRITE, ResourceType.TOPIC, (t.name for t in topics))
    for topic in topics:
        existing = broker.image.topics.get(topic.name)
        for p in topic.partitions:
            if topic.name not in writable:
                errors[(topic.name, p)] = ErrorCode.topic_authorization_failed
            elif existing is None or p not in existing.partitions:
                errors[(topic.name, p)] = ErrorCode.unknown_topic_or_partition
            elif topic.name in INTERNAL_TOPICS and version < 4:
                errors[(topic.name, p)] = ErrorCode.topic_authorization_failed
    return errors


@handles(24)
async def handle_add_partitions_to_txn(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    version = ctx.api_version
    if version < 4:
        ids, topics = [request.v3_and_below_transactional_id], list(request.v3_and_below_topics)
    else:
        ids, topics = [t.transactional_id for t in request.transactions], [x for t in request.transactions for x in t.topics]

    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error, "results_by_transaction": [], "results_by_topic_v3_and_below": [
            {"name": t.name, "results_by_partition": [{"partition_index": p, "partition_error_code": error} for p in t.partitions]}
            for t in topics
        ]}

    if broker.authorizer is not None:
        # v4 and later come from other brokers (KIP-890's verification), earlier ones from producers.
        if version >= 4 and not broker.authorized_on_cluster(ctx, AclOperation.CLUSTER_ACTION):
            return failed(ErrorCode.cluster_authorization_failed)
        if version < 4 and not _may_write_txn(broker, ctx, ids[0]):
            return failed(ErrorCode.transactional_id_authorization_failed)
    error = next((e for e in [await broker.transactions.coordinator_error(i) for i in ids] if e), None)
    if error:
        return failed(error)
    errors = _partition_errors(broker, ctx, topics)
    coordinator = broker.transactions.coordinator
    return await broker.transactions.call(
        None, lambda token: coordinator.add_partitions_to_txn(version, request, token, errors), failed)


@handles(25)
async def handle_add_offsets_to_txn(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    # The group's coordinator may be another broker: only the partition of its offsets matters here.
    def failed(error: ErrorCode) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error}

    if broker.authorizer is not None:
        if not _may_write_txn(broker, ctx, request.transactional_id):
            return failed(ErrorCode.transactional_id_authorization_failed)
        if not broker.authorized(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
            return failed(ErrorCode.group_authorization_failed)
    error = await broker.transactions.coordinator_error(request.transactional_id)
    if error:
        return failed(error)
    coordinator = broker.transactions.coordinator
    group_partition = broker.groups.coordinator.partition_for(request.group_id)
    return await broker.transactions.call(
        request.transactional_id,
        lambda token: coordinator.add_offsets_to_txn(ctx.api_version, request, token, group_partition), failed,
    )


@handles(26)
async def handle_end_txn(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if broker.authorizer is not None and not _may_write_txn(broker, ctx, request.transactional_id):
        return _init_error(ErrorCode.transactional_id_authorization_failed)
    error = await broker.transactions.coordinator_error(request.transactional_id)
    if error:
        return _init_error(error)
    coordinator = broker.transactions.coordinator
    return await broker.transactions.call(
        request.transactional_id, lambda token: coordinator.end_txn(ctx.api_version, request, token), _init_error)


@handles(65)
async def handle_describe_transactions(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = broker.transactions.coordinator
    if broker.authorizer is None:
        return coordinator.describe_transactions(ctx.api_version, request)
    # As Kafka: DESCRIBE on each transactional id, and of its partitions only the topics the principal may describe.
    ids = list(request.transactional_ids)
    describable = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, ids)
    response = coordinator.describe_transactions(
        ctx.api_version, dataclasses.replace(request, transactional_ids=tuple(i for i in ids if i in describable)))
    described = iter(response["transaction_states"])
    states = []
    for transactional_id in ids:
        if transactional_id not in describable:
            states.append(transaction_state_error(transactional_id, ErrorCode.transactional_id_authorization_failed))
            continue
        state = next(described)
        topics = state["topics"]
        visible = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, (t["topic"] for t in topics))
        states.append({**state, "topics": [t for t in topics if t["topic"] in visible]})
    return {**response, "transaction_states": states}


@handles(66)
async def handle_list_transactions(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    response = broker.transactions.coordinator.list_transactions(ctx.api_version, request)
    if broker.authorizer is not None:
        # As Kafka: only the transactional ids the principal may describe.
        states = response["transaction_states"]
        describable = broker.authorized_names(
            ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, (t["transactional_id"] for t in states))
        response["transaction_states"] = [t for t in states if t["transactional_id"] in describable]
    return response


def _producers_of(broker: Broker, topic: str, index: int) -> dict[str, Any]:
    result: dict[str, Any] = {"partition_index": index, "error_code": ErrorCode.none, "error_message": None, "active_producers": []}
    topic_image = broker.image.topics.get(topic)
    if topic_image is None or index not in topic_image.partitions:
        return {**result, "error_code": ErrorCode.unknown_topic_or_partition}
    log = broker.replicas.get(topic, index)
    if log is None or topic_image.partitions[index].leader != broker.node_id:
        return {**result, "error_code": ErrorCode.not_leader_or_follower}
    result["active_producers"] = [
        {
            "producer_id": p.producer_id, "producer_epoch": p.epoch, "last_sequence": p.last_seq,
            "last_timestamp": p.last_timestamp, "coordinator_epoch": p.coordinator_epoch,
            "current_txn_start_offset": -1 if p.current_txn_first_offset is None else p.current_txn_first_offset,
        }
        for p in log.producers.producers.values()
    ]
    return result


@handles(61)
async def handle_describe_producers(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    readable = broker.authorized_names(ctx, AclOperation.READ, ResourceType.TOPIC, (t.name for t in request.topics))
    denied: dict[str, Any] = {"error_code": ErrorCode.topic_authorization_failed, "error_message": None, "active_producers": []}
    topics = [
        {"name": t.name, "partitions": [_producers_of(broker, t.name, p) if t.name in readable else {"partition_index": p, **denied}
                                        for p in t.partition_indexes]}
        for t in request.topics
    ]
    return {"throttle_time": 0, "topics": topics}
