"""WriteTxnMarkers (27): a transaction coordinator's COMMIT or ABORT markers, appended by
this broker as the leader of each partition, as Kafka's KafkaApis and ReplicaManager
do. A marker in `__consumer_offsets` also ends the transaction's pending offsets in the
group coordinator here."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from kio.schema.errors import ErrorCode

from ..broker.group_runtime import GroupRuntime
from ..broker.replica_manager import ReplicaManager
from ..broker.txn_marker_channel import MarkerErrors
from ..coordinator.txn_marker_queue import MarkerEntry
from ..coordinator.txn_markers import CONSUMER_OFFSETS_TOPIC, MarkerRequest
from ..log.manager import TopicPartition
from ..log.partition import LogError
from ..metadata.acls import AclOperation
from ..metadata.manager import MetadataManager
from ..wire.records import CONTROL_ABORT, CONTROL_COMMIT, encode_control_batch
from .context import Broker, RequestContext
from .registry import handles

log = logging.getLogger(__name__)


async def write_markers(
    replicas: ReplicaManager, metadata: MetadataManager, groups: GroupRuntime, entries: list[MarkerEntry],
) -> MarkerErrors:
    """Appends each entry's marker to its partitions here, then waits until each is
    replicated to the ISR (as Kafka appends markers with acks=-1): the error of each
    partition."""
    errors: MarkerErrors = {}
    appended: list[tuple[int, TopicPartition, int, int]] = []
    for entry in entries:
        marker = entry.marker
        results = errors.setdefault(marker.producer_id, {})
        for topic, partition in entry.partitions:
            error, offset = await _write_marker(replicas, metadata, marker, topic, partition)
            results[(topic, partition)] = error
            if error is not ErrorCode.none:
                continue
            if topic == CONSUMER_OFFSETS_TOPIC:
                await groups.complete_transaction(partition, marker.producer_id, marker.commit)
            partition_log = replicas.get(topic, partition)
            assert partition_log is not None
            appended.append((marker.producer_id, TopicPartition(topic, partition), offset,
                             partition_log.config.min_insync_replicas))
    deadline = anyio.current_time() + replicas.config.int("request.timeout.ms") / 1000
    for producer_id, tp, offset, min_insync_replicas in appended:
        remaining = max(0.0, deadline - anyio.current_time())
        error = await replicas.wait_for_replication(tp, offset, remaining, min_insync_replicas)
        if error is not ErrorCode.none:
            log.info("Marker of producer %d for %s not replicated: %s", producer_id, tp, error.name)
            errors[producer_id][(tp.topic, tp.partition)] = error
    return errors


async def _write_marker(
    replicas: ReplicaManager, metadata: MetadataManager, marker: MarkerRequest, topic: str, partition: int,
) -> tuple[ErrorCode, int]:
    """Appends the marker (as the partition's leader): its error, and the offset after it."""
    partition_log = replicas.get(topic, partition)
    topic_image = metadata.image.topics.get(topic)
    partition_image = topic_image.partitions.get(partition) if topic_image is not None else None
    if partition_log is None or partition_image is None:
        return ErrorCode.unknown_topic_or_partition, -1
    state = replicas.partition(TopicPartition(topic, partition))
    if partition_image.leader != replicas.node_id or (state is not None and not state.is_leader):
        return ErrorCode.not_leader_or_follower, -1
    if state is not None and state.under_min_isr(partition_log.config.min_insync_replicas):
        return ErrorCode.not_enough_replicas, -1
    batch = encode_control_batch(
        CONTROL_COMMIT if marker.commit else CONTROL_ABORT, offset=partition_log.next_offset,
        timestamp=replicas.clock.wall_ms(), producer_id=marker.producer_id, producer_epoch=marker.producer_epoch,
        coordinator_epoch=marker.coordinator_epoch,
    )
    try:
        await replicas.append(topic, partition, partition_log, batch, from_client=False)
    except LogError as e:
        log.info("Marker of producer %d for %s-%d refused: %s", marker.producer_id, topic, partition, e.message)
        return e.code, -1
    return ErrorCode.none, partition_log.next_offset


@handles(27)
async def handle_write_txn_markers(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    # As Kafka: a transaction coordinator's request, which ALTER on the cluster also allows.
    if broker.authorizer is not None and not (broker.authorized_on_cluster(ctx, AclOperation.ALTER)
                                              or broker.authorized_on_cluster(ctx, AclOperation.CLUSTER_ACTION)):
        return {"markers": [
            {"producer_id": m.producer_id, "topics": [
                {"name": t.name, "partitions": [
                    {"partition_index": p, "error_code": ErrorCode.cluster_authorization_failed} for p in t.partition_indexes]}
                for t in m.topics]}
            for m in request.markers]}
    entries = [
        MarkerEntry(
            # The request names no transactional id: the marker is known by its producer id.
            MarkerRequest("", m.producer_id, m.producer_epoch, m.coordinator_epoch, m.transaction_result, ()),
            tuple((t.name, p) for t in m.topics for p in t.partition_indexes),
        )
        for m in request.markers
    ]
    errors = await write_markers(broker.replicas, broker.metadata, broker.groups, entries)
    markers = []
    for entry in entries:
        topics: dict[str, list[dict[str, Any]]] = {}
        for (topic, partition), error in errors[entry.marker.producer_id].items():
            if (topic, partition) in entry.partitions:
                topics.setdefault(topic, []).append({"partition_index": partition, "error_code": error})
        markers.append({"producer_id": entry.marker.producer_id,
                        "topics": [{"name": name, "partitions": results} for name, results in topics.items()]})
    return {"markers": markers}
