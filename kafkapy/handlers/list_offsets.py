"""ListOffsets (2): earliest, latest, by timestamp, max timestamp."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..metadata.acls import AclOperation, ResourceType
from .context import Broker, RequestContext
from .fetch import READ_COMMITTED, leader_epoch_error
from .registry import api

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5


def partition_result(index: int, error: ErrorCode, timestamp: int = -1, offset: int = -1, epoch: int = -1) -> dict[str, Any]:
    return {
        "partition_index": index, "error_code": error, "timestamp": timestamp, "offset": offset, "leader_epoch": epoch,
    }


def list_partition(broker: Broker, topic: str, p: Any, isolation: int, replica_id: int = -1) -> dict[str, Any]:
    index = p.partition_index
    topic_image = broker.image.topics.get(topic)
    if topic_image is None or index not in topic_image.partitions:
        return partition_result(index, ErrorCode.unknown_topic_or_partition)
    if fault := broker.faults.partition_error(2, topic, index):
        return partition_result(index, fault)
    partition = topic_image.partitions[index]
    log = broker.replicas.get(topic, index)
    if log is None or partition.leader != broker.node_id:
        return partition_result(index, ErrorCode.not_leader_or_follower)
    epoch_error = leader_epoch_error(getattr(p, "current_leader_epoch", -1), partition.leader_epoch)
    if epoch_error:
        return partition_result(index, epoch_error)
    # A follower (replica id >= 0) asks where the leader's log ends, committed or not.
    upper = log.next_offset if replica_id >= 0 else log.last_stable_offset if isolation == READ_COMMITTED else log.high_watermark
    epoch = partition.leader_epoch
    match p.timestamp:
        case ts if ts == LATEST:
            return partition_result(index, ErrorCode.none, -1, upper, epoch)
        case ts if ts in (EARLIEST, EARLIEST_LOCAL):
            return partition_result(index, ErrorCode.none, -1, log.log_start_offset, epoch)
        case ts if ts == LATEST_TIERED:
            return partition_result(index, ErrorCode.none, -1, -1, -1)
        case ts if ts == MAX_TIMESTAMP:
            found = log.max_timestamp_offset()
        case ts if ts >= 0:
            found = log.offset_for_timestamp(ts, upper)
        case _:
            return partition_result(index, ErrorCode.invalid_request)
    if found is None or found[1] >= upper:
        return partition_result(index, ErrorCode.none, -1, -1, -1)
    return partition_result(index, ErrorCode.none, found[0], found[1], epoch)


@api(2, 1, 11)
async def handle_list_offsets(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    isolation = getattr(request, "isolation_level", 0)
    topics = []
    describable = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, (t.name for t in request.topics))
    for t in request.topics:
        indexes = [p.partition_index for p in t.partitions]
        partitions = []
        for p in t.partitions:
            if t.name not in describable:
                partitions.append(partition_result(p.partition_index, ErrorCode.topic_authorization_failed))
            elif indexes.count(p.partition_index) > 1:
                partitions.append(partition_result(p.partition_index, ErrorCode.invalid_request))
            else:
                partitions.append(list_partition(broker, t.name, p, isolation, request.replica_id))
        topics.append({"name": t.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}
