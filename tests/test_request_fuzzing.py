"""Property tests of the request path with hostile requests: every API and version the
broker advertises, built from its entities with hostile field values (negative counts,
long arrays, extreme offsets and timestamps, empty and very long strings, unknown topic
ids), and frames crafted at the wire level (a null where the field is not nullable, a
count that is negative or larger than the frame). Each goes through a real broker's frame
reader, decoder, handler and encoder in this process. Whatever the request, the broker
answers at the request's version or closes that one connection, within a bound (or parks
a request that asked to wait), logs no unexpected error, and still serves a normal
request afterwards."""

from __future__ import annotations

import datetime
import logging
import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode
from kio.static.primitive import i32Timedelta

import kafkapy
from kafkapy.client.admin import AdminClient
from kafkapy.client.groups import GroupsClient
from kafkapy.client.records import RecordsClient
from kafkapy.testing.request_strategies import ADVERTISED, KnownNames, crafted_frames, entities, requests
from kafkapy.testing.request_target import Outcome, RequestTarget
from kafkapy.wire.build import build
from kafkapy.wire.protocol import InvalidRequest, decode_request, encode_request, request_type

TOPIC, GROUP = "fuzzed", "fuzzed-group"
# Requests the handlers must answer in this long, unless they asked to wait longer: a
# hang, not a slow answer on a loaded machine.
BOUND_S = 10.0


def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))


class _Errors(logging.Handler):
    """The broker's ERROR records: an exception a handler or background task did not mean."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("kafkapy"):
            self.seen.append(self.format(record))


@pytest.fixture(scope="module")
def fuzzed():
    errors = _Errors()
    logging.getLogger("kafkapy").addHandler(errors)
    # No wait before a new group's first rebalance: a JoinGroup is answered, not parked.
    with kafkapy.Broker(**{"group.initial.rebalance.delay.ms": 0}) as broker:
        topic_id = _assert_serves(broker)
        with GroupsClient(broker.bootstrap_servers) as groups:
            groups.commit_offsets(GROUP, {(TOPIC, 0): 2})
        known = KnownNames(topics=(TOPIC,), topic_ids=(topic_id,), groups=(GROUP,))
        yield RequestTarget(broker, BOUND_S), known, errors
    logging.getLogger("kafkapy").removeHandler(errors)


@pytest.fixture
def target(fuzzed):
    """The broker, checked after each test: no error logged, and it still serves clients."""
    target, known, errors = fuzzed
    errors.seen.clear()
    yield target, known
    assert errors.seen == []
    _assert_serves(target.broker)


def _assert_serves(broker: kafkapy.Broker) -> uuid.UUID:
    """Over a socket, as any client: the known topic is there (made again if a fuzzed
    DeleteTopics took it) and takes records on each partition. Its id."""
    with AdminClient(broker.bootstrap_servers) as admin:
        if TOPIC not in admin.metadata([TOPIC]).topics:
            admin.create_topic(TOPIC, partitions=3)
        info = admin.topic(TOPIC)
    with RecordsClient(broker.bootstrap_servers) as records:
        for partition in info.partitions:
            assert records.produce(TOPIC, [(b"k", b"v")], partition=partition) == {partition: 1}
    return info.topic_id


def _check(target: RequestTarget, frame: bytes) -> None:
    result = target.send(frame)  # raises Defect on a crash, an unreadable answer or a hang
    if result.outcome is Outcome.ANSWERED:
        assert type(result.response).__version__ == result.version


@pytest.mark.parametrize(("api_key", "version"), ADVERTISED, ids=[f"{k}-v{v}" for k, v in ADVERTISED])
def test_hostile_field_values_of_every_api_and_version(target, api_key, version):
    target, known = target

    @examples(4)
    @given(st.data())
    def each(data):
        request = data.draw(entities(request_type(api_key, version), known))
        _check(target, encode_request(request, 1)[4:])

    each()


@examples(150)
@given(data=st.data())
def test_hostile_field_values_across_apis(target, data):
    target, known = target
    _check(target, encode_request(data.draw(requests(known)), 1)[4:])


@examples(200)
@given(data=st.data())
def test_null_negative_and_overlong_prefixes_answer_or_close(target, data):
    target, known = target
    _check(target, data.draw(crafted_frames(known)))


@examples(100)
@given(data=st.data())
def test_request_streams_through_the_frame_reader(target, data):
    # Whole frames, a cut one, and junk, in one connection's bytes.
    target, known = target
    frames = data.draw(st.lists(st.one_of(requests(known).map(lambda r: encode_request(r, 3)),
                                          crafted_frames(known).map(lambda f: len(f).to_bytes(4, "big") + f)), max_size=3))
    tail = data.draw(st.one_of(st.just(b""), st.binary(max_size=12), st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff"])))
    for result in target.send_stream(b"".join(frames) + tail):
        if result.outcome is Outcome.ANSWERED:
            assert type(result.response).__version__ == result.version


# Regressions: what the fuzzing found, each as it was found.

def _delete_topics_v0(count_bytes: bytes) -> bytes:
    frame = encode_request(request_type(20, 0)(topic_names=(), timeout=i32Timedelta.parse(datetime.timedelta(0))), 1)[4:]
    # The body is the array's int32 count, then the int32 timeout.
    return frame[:-8] + count_bytes + frame[-4:]


@pytest.mark.parametrize("count", [2**31 - 1, 1000, -1])
def test_an_array_count_past_the_frame_or_null_where_not_nullable_closes_the_connection(target, count):
    # kio reserved 8 bytes per declared element before reading one (16 GiB for 2**31 - 1:
    # an abort where that could not be had); a null reached the handler as None.
    target, _ = target
    result = target.send(_delete_topics_v0(struct.pack(">i", count)))
    assert result.outcome is Outcome.CLOSED
    assert ("elements declared" in result.reason) if count > 0 else ("not nullable" in result.reason)
    with pytest.raises(InvalidRequest):
        decode_request(_delete_topics_v0(struct.pack(">i", count)), 20, 0)
    assert target.send(_delete_topics_v0(struct.pack(">i", 0))).outcome is Outcome.ANSWERED


def test_an_error_message_echoing_a_very_long_name_is_cut_to_fit_the_wire(target):
    target, _ = target
    name = "x" * 32693
    request = build(request_type(19, 2), {"topics": [{"name": name, "num_partitions": 1, "replication_factor": 1,
                                                      "assignments": [], "configs": []}], "timeout": 1000, "validate_only": False})
    result = target.send(encode_request(request, 1)[4:])
    assert result.outcome is Outcome.ANSWERED
    (topic,) = result.response.topics
    assert (topic.name, topic.error_code) == (name, ErrorCode.invalid_topic_exception)
    assert len(topic.error_message.encode()) <= 32767 and topic.error_message.endswith("...")


@pytest.mark.parametrize("version", [10, 11, 12])
def test_a_metadata_topic_without_name_nor_id(target, version):
    target, _ = target
    request = build(request_type(3, version), {"topics": [{"name": None, "topic_id": None}], "allow_auto_topic_creation": False,
                                               "include_topic_authorized_operations": False,
                                               "include_cluster_authorized_operations": False})
    result = target.send(encode_request(request, 1)[4:])
    if version < 12:  # names are not nullable in those answers: Kafka refuses the request
        assert result.outcome is Outcome.CLOSED and "can not be null" in result.reason
    else:
        assert result.outcome is Outcome.ANSWERED
        assert [(t.name, t.error_code) for t in result.response.topics] == [(None, ErrorCode.unknown_topic_id)]


def test_a_partition_count_past_kafkas_batch_bound_is_a_policy_violation(target):
    # Placing 2**31 - 1 partitions blocked the event loop.
    target, _ = target
    request = build(request_type(19, 7), {"topics": [{"name": "too-many", "num_partitions": 2**31 - 1, "replication_factor": 1,
                                                      "assignments": [], "configs": []}], "timeout": 1000, "validate_only": False})
    (topic,) = target.send(encode_request(request, 1)[4:]).response.topics
    assert (topic.error_code, topic.error_message) == (ErrorCode.policy_violation, "Unable to perform excessively large batch operation.")
    grow = build(request_type(37, 3), {"topics": [{"name": TOPIC, "count": 2**31 - 1, "assignments": None}], "timeout": 1000,
                                       "validate_only": False})
    (result,) = target.send(encode_request(grow, 1)[4:]).response.results
    assert result.error_code == ErrorCode.policy_violation


def test_a_transaction_not_begun_is_described_with_kafkas_minus_one_start_time(target):
    # Found by the fuzzing: an InitProducerId leaves its transactional id Empty, and Kafka
    # describes that with -1 as the start time, which kio refuses to decode as a timestamp.
    target, _ = target
    init = build(request_type(22, 4), {"transactional_id": "not-begun", "transaction_timeout": 60_000,
                                       "producer_id": -1, "producer_epoch": -1})
    assert target.send(encode_request(init, 1)[4:]).response.error_code == ErrorCode.none
    describe = build(request_type(65, 0), {"transactional_ids": ["not-begun"]})
    result = target.send(encode_request(describe, 1)[4:])
    assert (result.outcome, result.reason) == (Outcome.ANSWERED_BEYOND_KIO, "Cannot parse negative timestamp")
