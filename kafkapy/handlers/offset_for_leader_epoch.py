"""OffsetForLeaderEpoch (23): where a leader epoch's part of the log ends."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from .context import Broker, RequestContext
from .fetch import leader_epoch_error
from .registry import handles


def epoch_end(broker: Broker, topic: str, p: Any) -> dict[str, Any]:
    result = {"partition": p.partition, "error_code": ErrorCode.none, "leader_epoch": -1, "end_offset": -1}
    topic_image = broker.image.topics.get(topic)
    if topic_image is None or p.partition not in topic_image.partitions:
        return {**result, "error_code": ErrorCode.unknown_topic_or_partition}
    partition = topic_image.partitions[p.partition]
    log = broker.replicas.get(topic, p.partition)
    if log is None or partition.leader != broker.node_id:
        return {**result, "error_code": ErrorCode.not_leader_or_follower}
    error = leader_epoch_error(getattr(p, "current_leader_epoch", -1), partition.leader_epoch)
    if error:
        return {**result, "error_code": error}
    epoch, end_offset = log.epochs.end_offset_for(p.leader_epoch, log.next_offset)
    return {**result, "leader_epoch": epoch, "end_offset": end_offset}


@handles(23)
async def handle_offset_for_leader_epoch(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    topics = [{"topic": t.topic, "partitions": [epoch_end(broker, t.topic, p) for p in t.partitions]} for t in request.topics]
    return {"throttle_time": 0, "topics": topics}
