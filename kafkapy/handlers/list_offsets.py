"""ListOffsets (2): earliest, latest, by timestamp, max timestamp; and version 0's list of
offsets before a time, answered from the segments' base offsets and modification times
as Kafka 3.9 did."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..log.partition import PartitionLog
from ..metadata.acls import AclOperation, ResourceType
from .context import Broker, RequestContext
from .fetch import READ_COMMITTED, leader_epoch_error
from .registry import handles

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
DEBUGGING_REPLICA_ID = -2
"""A replica id that may read a follower's log (Kafka's tools), where others need the leader's."""


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


def legacy_offsets_before(log: PartitionLog, timestamp: int, max_num_offsets: int, now_ms: int) -> list[int]:
    """Version 0's answer: up to `max_num_offsets` offsets, largest first, each the first
    offset of a segment last modified at or before `timestamp` (the log end offset
    counting as modified now); LATEST starts from the log end, EARLIEST from the log start.
    Segment boundaries are all the precision version 0 ever had."""
    points = [(max(segment.base_offset, log.log_start_offset), segment.last_modified_ms()) for segment in log.segments]
    if log.segments[-1].size > 0:
        points.append((log.next_offset, now_ms))
    if timestamp == LATEST:
        start = len(points) - 1
    elif timestamp == EARLIEST:
        start = 0
    else:
        start = next((i for i in range(len(points) - 1, -1, -1) if points[i][1] <= timestamp), -1)
    chosen = [points[i][0] for i in range(start, start - min(max_num_offsets, start + 1), -1)]
    return sorted(chosen, reverse=True)


def list_partition_v0(broker: Broker, topic: str, p: Any, replica_id: int) -> dict[str, Any]:
    index = p.partition_index
    result: dict[str, Any] = {"partition_index": index, "error_code": ErrorCode.none, "old_style_offsets": []}
    if p.timestamp < EARLIEST:
        # Only LATEST and EARLIEST existed when version 0 was current.
        return {**result, "error_code": ErrorCode.unsupported_version}
    topic_image = broker.image.topics.get(topic)
    if topic_image is None or index not in topic_image.partitions:
        return {**result, "error_code": ErrorCode.unknown_topic_or_partition}
    if fault := broker.faults.partition_error(2, topic, index):
        return {**result, "error_code": fault}
    log = broker.replicas.get(topic, index)
    if log is None or (replica_id != DEBUGGING_REPLICA_ID and topic_image.partitions[index].leader != broker.node_id):
        return {**result, "error_code": ErrorCode.not_leader_or_follower}
    offsets = legacy_offsets_before(log, p.timestamp, p.max_num_offsets, broker.clock.wall_ms())
    if replica_id == -1:
        # A consumer sees no offset past the high watermark: the high watermark stands in
        # for those above it.
        high_watermark = log.high_watermark
        if any(offset > high_watermark for offset in offsets):
            offsets = [high_watermark, *(offset for offset in offsets if offset <= high_watermark)]
    return {**result, "old_style_offsets": offsets}


@handles(2)
async def handle_list_offsets(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if ctx.api_version == 0:
        return _handle_list_offsets_v0(broker, ctx, request)
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


def _handle_list_offsets_v0(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    describable = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, (t.name for t in request.topics))
    allowed = [t for t in request.topics if t.name in describable]
    denied = [t for t in request.topics if t.name not in describable]
    topics = [{"name": t.name, "partitions": [list_partition_v0(broker, t.name, p, request.replica_id) for p in t.partitions]}
              for t in allowed]
    topics += [{"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": ErrorCode.topic_authorization_failed}
                                               for p in t.partitions]} for t in denied]
    return {"topics": topics}
