"""The console tools' client, without a broker: Kafka's partitioner, the range assignor,
the consumer protocol's bytes and error messages."""

import io
import struct

import pytest
from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription as SubscriptionV0
from kio.schema.errors import ErrorCode
from kio.serial import entity_writer

from kafkapy.client import (
    ClientError,
    KafkaError,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
    murmur2,
    parse_address,
    partition_for_key,
    range_assign,
)

# From Kafka's UtilsTest.testMurmur2 (Java's signed ints).
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
# From kafka-python's kafka.partitioner.default.murmur2 (unsigned), for every tail length.
KAFKA_PYTHON_VECTORS = {
    b"": 275646681,
    b"a": 2731586172,
    b"ab": 316155434,
    b"abcd": 2971317748,
    b"key-0": 29210041,
    b"\xff\xfe\x00": 3662153412,
}


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS.items())
def test_murmur2_matches_kafka(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), KAFKA_PYTHON_VECTORS.items())
def test_murmur2_matches_kafka_python(key: bytes, expected: int) -> None:
    assert murmur2(key) & 0xFFFFFFFF == expected


def test_partition_for_key_masks_the_sign_bit_as_kafka_does() -> None:
    # murmur2(b"21") is negative: Kafka's toPositive clears the sign bit, it does not negate.
    assert partition_for_key(b"21", 1000) == (-973932308 & 0x7FFFFFFF) % 1000 == 340
    assert partition_for_key(b"abc", 7) == 479470107 % 7


def test_range_assign_gives_the_first_members_one_more() -> None:
    subscriptions = {"m-b": ["t", "u"], "m-a": ["t", "u"], "m-c": ["t"]}
    assert range_assign(subscriptions, {"t": 7, "u": 3}) == {
        "m-a": {"t": [0, 1, 2], "u": [0, 1]},
        "m-b": {"t": [3, 4], "u": [2]},
        "m-c": {"t": [5, 6]},
    }


def test_range_assign_leaves_extra_members_without_partitions() -> None:
    assert range_assign({"m1": ["t"], "m2": ["t"], "m3": ["t"]}, {"t": 2}) == {"m1": {"t": [0]}, "m2": {"t": [1]}, "m3": {}}


def test_subscription_and_assignment_round_trip() -> None:
    assert decode_subscription(encode_subscription(["b", "a"])) == ["a", "b"]
    assignment = {"orders": [2, 0], "audit": [1]}
    assert decode_assignment(encode_assignment(assignment)) == {"audit": [1], "orders": [0, 2]}
    assert decode_assignment(b"") == {}


def test_subscription_written_by_another_client_version() -> None:
    body = io.BytesIO()
    entity_writer(SubscriptionV0)(body, SubscriptionV0(topics=("t",), user_data=None))
    assert decode_subscription(struct.pack(">h", 0) + body.getvalue()) == ["t"]
    # A version newer than kio's only appends fields: it reads as the newest known.
    newer = struct.pack(">h", 9) + encode_subscription(["t"])[2:] + b"\x00\x00\x00\x07"
    assert decode_subscription(newer) == ["t"]


def test_kafka_error_names_the_code_and_explains_it() -> None:
    error = KafkaError(ErrorCode.unknown_topic_or_partition, "topic 'nope'")
    assert str(error) == "topic 'nope': UNKNOWN_TOPIC_OR_PARTITION (the topic or partition does not exist)"
    assert not error.retriable
    # Kafka's description of the code, when the broker sent no message of its own.
    assert str(KafkaError(ErrorCode.message_too_large, "producing to t-0")) == (
        "producing to t-0: MESSAGE_TOO_LARGE (The request included a message larger than the max message size "
        "the server will accept.)"
    )
    assert str(KafkaError(ErrorCode.invalid_config, "altering", "Unknown topic config name: x")) == (
        "altering: INVALID_CONFIG (Unknown topic config name: x)"
    )
    assert KafkaError(ErrorCode.not_coordinator, "c").retriable
    assert str(KafkaError(32000, "c")) == "c: ERROR_CODE_32000 (an error code this client does not know)"


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:9092") == ("127.0.0.1", 9092)
    assert parse_address("[::1]:9093") == ("::1", 9093)
    with pytest.raises(ClientError, match="HOST:PORT"):
        parse_address("localhost")
