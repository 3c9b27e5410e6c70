"""DeleteRecords (21): moves partitions' log start offsets forward."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..log.partition import LogError
from .context import Broker, RequestContext
from .registry import api

HIGH_WATERMARK = -1


def delete_partition(broker: Broker, topic: str, index: int, offset: int) -> dict[str, Any]:
    topic_image = broker.image.topics.get(topic)
    if topic_image is None or index not in topic_image.partitions:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.unknown_topic_or_partition}
    log = broker.replicas.get(topic, index)
    if log is None or topic_image.partitions[index].leader != broker.node_id:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.not_leader_or_follower}
    if not log.config.delete:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.policy_violation}
    if offset < HIGH_WATERMARK:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.offset_out_of_range}
    try:
        low = log.delete_records_before(log.high_watermark if offset == HIGH_WATERMARK else offset)
    except LogError as e:
        return {"partition_index": index, "low_watermark": -1, "error_code": e.code}
    return {"partition_index": index, "low_watermark": low, "error_code": ErrorCode.none}


@api(21, 0, 2)
async def handle_delete_records(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = [
        {"name": t.name, "partitions": [delete_partition(broker, t.name, p.partition_index, p.offset) for p in t.partitions]}
        for t in request.topics
    ]
    return {"throttle_time": 0, "topics": topics}
