"""The Raft core's messages in Kafka's wire form, and back: pure translation, no I/O.

Each message of `messages.py` becomes the kio entity of the KRaft API Kafka 4.x
controllers speak to each other, at the highest version both kio and Kafka 4.0 have:
Vote v2 (KIP-996 pre-vote), BeginQuorumEpoch v1, EndQuorumEpoch v1 (KIP-853 endpoints)
Fetch v18 (replica_state naming the fetching replica, and its high watermark) and FetchSnapshot v1 (KIP-630,
whose bytes are the leader's `.checkpoint` file, sliced at any position). The single partition is
`__cluster_metadata`-0; Fetch names it by Kafka's fixed metadata topic id.

The core's `correlation` is the request header's correlation id: the shell puts it in
the header when it sends a request and echoes it in the response header. A response
alone does not say everything the core's response holds (a Vote response has no
pre-vote flag; an empty Fetch response no base offset), so decoding a response takes
the request it answers.

Log entries travel as Kafka record batches: each batch of the core's log is one record
batch whose partition leader epoch is the batch's epoch, so batch boundaries survive
the trip; a control entry is a control batch holding Kafka's LeaderChangeMessage
control record. The core's control entry does not say who
led its epoch, so encoding takes `leaders` (epoch -> leader id) and decoding fills it
in from the LeaderChangeMessages it reads.
"""

from __future__ import annotations

import datetime
import io
import struct
import uuid
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from kio.schema.begin_quorum_epoch.v1 import request as bqe_req
from kio.schema.begin_quorum_epoch.v1 import response as bqe_resp
from kio.schema.control_record_type_schema.v0.data import ControlRecordTypeSchema
from kio.schema.end_quorum_epoch.v1 import request as eqe_req
from kio.schema.end_quorum_epoch.v1 import response as eqe_resp
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v18 import request as fetch_req
from kio.schema.fetch.v18 import response as fetch_resp
from kio.schema.fetch_snapshot.v1 import request as snap_req
from kio.schema.fetch_snapshot.v1 import response as snap_resp
from kio.schema.leader_change_message.v0.data import LeaderChangeMessage, Voter
from kio.schema.types import BrokerId, TopicName
from kio.schema.vote.v2 import request as vote_req
from kio.schema.vote.v2 import response as vote_resp
from kio.serial import entity_reader, entity_writer
from kio.static.primitive import Records, i16, i32, i32Timedelta, i64, u16

from ..wire.records import Record, decode_records, encode_batch, iter_headers
from .messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    DivergingEpoch,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Entry,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Request,
    Response,
    SnapshotId,
    VoteRequest,
    VoteResponse,
)

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = 0
METADATA_TOPIC_ID = uuid.UUID(int=1)
"""Kafka's Uuid.METADATA_TOPIC_ID (AAAAAAAAAAAAAAAAAAAAAQ)."""

VOTE, BEGIN_QUORUM_EPOCH, END_QUORUM_EPOCH, FETCH, FETCH_SNAPSHOT = 52, 53, 54, 1, 59
# Fetch v18 carries the follower's high watermark (KIP-1166), so that it learns a new one at once.
API_VERSIONS = {VOTE: 2, BEGIN_QUORUM_EPOCH: 1, END_QUORUM_EPOCH: 1, FETCH: 18, FETCH_SNAPSHOT: 1}
"""The version of each API this node sends, and the only one it answers."""

LEADER_CHANGE = 2
"""ControlRecordType.LEADER_CHANGE."""
_CONTROL_KEY_VERSION = struct.Struct(">h")  # Kafka prefixes the control key's type with its version, 0
_FETCH_MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    """A controller listener of a node, which Kafka 4 sends with BeginQuorumEpoch and
    EndQuorumEpoch so the voters learn where the leader is."""

    name: str
    host: str
    port: int


# -- log entries as record batches ------------------------------------------------


def _entity_bytes(entity: Any) -> bytes:
    out = io.BytesIO()
    entity_writer(type(entity))(out, entity)
    return out.getvalue()


def encode_batches(
    base_offset: int, batches: Iterable[Sequence[Entry]], *, leaders: Mapping[int, int], voters: Sequence[int],
    timestamp: int,
) -> bytes:
    """The core's batches from base_offset as Kafka record batches, one each, so that the
    follower gets the leader's batch boundaries (see raft/log.py)."""
    out = bytearray()
    offset = base_offset
    for batch in batches:
        epoch = batch[0].epoch
        if batch[0].control:
            message = LeaderChangeMessage(
                version=i16(0), leader_id=BrokerId(leaders.get(epoch, -1)),
                voters=tuple(Voter(voter_id=i32(v)) for v in sorted(voters)),
                granting_voters=(),  # the core does not report who granted its votes
            )
            key = _CONTROL_KEY_VERSION.pack(0) + _entity_bytes(ControlRecordTypeSchema(type_=i16(LEADER_CHANGE)))
            records = [Record(offset + i, timestamp, key, _entity_bytes(message)) for i in range(len(batch))]
            out += encode_batch(records, control=True, partition_leader_epoch=epoch)
        else:
            records = [Record(offset + i, timestamp, None, e.value) for i, e in enumerate(batch)]
            out += encode_batch(records, partition_leader_epoch=epoch)
        offset += len(batch)
    return bytes(out)


def decode_batches(
    data: bytes | memoryview, leaders: MutableMapping[int, int] | None = None,
) -> tuple[int | None, list[tuple[Entry, ...]]]:
    """(base offset or None if empty, one tuple of entries per record batch) of Kafka record
    batches. Control records other than LeaderChangeMessage (snapshot markers, KRaft
    versions) are not entries of this log's core and are refused."""
    base: int | None = None
    batches: list[tuple[Entry, ...]] = []
    next_offset = 0
    for position, header in iter_headers(data):
        if base is None:
            base = next_offset = header.base_offset
        if header.base_offset != next_offset:
            raise ValueError(f"batch at offset {header.base_offset} does not follow offset {next_offset - 1}")
        records = decode_records(memoryview(data)[position:position + header.size], header)
        epoch = header.partition_leader_epoch
        if header.is_control:
            for record in records:
                key = record.key or b""
                control_type, _ = entity_reader(ControlRecordTypeSchema)(memoryview(key[_CONTROL_KEY_VERSION.size:]).toreadonly(), 0)
                if control_type.type_ != LEADER_CHANGE:
                    raise ValueError(f"control record of type {control_type.type_} at offset {record.offset}")
                message, _ = entity_reader(LeaderChangeMessage)(memoryview(record.value or b"").toreadonly(), 0)
                if leaders is not None:
                    leaders[epoch] = message.leader_id
            batches.append(tuple(Entry(epoch, b"", control=True) for _ in records))
        else:
            batches.append(tuple(Entry(epoch, r.value or b"") for r in records))
        next_offset = header.next_offset
    return base, batches


# -- requests --------------------------------------------------------------------


def request_to_kafka(
    request: Request, destination: int, *, cluster_id: str | None = None, endpoint: Endpoint | None = None,
) -> Any:
    """The kio request entity for a core request sent to `destination`. `endpoint` is
    this node's controller listener, announced when it leads."""
    endpoints = () if endpoint is None else (endpoint,)
    match request:
        case VoteRequest():
            return vote_req.VoteRequest(cluster_id=cluster_id, voter_id=BrokerId(destination), topics=(vote_req.TopicData(
                topic_name=TopicName(METADATA_TOPIC), partitions=(vote_req.PartitionData(
                    partition_index=i32(METADATA_PARTITION), replica_epoch=i32(request.epoch),
                    replica_id=BrokerId(request.candidate_id), replica_directory_id=None, voter_directory_id=None,
                    last_offset_epoch=i32(request.last_epoch), last_offset=i64(request.last_offset),
                    pre_vote=request.pre_vote),)),))
        case BeginQuorumEpochRequest():
            return bqe_req.BeginQuorumEpochRequest(
                cluster_id=cluster_id, voter_id=BrokerId(destination),
                topics=(bqe_req.TopicData(topic_name=TopicName(METADATA_TOPIC), partitions=(bqe_req.PartitionData(
                    partition_index=i32(METADATA_PARTITION), voter_directory_id=None,
                    leader_id=BrokerId(request.leader_id), leader_epoch=i32(request.epoch)),)),),
                leader_endpoints=tuple(bqe_req.LeaderEndpoint(name=e.name, host=e.host, port=u16(e.port)) for e in endpoints))
        case EndQuorumEpochRequest():
            return eqe_req.EndQuorumEpochRequest(
                cluster_id=cluster_id,
                topics=(eqe_req.TopicData(topic_name=TopicName(METADATA_TOPIC), partitions=(eqe_req.PartitionData(
                    partition_index=i32(METADATA_PARTITION), leader_id=BrokerId(request.leader_id),
                    leader_epoch=i32(request.epoch),
                    preferred_candidates=tuple(eqe_req.ReplicaInfo(candidate_id=BrokerId(c), candidate_directory_id=None)
                                               for c in request.preferred_successors)),)),),
                leader_endpoints=tuple(eqe_req.LeaderEndpoint(name=e.name, host=e.host, port=u16(e.port)) for e in endpoints))
        case FetchRequest():
            return fetch_req.FetchRequest(
                cluster_id=cluster_id,
                replica_state=fetch_req.ReplicaState(replica_id=BrokerId(request.replica_id), replica_epoch=i64(-1)),
                max_wait=i32Timedelta.parse(datetime.timedelta(milliseconds=request.max_wait_ms)),
                min_bytes=i32(0), max_bytes=i32(_FETCH_MAX_BYTES),
                topics=(fetch_req.FetchTopic(topic_id=METADATA_TOPIC_ID, partitions=(fetch_req.FetchPartition(
                    partition=i32(METADATA_PARTITION), current_leader_epoch=i32(request.epoch),
                    fetch_offset=i64(request.fetch_offset), last_fetched_epoch=i32(request.last_fetched_epoch),
                    partition_max_bytes=i32(_FETCH_MAX_BYTES), high_watermark=i64(request.high_watermark)),)),),
                forgotten_topics_data=())
        case FetchSnapshotRequest():
            return snap_req.FetchSnapshotRequest(
                cluster_id=cluster_id, replica_id=BrokerId(request.replica_id), max_bytes=i32(request.max_bytes),
                topics=(snap_req.TopicSnapshot(name=TopicName(METADATA_TOPIC), partitions=(snap_req.PartitionSnapshot(
                    partition=i32(METADATA_PARTITION), current_leader_epoch=i32(request.epoch),
                    snapshot_id=snap_req.SnapshotId(end_offset=i64(request.snapshot_id.offset),
                                                    epoch=i32(request.snapshot_id.epoch)),
                    position=i64(request.position)),)),))
    raise TypeError(f"not a Raft request: {request!r}")


class NotMetadataPartition(ValueError):
    """A request that does not name `__cluster_metadata`-0, the one partition Raft runs."""


def _only(items: Sequence[Any], what: str) -> Any:
    if len(items) != 1:
        raise NotMetadataPartition(f"expected one {what}, got {len(items)}")
    return items[0]


def request_from_kafka(entity: Any, correlation: int) -> Request:
    """The core request for a kio request entity of one of the Raft APIs."""
    if isinstance(entity, vote_req.VoteRequest):
        p = _only(_only(entity.topics, "topic").partitions, "partition")
        return VoteRequest(correlation, p.replica_epoch, p.replica_id, p.last_offset_epoch, p.last_offset, p.pre_vote)
    if isinstance(entity, bqe_req.BeginQuorumEpochRequest):
        p = _only(_only(entity.topics, "topic").partitions, "partition")
        return BeginQuorumEpochRequest(correlation, p.leader_epoch, p.leader_id)
    if isinstance(entity, eqe_req.EndQuorumEpochRequest):
        p = _only(_only(entity.topics, "topic").partitions, "partition")
        return EndQuorumEpochRequest(correlation, p.leader_epoch, p.leader_id,
                                     tuple(c.candidate_id for c in p.preferred_candidates))
    if isinstance(entity, fetch_req.FetchRequest):
        topic = _only(entity.topics, "topic")
        if topic.topic_id != METADATA_TOPIC_ID:
            raise NotMetadataPartition(f"fetch of topic id {topic.topic_id}")
        p = _only(topic.partitions, "partition")
        max_wait_ms = int(entity.max_wait.total_seconds() * 1000)
        return FetchRequest(correlation, p.current_leader_epoch, entity.replica_state.replica_id, p.fetch_offset,
                            p.last_fetched_epoch, max_wait_ms, p.high_watermark)
    if isinstance(entity, snap_req.FetchSnapshotRequest):
        topic = _only(entity.topics, "topic")
        if topic.name != METADATA_TOPIC:
            raise NotMetadataPartition(f"snapshot of topic {topic.name}")
        p = _only(topic.partitions, "partition")
        return FetchSnapshotRequest(correlation, p.current_leader_epoch, entity.replica_id,
                                    SnapshotId(p.snapshot_id.end_offset, p.snapshot_id.epoch), p.position, entity.max_bytes)
    raise TypeError(f"not a Raft request: {type(entity).__name__}")


# -- responses -------------------------------------------------------------------


def response_to_kafka(response: Response, *, leaders: Mapping[int, int], voters: Sequence[int], timestamp: int) -> Any:
    """The kio response entity for a core response (the correlation goes in its header)."""
    match response:
        case VoteResponse():
            return vote_resp.VoteResponse(error_code=ErrorCode.none, topics=(vote_resp.TopicData(
                topic_name=TopicName(METADATA_TOPIC), partitions=(vote_resp.PartitionData(
                    partition_index=i32(METADATA_PARTITION), error_code=response.error,
                    leader_id=BrokerId(response.leader_id), leader_epoch=i32(response.epoch),
                    vote_granted=response.granted),)),))
        case BeginQuorumEpochResponse():
            return bqe_resp.BeginQuorumEpochResponse(error_code=ErrorCode.none, topics=(bqe_resp.TopicData(
                topic_name=TopicName(METADATA_TOPIC), partitions=(bqe_resp.PartitionData(
                    partition_index=i32(METADATA_PARTITION), error_code=response.error,
                    leader_id=BrokerId(response.leader_id), leader_epoch=i32(response.epoch)),)),))
        case EndQuorumEpochResponse():
            return eqe_resp.EndQuorumEpochResponse(error_code=ErrorCode.none, topics=(eqe_resp.TopicData(
                topic_name=TopicName(METADATA_TOPIC), partitions=(eqe_resp.PartitionData(
                    partition_index=i32(METADATA_PARTITION), error_code=response.error,
                    leader_id=BrokerId(response.leader_id), leader_epoch=i32(response.epoch)),)),))
        case FetchResponse():
            diverging = fetch_resp.EpochEndOffset()
            if response.diverging is not None:
                diverging = fetch_resp.EpochEndOffset(epoch=i32(response.diverging.epoch),
                                                      end_offset=i64(response.diverging.end_offset))
            snapshot_id = fetch_resp.SnapshotId()
            if response.snapshot_id is not None:
                snapshot_id = fetch_resp.SnapshotId(end_offset=i64(response.snapshot_id.offset),
                                                    epoch=i32(response.snapshot_id.epoch))
            records = encode_batches(response.base_offset, response.batches, leaders=leaders, voters=voters,
                                     timestamp=timestamp)
            return fetch_resp.FetchResponse(
                throttle_time=i32Timedelta.parse(datetime.timedelta(0)), error_code=ErrorCode.none,
                responses=(fetch_resp.FetchableTopicResponse(topic_id=METADATA_TOPIC_ID, partitions=(fetch_resp.PartitionData(
                    partition_index=i32(METADATA_PARTITION), error_code=response.error,
                    high_watermark=i64(response.high_watermark), log_start_offset=i64(response.log_start_offset),
                    diverging_epoch=diverging, snapshot_id=snapshot_id,
                    current_leader=fetch_resp.LeaderIdAndEpoch(leader_id=BrokerId(response.leader_id),
                                                               leader_epoch=i32(response.epoch)),
                    aborted_transactions=None, records=Records(records)),)),))
        case FetchSnapshotResponse():
            return snap_resp.FetchSnapshotResponse(
                throttle_time=i32Timedelta.parse(datetime.timedelta(0)), error_code=ErrorCode.none,
                topics=(snap_resp.TopicSnapshot(name=TopicName(METADATA_TOPIC), partitions=(snap_resp.PartitionSnapshot(
                    index=i32(METADATA_PARTITION), error_code=response.error,
                    snapshot_id=snap_resp.SnapshotId(end_offset=i64(response.snapshot_id.offset),
                                                     epoch=i32(response.snapshot_id.epoch)),
                    current_leader=snap_resp.LeaderIdAndEpoch(leader_id=BrokerId(response.leader_id),
                                                              leader_epoch=i32(response.epoch)),
                    size=i64(response.size), position=i64(response.position),
                    unaligned_records=Records(response.data)),)),))
    raise TypeError(f"not a Raft response: {response!r}")


def response_from_kafka(entity: Any, request: Request, leaders: MutableMapping[int, int] | None = None) -> Response:
    """The core response for a kio response entity answering `request`. A top-level error
    (the request was refused whole) stands for the partition's."""
    correlation = request.correlation
    top_error = entity.error_code
    if isinstance(entity, fetch_resp.FetchResponse):
        assert isinstance(request, FetchRequest)
        p = _only(_only(entity.responses, "topic").partitions, "partition")
        error = top_error if top_error != ErrorCode.none else p.error_code
        diverging = None
        if p.diverging_epoch.epoch >= 0:
            diverging = DivergingEpoch(p.diverging_epoch.epoch, p.diverging_epoch.end_offset)
        snapshot_id = None
        if p.snapshot_id.end_offset >= 0:
            snapshot_id = SnapshotId(p.snapshot_id.end_offset, p.snapshot_id.epoch)
        base, batches = decode_batches(p.records or b"", leaders)
        return FetchResponse(correlation, error, p.current_leader.leader_epoch, p.current_leader.leader_id,
                             p.high_watermark, p.log_start_offset,
                             request.fetch_offset if base is None else base, tuple(batches), diverging, snapshot_id)
    p = _only(_only(entity.topics, "topic").partitions, "partition")
    error = top_error if top_error != ErrorCode.none else p.error_code
    if isinstance(entity, snap_resp.FetchSnapshotResponse):
        return FetchSnapshotResponse(correlation, error, p.current_leader.leader_epoch, p.current_leader.leader_id,
                                     SnapshotId(p.snapshot_id.end_offset, p.snapshot_id.epoch), p.size, p.position,
                                     bytes(p.unaligned_records or b""))
    if isinstance(entity, vote_resp.VoteResponse):
        assert isinstance(request, VoteRequest)
        return VoteResponse(correlation, error, p.leader_epoch, p.leader_id, p.vote_granted, request.pre_vote)
    if isinstance(entity, bqe_resp.BeginQuorumEpochResponse):
        return BeginQuorumEpochResponse(correlation, error, p.leader_epoch, p.leader_id)
    if isinstance(entity, eqe_resp.EndQuorumEpochResponse):
        return EndQuorumEpochResponse(correlation, error, p.leader_epoch, p.leader_id)
    raise TypeError(f"not a Raft response: {type(entity).__name__}")


def api_key_of(message: Request | Response) -> int:
    match message:
        case VoteRequest() | VoteResponse():
            return VOTE
        case BeginQuorumEpochRequest() | BeginQuorumEpochResponse():
            return BEGIN_QUORUM_EPOCH
        case EndQuorumEpochRequest() | EndQuorumEpochResponse():
            return END_QUORUM_EPOCH
        case FetchSnapshotRequest() | FetchSnapshotResponse():
            return FETCH_SNAPSHOT
    return FETCH
