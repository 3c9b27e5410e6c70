"""Produce (0): validates the request's batches and appends them, one partition at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from kio.schema.errors import ErrorCode

from ..log.manager import TopicPartition
from ..log.partition import LogError
from ..log.upconversion import upconvert
from ..metadata.acls import AclOperation, ResourceType
from ..metadata.controller import INTERNAL_TOPICS
from ..wire.build import ms
from ..wire.compression import Codec
from ..wire.legacy_records import magic_of
from ..wire.records import iter_headers
from .context import Broker, CloseConnection, RequestContext
from .registry import api
from .txn_verification import verify_transactional_batches


def partition_error(index: int, error: ErrorCode, message: str | None = None, record_errors: list[tuple[int, str]] | None = None) -> dict[str, Any]:
    return {
        "index": index, "error_code": error, "base_offset": -1, "log_append_time": -1, "log_start_offset": -1,
        "record_errors": [{"batch_index": i, "batch_index_error_message": m} for i, m in (record_errors or [])],
        "error_message": message,
    }


def request_records_error(version: int, records: bytes | None) -> tuple[ErrorCode, str] | None:
    """Kafka's checks of a produce request's records before they reach the log, from v3 on
    (before, as Kafka, any magic and any number of batches reach the log's validation)."""
    if version < 3:
        return None
    batches = list(iter_headers(records or b""))
    if not batches:
        return ErrorCode.invalid_record, f"Produce requests with version {version} must have at least one record batch per partition"
    header = batches[0][1]
    if header.magic != 2:
        return ErrorCode.invalid_record, f"Produce requests with version {version} are only allowed to contain record batches with magic version 2"
    if version < 7 and header.codec == Codec.ZSTD:
        return ErrorCode.unsupported_compression_type, f"Produce requests with version {version} are not allowed to use ZStandard compression"
    if len(batches) > 1:
        return ErrorCode.invalid_record, f"Produce requests with version {version} are only allowed to contain exactly one record batch per partition"
    return None


async def produce_partition(
    broker: Broker, ctx: RequestContext, topic: str | None, index: int, records: bytes | None, acks: int,
    replication: list[tuple[dict[str, Any], TopicPartition, int, int]],
) -> dict[str, Any]:
    """Appends one partition's batch. An acks=all append joins `replication`, to be answered
    once the high watermark passes it: (its result, partition, required offset, min ISR)."""
    image = broker.image
    if topic is None:
        return partition_error(index, ErrorCode.unknown_topic_id)
    topic_image = image.topics.get(topic)
    if topic_image is None or index not in topic_image.partitions:
        return partition_error(index, ErrorCode.unknown_topic_or_partition)
    if topic in INTERNAL_TOPICS:
        return partition_error(index, ErrorCode.invalid_topic_exception, f"Cannot append to internal topic {topic}")
    if fault := broker.faults.partition_error(0, topic, index):
        return partition_error(index, fault)
    problem = request_records_error(ctx.api_version, records)
    if problem:
        return partition_error(index, *problem)
    partition = topic_image.partitions[index]
    log = broker.replicas.get(topic, index)
    if broker.replicas.offline(TopicPartition(topic, index)):
        return partition_error(index, ErrorCode.kafka_storage_error)
    if log is None or partition.leader != broker.node_id:
        return partition_error(index, ErrorCode.not_leader_or_follower)
    state = broker.replicas.partition(TopicPartition(topic, index))
    min_isr = log.config.min_insync_replicas
    if acks == -1 and state is not None and state.under_min_isr(min_isr):
        return partition_error(index, ErrorCode.not_enough_replicas,
                               f"The size of the current ISR {list(state.isr)} is insufficient to satisfy the min.isr requirement of {min_isr}")
    records = records or b""
    try:
        if ctx.api_version < 3 and magic_of(records) < 2:
            records = upconvert(records, log.config)
        result = await broker.replicas.append(topic, index, log, records)
    except LogError as e:
        return partition_error(index, e.code, e.message, e.record_errors)
    answer = {
        "index": index, "error_code": ErrorCode.none, "base_offset": result.base_offset,
        "log_append_time": result.log_append_time, "log_start_offset": result.log_start_offset,
        "record_errors": [], "error_message": None,
    }
    if acks == -1:
        replication.append((answer, TopicPartition(topic, index), result.last_offset + 1, min_isr))
    return answer


async def await_replication(broker: Broker, waiting: list[tuple[dict[str, Any], TopicPartition, int, int]], timeout_ms: int) -> None:
    """Kafka's DelayedProduce: every acks=all partition of the request waits, within one
    timeout, for the high watermark to pass what it appended; a failure replaces its answer."""
    deadline = anyio.current_time() + max(timeout_ms, 0) / 1000
    for answer, tp, required, min_isr in waiting:
        remaining = max(deadline - anyio.current_time(), 0)
        error = await broker.replicas.wait_for_replication(tp, required, remaining, min_isr)
        if error != ErrorCode.none:
            answer.update(partition_error(answer["index"], error))


@dataclass
class Unauthorized:
    everything: ErrorCode | None
    topics: set[str]


def unauthorized(broker: Broker, ctx: RequestContext, request: Any) -> Unauthorized:
    """As Kafka's handleProduceRequest: WRITE on the transactional id of a transactional
    producer (or every partition fails), then WRITE on each topic."""
    transactional_id = getattr(request, "transactional_id", None)
    if transactional_id is not None and not broker.authorized(
            ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
        return Unauthorized(ErrorCode.transactional_id_authorization_failed, set())
    if ctx.api_version >= 13:
        by_id = (broker.image.topic_by_id(t.topic_id) for t in request.topic_data)
        names = {t.name for t in by_id if t is not None}
    else:
        names = {t.name for t in request.topic_data}
    return Unauthorized(None, names - broker.authorized_names(ctx, AclOperation.WRITE, ResourceType.TOPIC, names))


def transactional_without_id(version: int, request: Any) -> bool:
    """Whether the request carries transactional batches but names no transactional id,
    which Kafka answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED whatever the authorizer (it
    looks at the first batch of each partition, as here)."""
    if version < 3 or request.transactional_id is not None:
        return False
    for topic_data in request.topic_data:
        for data in topic_data.partition_data:
            first = next(iter_headers(data.records or b""), None)
            if first is not None and first[1].magic == 2 and first[1].is_transactional:
                return True
    return False


@api(0, 0, 13)
async def handle_produce(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any] | None:
    acks = request.acks
    responses = []
    replication: list[tuple[dict[str, Any], TopicPartition, int, int]] = []
    failed = False
    if transactional_without_id(ctx.api_version, request):
        denied: Unauthorized | None = Unauthorized(ErrorCode.transactional_id_authorization_failed, set())
    else:
        denied = unauthorized(broker, ctx, request) if broker.authorizer is not None else None
    verification = await verify_transactional_batches(broker, ctx.api_version, request)
    for topic_data in request.topic_data:
        if ctx.api_version >= 13:
            topic_image = broker.image.topic_by_id(topic_data.topic_id)
            name = topic_image.name if topic_image else None
        else:
            name = topic_data.name
        partitions = []
        for data in topic_data.partition_data:
            if acks not in (-1, 0, 1):
                result = partition_error(data.index, ErrorCode.invalid_required_acks)
            elif denied is not None and (denied.everything is not None or name in denied.topics):
                result = partition_error(data.index, denied.everything or ErrorCode.topic_authorization_failed)
            elif (refused := verification.refusal(broker, name, data.index)) is not None:
                result = partition_error(data.index, *refused)
            else:
                result = await produce_partition(broker, ctx, name, data.index, data.records, acks, replication)
            failed = failed or result["error_code"] != ErrorCode.none
            partitions.append(result)
        responses.append({"name": topic_data.name if ctx.api_version < 13 else "", "topic_id": getattr(topic_data, "topic_id", None), "partition_responses": partitions})
    if replication:
        await await_replication(broker, replication, ms(request.timeout))
    if acks == 0:
        if failed:
            # With acks=0 the client hears of an error only through its connection closing.
            raise CloseConnection("produce with acks=0 failed")
        return None
    return {"responses": responses, "throttle_time": 0}
