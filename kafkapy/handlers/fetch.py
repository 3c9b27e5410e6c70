"""Fetch (1): reads whole batches as file ranges; waits for min_bytes, woken as the high
watermark moves (a consumer) or as the leader appends (a follower, which reads up to the
log end and whose fetch position may move the high watermark).

Fetch sessions (KIP-227) are kept for followers (replication/fetch_session.py): their
incremental fetches name, and their answers carry, only the partitions that changed. A
consumer asking for one is told session id 0, which means "fetch sessionless", and its
incremental fetch gets FETCH_SESSION_ID_NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

import anyio
from kio.schema.errors import ErrorCode

from ..log.manager import TopicPartition
from ..log.partition import LogError, PartitionLog
from ..metadata.acls import AclOperation, ResourceType
from ..replication.fetch_session import FINAL_EPOCH, FULL_EPOCH, SESSIONLESS_ID, FetchSession, PartitionKey, SentState
from ..wire.build import ms
from ..wire.protocol import FileSlice
from .context import Broker, RequestContext
from .fetch_down_conversion import FIRST_V2_FETCH_VERSION, down_convert_answers
from .registry import handles

READ_COMMITTED = 1


def partition_error(index: int, error: ErrorCode) -> dict[str, Any]:
    return {
        "partition_index": index, "error_code": error, "high_watermark": -1, "last_stable_offset": -1,
        "log_start_offset": -1, "aborted_transactions": None, "preferred_read_replica": -1, "records": b"",
    }


def leader_epoch_error(requested: int, current: int) -> ErrorCode | None:
    """Kafka's check of a client's idea of the leader epoch (-1 means no opinion)."""
    if requested == -1 or requested == current:
        return None
    return ErrorCode.fenced_leader_epoch if requested < current else ErrorCode.unknown_leader_epoch


def read_partition(
    broker: Broker, topic: str | None, p: Any, isolation: int, limit: int, min_one: bool, topic_id_error: bool,
    replica: tuple[int, int] | None = None, record_position: bool = True,
) -> tuple[dict[str, Any], int]:
    """One partition's part of a fetch; `replica` is (replica id, broker epoch) of a follower's,
    whose position is recorded when `record_position` (its fetch's first read, not the
    reads after a wait: as Kafka, which does not update a follower's fetch state from purgatory)."""
    index = p.partition
    if topic is None:
        return partition_error(index, ErrorCode.unknown_topic_id if topic_id_error else ErrorCode.unknown_topic_or_partition), 0
    topic_image = broker.image.topics.get(topic)
    if topic_image is None or index not in topic_image.partitions:
        return partition_error(index, ErrorCode.unknown_topic_or_partition), 0
    if fault := broker.faults.partition_error(1, topic, index):
        return partition_error(index, fault), 0
    partition = topic_image.partitions[index]
    log = broker.replicas.get(topic, index)
    if broker.replicas.offline(TopicPartition(topic, index)):
        return partition_error(index, ErrorCode.kafka_storage_error), 0
    if log is None or partition.leader != broker.node_id:
        return partition_error(index, ErrorCode.not_leader_or_follower), 0
    epoch_error = leader_epoch_error(getattr(p, "current_leader_epoch", -1), partition.leader_epoch)
    if epoch_error:
        return partition_error(index, epoch_error), 0
    diverging = diverging_epoch(log, getattr(p, "last_fetched_epoch", -1), p.fetch_offset)
    if diverging is not None:
        # KIP-320: the fetcher's log left the leader's before fetch_offset; it truncates first.
        return {**partition_error(index, ErrorCode.none), "high_watermark": log.high_watermark,
                "last_stable_offset": log.last_stable_offset, "log_start_offset": log.log_start_offset,
                "diverging_epoch": {"epoch": diverging[0], "end_offset": diverging[1]}}, 0
    if replica is not None:
        tp = TopicPartition(topic, index)
        # Its position first: the answer then carries the high watermark its fetch may have moved.
        if (record_position and p.fetch_offset <= log.next_offset
                and not broker.replicas.follower_fetched(tp, replica[0], p.fetch_offset, replica[1])):
            return partition_error(index, ErrorCode.not_leader_or_follower), 0
        upper = log.next_offset
    else:
        upper = log.last_stable_offset if isolation == READ_COMMITTED else log.high_watermark
    last_stable = log.last_stable_offset
    try:
        records = log.read(p.fetch_offset, min(p.partition_max_bytes, limit), upper, min_one)
    except LogError as e:
        return partition_error(index, e.code), 0
    except OSError as e:
        return partition_error(index, broker.replicas.storage_failed(TopicPartition(topic, index), log, e, "reading").code), 0
    size = len(records) if records is not None else 0
    aborted = None
    if isolation == READ_COMMITTED and replica is None:
        # The client drops the records of these producers from their first offsets on.
        found = log.aborted_transactions(p.fetch_offset, upper) if records is not None else []
        aborted = [{"producer_id": t.producer_id, "first_offset": t.first_offset} for t in found]
    return {
        "partition_index": index,
        "error_code": ErrorCode.none,
        "high_watermark": log.high_watermark,
        "last_stable_offset": last_stable,
        "log_start_offset": log.log_start_offset,
        "aborted_transactions": aborted,
        "preferred_read_replica": -1,
        "records": records if records is not None else b"",
    }, size


def diverging_epoch(log: PartitionLog, last_fetched_epoch: int, fetch_offset: int) -> tuple[int, int] | None:
    """(epoch, end offset) where the leader's log for the fetcher's last epoch ends, when
    the fetcher's log cannot be a prefix of the leader's (Kafka's Partition.fetchRecords)."""
    if last_fetched_epoch < 0:
        return None
    epoch, end_offset = log.epochs.end_offset_for(last_fetched_epoch, log.next_offset)
    if epoch < last_fetched_epoch or end_offset < fetch_offset:
        return epoch, end_offset
    return None


def replica_of(request: Any, version: int) -> tuple[int, int] | None:
    """(replica id, broker epoch) of a follower's fetch; None for a consumer's."""
    if version >= 15:
        state = request.replica_state
        return (state.replica_id, state.replica_epoch) if state.replica_id >= 0 else None
    replica_id = getattr(request, "replica_id", -1)
    return (replica_id, -1) if replica_id >= 0 else None


def requested_partitions(request: Any, by_topic_id: bool) -> dict[PartitionKey, Any]:
    """The request's partition entries by (topic id, or name before v13; partition)."""
    return {(t.topic_id if by_topic_id else t.topic, p.partition): p for t in request.topics for p in t.partitions}


def forgotten_partitions(request: Any, by_topic_id: bool) -> list[PartitionKey]:
    return [(t.topic_id if by_topic_id else t.topic, index)
            for t in getattr(request, "forgotten_topics_data", ()) for index in t.partitions]


def fetch_session(
    broker: Broker, request: Any, version: int, replica: tuple[int, int] | None, requested: dict[PartitionKey, Any],
) -> FetchSession | ErrorCode | None:
    """The session the fetch opens or continues (KIP-227); None for a sessionless fetch.
    Sessions are kept for followers only, whose fetches name every partition they copy
    from this leader; a consumer asking for one is told session id 0 ("fetch sessionless")."""
    session_id = getattr(request, "session_id", SESSIONLESS_ID)
    epoch = getattr(request, "session_epoch", FINAL_EPOCH)
    sessions = broker.fetch_sessions
    if replica is None or version < 13:
        return ErrorCode.fetch_session_id_not_found if epoch > FULL_EPOCH else None
    now_ms = broker.clock.monotonic_ms()
    if epoch > FULL_EPOCH:
        session = sessions.incremental(session_id, epoch, now_ms)
        if isinstance(session, FetchSession):
            session.update(requested, forgotten_partitions(request, True))
        return session
    if session_id != SESSIONLESS_ID:
        sessions.close(session_id)
    return sessions.create(requested, now_ms) if epoch == FULL_EPOCH else None


@handles(1)
async def handle_fetch(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    version = ctx.api_version
    by_topic_id = version >= 13
    replica = replica_of(request, version)
    requested = requested_partitions(request, by_topic_id)
    session = fetch_session(broker, request, version, replica, requested)
    if isinstance(session, ErrorCode):
        return {"throttle_time": 0, "error_code": session, "session_id": SESSIONLESS_ID, "responses": []}
    incremental = session is not None and getattr(request, "session_epoch", FINAL_EPOCH) > FULL_EPOCH
    partitions = session.partitions if session is not None else requested
    topics: dict[Any, list[tuple[PartitionKey, Any]]] = {}
    for key, p in partitions.items():
        topics.setdefault(key[0], []).append((key, p))
    names: dict[Any, str | None] = {}
    for topic in topics:
        if by_topic_id:
            image_topic = broker.image.topic_by_id(topic)
            names[topic] = image_topic.name if image_topic else None
        else:
            names[topic] = topic
    denied = unauthorized_topics(broker, ctx, replica, names) if broker.authorizer is not None else set()
    isolation = getattr(request, "isolation_level", 0)
    # As Kafka's handleFetchRequest: the broker's fetch.max.bytes bounds what any fetch may
    # ask for, and a fetch never waits for more than it may be given.
    max_bytes = min(getattr(request, "max_bytes", 2**31 - 1), broker.config.int("fetch.max.bytes"))
    min_bytes = min(request.min_bytes, max_bytes)
    # Real time, not the broker's clock: a client's wait is real even when the broker's clock is manual.
    deadline = anyio.current_time() + max(ms(request.max_wait), 0) / 1000
    first_read = True
    while True:
        limit = max_bytes
        min_one = True
        total = 0
        failed = False
        read: list[tuple[Any, list[tuple[PartitionKey, dict[str, Any], int]]]] = []
        for topic, entries in topics.items():
            answers = []
            for key, p in entries:
                if topic in denied:
                    entry, size = partition_error(key[1], ErrorCode.topic_authorization_failed), 0
                else:
                    entry, size = read_partition(broker, names[topic], p, isolation, limit, min_one, by_topic_id, replica, first_read)
                if size:
                    min_one = False
                limit = max(0, limit - size)
                total += size
                failed = failed or entry["error_code"] != ErrorCode.none
                answers.append((key, entry, size))
            read.append((topic, answers))
        first_read = False
        remaining = deadline - anyio.current_time()
        if total >= min_bytes or failed or remaining <= 0 or broker.stopping.is_set():
            break
        release_records(read)
        watched = [TopicPartition(name, key[1]) for topic, entries in topics.items()
                   if (name := names[topic]) is not None for key, _ in entries]
        await broker.replicas.wait_for_append(watched, remaining, log_end=replica is not None)
    if version < FIRST_V2_FETCH_VERSION:
        for entry, index, error in await down_convert_answers(broker, version, read, partitions, replica is not None):
            entry.update(partition_error(index, error))
    responses = []
    for topic, answers in read:
        told = [entry for key, entry, size in answers if _tells(session, incremental, key, entry, size)]
        if told:
            responses.append({"topic": None if by_topic_id else topic, "topic_id": topic if by_topic_id else None,
                              "partitions": told})
    session_id = session.session_id if session is not None else SESSIONLESS_ID
    return {"throttle_time": 0, "error_code": ErrorCode.none, "session_id": session_id, "responses": responses,
            "node_endpoints": []}


def release_records(read: list[tuple[Any, list[tuple[PartitionKey, dict[str, Any], int]]]]) -> None:
    """Lets go of the files that answers not sent after all were holding open."""
    for _, answers in read:
        for _, entry, _ in answers:
            if isinstance(records := entry.get("records"), FileSlice):
                records.release()


def unauthorized_topics(broker: Broker, ctx: RequestContext, replica: tuple[int, int] | None,
                        names: dict[Any, str | None]) -> set[Any]:
    """As Kafka's handleFetchRequest: a follower needs CLUSTER_ACTION on the cluster for
    every partition, a consumer READ on each topic."""
    if replica is not None:
        return set() if broker.authorized_on_cluster(ctx, AclOperation.CLUSTER_ACTION) else set(names)
    readable = broker.authorized_names(ctx, AclOperation.READ, ResourceType.TOPIC, (n for n in names.values() if n is not None))
    return {topic for topic, name in names.items() if name is not None and name not in readable}


def _tells(session: FetchSession | None, incremental: bool, key: PartitionKey, entry: dict[str, Any], size: int) -> bool:
    """Whether the answer carries the partition: always, but in an incremental answer only
    with records, an error, a diverging epoch or offsets the fetcher was not told yet."""
    if session is None:
        return True
    news = size > 0 or entry["error_code"] != ErrorCode.none or "diverging_epoch" in entry
    state: SentState = (entry["high_watermark"], entry["last_stable_offset"], entry["log_start_offset"])
    return session.must_answer(key, news, state) or not incremental
