"""The Raft core's messages through Kafka's wire form and back, bytes included."""

from __future__ import annotations

from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from kafkapy.raft.messages import (
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
from kafkapy.raft.wire import (
    API_VERSIONS,
    METADATA_TOPIC_ID,
    Endpoint,
    api_key_of,
    decode_batches,
    encode_batches,
    request_from_kafka,
    request_to_kafka,
    response_from_kafka,
    response_to_kafka,
)
from kafkapy.wire.protocol import decode_request, decode_response, encode_request, encode_response, peek_header
from kafkapy.wire.records import decode_records, iter_headers, read_header

VOTERS = (1, 2, 3)


def through_bytes_request(request: Request, destination: int = 2) -> tuple[Any, Request]:
    entity = request_to_kafka(request, destination, cluster_id="c1", endpoint=Endpoint("CONTROLLER", "127.0.0.1", 9093))
    frame = encode_request(entity, request.correlation)[4:]
    api_key, version, correlation = peek_header(frame)
    assert (api_key, version, correlation) == (api_key_of(request), API_VERSIONS[api_key], request.correlation)
    _, decoded = decode_request(frame, api_key, version)
    return decoded, request_from_kafka(decoded, correlation)


def through_bytes_response(response: Response, request: Request, leaders: dict[int, int] | None = None) -> tuple[Any, Response]:
    entity = response_to_kafka(response, leaders={1: 1, 2: 3}, voters=VOTERS, timestamp=1234)
    chunks, _ = encode_response(response.correlation, entity)
    frame = b"".join(bytes(c) for c in chunks)[4:]
    api_key = api_key_of(response)
    correlation, decoded = decode_response(frame, api_key, API_VERSIONS[api_key])
    assert correlation == response.correlation
    return decoded, response_from_kafka(decoded, request, leaders)


@pytest.mark.parametrize("pre_vote", [True, False])
def test_vote_round_trip(pre_vote: bool) -> None:
    request = VoteRequest(correlation=7, epoch=5, candidate_id=1, last_epoch=4, last_offset=120, pre_vote=pre_vote)
    entity, back = through_bytes_request(request, destination=3)
    assert back == request
    assert entity.voter_id == 3 and entity.cluster_id == "c1"
    assert entity.topics[0].topic_name == "__cluster_metadata" and entity.topics[0].partitions[0].partition_index == 0
    response = VoteResponse(7, ErrorCode.none, 5, -1, True, pre_vote)
    entity, answer = through_bytes_response(response, request)
    assert answer == response
    assert entity.topics[0].partitions[0].vote_granted is True
    refused = VoteResponse(7, ErrorCode.fenced_leader_epoch, 6, 2, False, pre_vote)
    assert through_bytes_response(refused, request)[1] == refused


def test_begin_quorum_epoch_round_trip() -> None:
    request = BeginQuorumEpochRequest(correlation=3, epoch=9, leader_id=2)
    entity, back = through_bytes_request(request, destination=1)
    assert back == request
    assert entity.voter_id == 1
    assert [(e.name, e.host, e.port) for e in entity.leader_endpoints] == [("CONTROLLER", "127.0.0.1", 9093)]
    response = BeginQuorumEpochResponse(3, ErrorCode.none, 9, 2)
    assert through_bytes_response(response, request)[1] == response


def test_end_quorum_epoch_round_trip() -> None:
    request = EndQuorumEpochRequest(correlation=4, epoch=9, leader_id=2, preferred_successors=(3, 1))
    entity, back = through_bytes_request(request)
    assert back == request
    assert [c.candidate_id for c in entity.topics[0].partitions[0].preferred_candidates] == [3, 1]
    response = EndQuorumEpochResponse(4, ErrorCode.fenced_leader_epoch, 10, -1)
    assert through_bytes_response(response, request)[1] == response


def test_fetch_request_round_trip() -> None:
    request = FetchRequest(correlation=11, epoch=2, replica_id=3, fetch_offset=40, last_fetched_epoch=1, max_wait_ms=500)
    entity, back = through_bytes_request(request, destination=1)
    assert back == request
    assert entity.replica_state.replica_id == 3
    assert entity.topics[0].topic_id == METADATA_TOPIC_ID
    partition = entity.topics[0].partitions[0]
    assert (partition.fetch_offset, partition.last_fetched_epoch, partition.current_leader_epoch) == (40, 1, 2)


def test_fetch_response_carries_each_batch_as_one_record_batch() -> None:
    request = FetchRequest(11, 2, 3, 10, 1, 500)
    # Two batches of one epoch side by side: they stay two, as the leader's log holds them.
    batches = ((Entry(1, b"a"), Entry(1, b"b")), (Entry(1, b"c"),), (Entry(2, b"", control=True),),
               (Entry(2, b"d"), Entry(2, b"e"), Entry(2, b"f")))
    response = FetchResponse(11, ErrorCode.none, epoch=2, leader_id=3, high_watermark=12, log_start_offset=0,
                             base_offset=10, batches=batches)
    leaders: dict[int, int] = {}
    entity, back = through_bytes_response(response, request, leaders)
    assert back == response
    assert leaders == {2: 3}  # from the LeaderChangeMessage
    partition = entity.responses[0].partitions[0]
    assert (partition.current_leader.leader_id, partition.current_leader.leader_epoch) == (3, 2)
    # One record batch per batch, each stamped with its epoch.
    headers = [h for _, h in iter_headers(partition.records)]
    assert [(h.base_offset, h.records_count, h.partition_leader_epoch, h.is_control) for h in headers] == [
        (10, 2, 1, False), (12, 1, 1, False), (13, 1, 2, True), (14, 3, 2, False)]
    assert decode_batches(partition.records) == (10, list(batches))


def test_fetch_response_diverging_and_errors() -> None:
    request = FetchRequest(12, 3, 2, 50, 2, 500)
    diverging = FetchResponse(12, ErrorCode.none, 3, 1, 40, 0, 50, diverging=DivergingEpoch(2, 44))
    entity, back = through_bytes_response(diverging, request)
    assert back == diverging
    assert entity.responses[0].partitions[0].diverging_epoch.end_offset == 44
    fenced = FetchResponse(12, ErrorCode.fenced_leader_epoch, 4, 1, -1, 0, 50)
    assert through_bytes_response(fenced, request)[1] == fenced
    empty = FetchResponse(12, ErrorCode.none, 3, 1, 48, 0, 50)
    assert through_bytes_response(empty, request)[1] == empty
    # Below the leader's log start: the snapshot to fetch first (KIP-630).
    to_snapshot = FetchResponse(12, ErrorCode.none, 3, 1, 48, 60, 50, snapshot_id=SnapshotId(60, 2))
    entity, back = through_bytes_response(to_snapshot, request)
    assert back == to_snapshot
    assert (entity.responses[0].partitions[0].snapshot_id.end_offset, entity.responses[0].partitions[0].snapshot_id.epoch) == (60, 2)


def test_leader_change_record_is_kafkas_layout() -> None:
    data = encode_batches(0, [(Entry(4, b"", control=True),)], leaders={4: 2}, voters=(3, 1, 2), timestamp=99)
    (record,) = decode_records(data, read_header(data))
    # ControlRecordType key: version 0, type 2 (LEADER_CHANGE).
    assert record.key == b"\x00\x00\x00\x02"
    # LeaderChangeMessage v0 (flexible): version, leader id, voters [1, 2, 3], no granting voters.
    assert record.value == (b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x04" + b"\x00\x00\x00\x01\x00"
                            + b"\x00\x00\x00\x02\x00" + b"\x00\x00\x00\x03\x00" + b"\x01" + b"\x00")
    leaders: dict[int, int] = {}
    assert decode_batches(data, leaders) == (0, [(Entry(4, b"", control=True),)])
    assert leaders == {4: 2}


def test_fetch_snapshot_round_trip() -> None:
    request = FetchSnapshotRequest(correlation=21, epoch=5, replica_id=3, snapshot_id=SnapshotId(120, 4), position=64,
                                   max_bytes=1024)
    entity, back = through_bytes_request(request, destination=1)
    assert back == request
    assert (entity.replica_id, entity.max_bytes, entity.cluster_id) == (3, 1024, "c1")
    partition = entity.topics[0].partitions[0]
    assert entity.topics[0].name == "__cluster_metadata" and partition.partition == 0
    assert (partition.snapshot_id.end_offset, partition.snapshot_id.epoch, partition.position) == (120, 4, 64)
    # The data is a slice of the leader's .checkpoint file: not aligned on a batch.
    response = FetchSnapshotResponse(21, ErrorCode.none, 5, 1, SnapshotId(120, 4), size=300, position=64,
                                     data=bytes(range(200)))
    entity, answer = through_bytes_response(response, request)
    assert answer == response
    partition = entity.topics[0].partitions[0]
    assert (partition.size, partition.position, partition.current_leader.leader_id) == (300, 64, 1)
    missing = FetchSnapshotResponse(21, ErrorCode.snapshot_not_found, 6, 2, SnapshotId(120, 4), -1, 64)
    assert through_bytes_response(missing, request)[1] == missing
