import struct
import uuid
from dataclasses import replace

import pytest

from kafkapy.coordinator.records.consumer_offsets import (
    ClassicMemberMetadata,
    ClassicProtocol,
    ConsumerGroupCurrentMemberAssignmentKey,
    ConsumerGroupCurrentMemberAssignmentValue,
    ConsumerGroupMemberMetadataKey,
    ConsumerGroupMemberMetadataValue,
    ConsumerGroupMetadataKey,
    ConsumerGroupMetadataValue,
    ConsumerGroupPartitionMetadataKey,
    ConsumerGroupPartitionMetadataValue,
    ConsumerGroupTargetAssignmentMemberKey,
    ConsumerGroupTargetAssignmentMemberValue,
    ConsumerGroupTargetAssignmentMetadataKey,
    ConsumerGroupTargetAssignmentMetadataValue,
    GroupMetadataKey,
    GroupMetadataValue,
    MemberMetadata,
    OffsetCommitKey,
    OffsetCommitValue,
    PartitionMetadata,
    TopicMetadata,
    TopicPartition,
    TopicPartitions,
    decode_offsets_key,
    decode_offsets_value,
    encode_offsets_key,
    encode_offsets_value,
)
from kafkapy.coordinator.records.framing import UnknownRecordType, UnknownRecordVersion
from kafkapy.coordinator.records.transaction_state import (
    TransactionLogKey,
    TransactionLogValue,
    TransactionTopicPartitions,
    decode_transaction_log_key,
    decode_transaction_log_value,
    encode_transaction_log_key,
    encode_transaction_log_value,
)

TOPIC_ID = uuid.UUID("6f1c3a52-8d4e-4b7a-9c2d-0e5f7a9b1c3d")

OFFSET_COMMIT_KEY = OffsetCommitKey(group="g", topic="t", partition=0)
OFFSET_COMMIT = OffsetCommitValue(offset=5, leader_epoch=2, metadata="m", commit_timestamp=7, expire_timestamp=9)
GROUP_METADATA_KEY = GroupMetadataKey(group="g")
MEMBER = MemberMetadata(
    member_id="m1", group_instance_id="i1", client_id="c", client_host="/h",
    rebalance_timeout=300_000, session_timeout=45_000, subscription=b"\x01", assignment=b"",
)
GROUP_METADATA = GroupMetadataValue(
    protocol_type="consumer", generation=1, protocol="range", leader="m1",
    current_state_timestamp=1000, members=(MEMBER,),
)
TRANSACTION_LOG_KEY = TransactionLogKey(transactional_id="tx")
TRANSACTION = TransactionLogValue(
    producer_id=1000, previous_producer_id=-1, next_producer_id=7, producer_epoch=3,
    transaction_timeout_ms=60_000, transaction_status=1,
    transaction_partitions=(TransactionTopicPartitions(topic="t", partition_ids=(0, 2)),),
    transaction_last_update_timestamp_ms=5, transaction_start_timestamp_ms=4,
    client_transaction_version=2,
)
CLASSIC_MEMBER = ClassicMemberMetadata(
    session_timeout_ms=10, supported_protocols=(ClassicProtocol(name="range", metadata=b"\x01"),)
)
ASSIGNMENT = (TopicPartitions(topic_id=TOPIC_ID, partitions=(0, 3)),)

SINGLE_VERSION_RECORDS = [
    (ConsumerGroupMetadataKey(group_id="g"), ConsumerGroupMetadataValue(epoch=4)),
    (
        ConsumerGroupPartitionMetadataKey(group_id="g"),
        ConsumerGroupPartitionMetadataValue(topics=(
            TopicMetadata(
                topic_id=TOPIC_ID, topic_name="t", num_partitions=2,
                partition_metadata=(PartitionMetadata(partition=0, racks=("r1", "r2")),),
            ),
        )),
    ),
    (
        ConsumerGroupMemberMetadataKey(group_id="g", member_id="m"),
        ConsumerGroupMemberMetadataValue(
            instance_id=None, rack_id="r", client_id="c", client_host="h", subscribed_topic_names=("a",),
            subscribed_topic_regex=None, server_assignor="uniform",
        ),
    ),
    (
        ConsumerGroupMemberMetadataKey(group_id="g", member_id="m"),
        ConsumerGroupMemberMetadataValue(
            instance_id="i", rack_id=None, client_id="c", client_host="h", subscribed_topic_names=(),
            subscribed_topic_regex="a.*", rebalance_timeout_ms=5000, server_assignor=None,
            classic_member_metadata=CLASSIC_MEMBER,
        ),
    ),
    (ConsumerGroupTargetAssignmentMetadataKey(group_id="g"), ConsumerGroupTargetAssignmentMetadataValue(assignment_epoch=4)),
    (
        ConsumerGroupTargetAssignmentMemberKey(group_id="g", member_id="m"),
        ConsumerGroupTargetAssignmentMemberValue(topic_partitions=(TopicPartition(topic_id=TOPIC_ID, partitions=(0, 3)),)),
    ),
    (
        ConsumerGroupCurrentMemberAssignmentKey(group_id="g", member_id="m"),
        ConsumerGroupCurrentMemberAssignmentValue(
            member_epoch=4, previous_member_epoch=3, state=0, assigned_partitions=ASSIGNMENT,
            partitions_pending_revocation=(TopicPartitions(topic_id=TOPIC_ID, partitions=(1,)),),
        ),
    ),
]


def version_of(data: bytes) -> int:
    return struct.unpack_from(">h", data)[0]


# Byte-exact encodings, computed by hand from Kafka's schemas.


def test_offset_commit_key_bytes():
    expected = b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x00"
    assert encode_offsets_key(OFFSET_COMMIT_KEY) == expected
    assert decode_offsets_key(expected) == OFFSET_COMMIT_KEY


def test_offset_commit_value_bytes_at_the_versions_kafka_writes():
    without_expiry = replace(OFFSET_COMMIT, expire_timestamp=-1)
    assert encode_offsets_value(without_expiry) == (
        b"\x00\x03"
        + (5).to_bytes(8) + (2).to_bytes(4)  # offset, leader epoch
        + b"\x00\x01m"
        + (7).to_bytes(8)  # commit timestamp
    )
    # Version 1 holds the expire timestamp but no leader epoch.
    assert encode_offsets_value(OFFSET_COMMIT) == (
        b"\x00\x01" + (5).to_bytes(8) + b"\x00\x01m" + (7).to_bytes(8) + (9).to_bytes(8)
    )


def test_group_metadata_bytes():
    assert encode_offsets_key(GROUP_METADATA_KEY) == b"\x00\x02\x00\x01g"
    empty_group = GroupMetadataValue(
        protocol_type="", generation=0, protocol=None, leader=None, current_state_timestamp=-1, members=()
    )
    assert encode_offsets_value(empty_group) == (
        b"\x00\x03" + b"\x00\x00" + b"\x00\x00\x00\x00" + b"\xff\xff" + b"\xff\xff" + b"\xff" * 8 + b"\x00\x00\x00\x00"
    )
    assert encode_offsets_value(GROUP_METADATA) == (
        b"\x00\x03"
        + b"\x00\x08consumer" + (1).to_bytes(4) + b"\x00\x05range" + b"\x00\x02m1" + (1000).to_bytes(8)
        + (1).to_bytes(4)  # one member
        + b"\x00\x02m1" + b"\x00\x02i1" + b"\x00\x01c" + b"\x00\x02/h"
        + (300_000).to_bytes(4) + (45_000).to_bytes(4)
        + b"\x00\x00\x00\x01\x01"  # subscription
        + b"\x00\x00\x00\x00"  # assignment
    )


def test_consumer_group_metadata_bytes():
    key, value = SINGLE_VERSION_RECORDS[0]
    assert encode_offsets_key(key) == b"\x00\x03\x00\x01g"
    assert encode_offsets_value(value) == b"\x00\x00" + (4).to_bytes(4) + b"\x00"


def test_member_metadata_writes_kafkas_presence_byte_before_the_tagged_classic_metadata():
    _, value = SINGLE_VERSION_RECORDS[3]
    classic = (
        (10).to_bytes(4)  # session timeout
        + b"\x02" + b"\x06range" + b"\x02\x01" + b"\x00"  # one protocol: name, metadata, no tags
        + b"\x00"  # no tags
    )
    expected = (
        b"\x00\x00"
        + b"\x02i" + b"\x00" + b"\x02c" + b"\x02h" + b"\x01" + b"\x04a.*" + (5000).to_bytes(4) + b"\x00"
        + b"\x01"  # one tagged field
        + b"\x00" + bytes([len(classic) + 1]) + b"\x01" + classic  # tag 0, size, present
    )
    assert encode_offsets_value(value) == expected
    assert decode_offsets_value(ConsumerGroupMemberMetadataKey(group_id="g", member_id="m"), expected) == value


def test_transaction_log_bytes():
    assert encode_transaction_log_key(TRANSACTION_LOG_KEY) == b"\x00\x00\x00\x02tx"
    head = (1000).to_bytes(8) + (3).to_bytes(2) + (60_000).to_bytes(4) + b"\x01"
    timestamps = (5).to_bytes(8) + (4).to_bytes(8)
    assert encode_transaction_log_value(TRANSACTION, version=0) == (
        b"\x00\x00" + head
        + (1).to_bytes(4) + b"\x00\x01t" + (2).to_bytes(4) + (0).to_bytes(4) + (2).to_bytes(4)
        + timestamps
    )
    empty = replace(TRANSACTION, transaction_partitions=None, transaction_status=0)
    assert encode_transaction_log_value(empty, version=0) == (
        b"\x00\x00" + head[:-1] + b"\x00" + b"\xff\xff\xff\xff" + timestamps
    )
    assert encode_transaction_log_value(TRANSACTION) == (
        b"\x00\x01" + head
        + b"\x02" + b"\x02t" + b"\x03" + (0).to_bytes(4) + (2).to_bytes(4) + b"\x00"
        + timestamps
        + b"\x02"  # two tagged fields (previous producer id is at its default)
        + b"\x01\x08" + (7).to_bytes(8)  # next producer id
        + b"\x02\x02" + (2).to_bytes(2)  # client transaction version
    )


# Round trips.


@pytest.mark.parametrize(
    ("key", "record_type"),
    [(OFFSET_COMMIT_KEY, 1), (GROUP_METADATA_KEY, 2)]
    + [(key, record_type) for (key, _), record_type in zip(SINGLE_VERSION_RECORDS, [3, 4, 5, 5, 6, 7, 8], strict=True)],
)
def test_offsets_key_round_trip(key, record_type):
    data = encode_offsets_key(key)
    assert version_of(data) == record_type
    assert decode_offsets_key(data) == key


def test_offset_commit_key_version_0_is_read():
    assert decode_offsets_key(b"\x00\x00\x00\x01g\x00\x01t\x00\x00\x00\x00") == OFFSET_COMMIT_KEY


@pytest.mark.parametrize(("key", "value"), SINGLE_VERSION_RECORDS)
def test_single_version_value_round_trip(key, value):
    data = encode_offsets_value(value)
    assert version_of(data) == 0
    assert decode_offsets_value(key, data) == value


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, replace(OFFSET_COMMIT, leader_epoch=-1, expire_timestamp=-1)),
        (1, replace(OFFSET_COMMIT, leader_epoch=-1)),
        (2, replace(OFFSET_COMMIT, leader_epoch=-1, expire_timestamp=-1)),
        (3, replace(OFFSET_COMMIT, expire_timestamp=-1)),
        (4, replace(OFFSET_COMMIT, expire_timestamp=-1)),
    ],
)
def test_offset_commit_value_round_trip(version, expected):
    data = encode_offsets_value(OFFSET_COMMIT, version)
    assert version_of(data) == version
    assert decode_offsets_value(OFFSET_COMMIT_KEY, data) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, replace(GROUP_METADATA, current_state_timestamp=-1,
                    members=(replace(MEMBER, group_instance_id=None, rebalance_timeout=-1),))),
        (1, replace(GROUP_METADATA, current_state_timestamp=-1, members=(replace(MEMBER, group_instance_id=None),))),
        (2, replace(GROUP_METADATA, members=(replace(MEMBER, group_instance_id=None),))),
        (3, GROUP_METADATA),
        (4, GROUP_METADATA),
    ],
)
def test_group_metadata_value_round_trip(version, expected):
    data = encode_offsets_value(GROUP_METADATA, version)
    assert version_of(data) == version
    assert decode_offsets_value(GROUP_METADATA_KEY, data) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (0, replace(TRANSACTION, next_producer_id=-1, client_transaction_version=0)),
        (1, TRANSACTION),
    ],
)
def test_transaction_log_value_round_trip(version, expected):
    data = encode_transaction_log_value(TRANSACTION, version)
    assert version_of(data) == version
    assert decode_transaction_log_value(data) == expected
    empty = replace(expected, transaction_partitions=None)
    assert decode_transaction_log_value(encode_transaction_log_value(empty, version)) == empty


def test_transaction_log_key_round_trip():
    assert decode_transaction_log_key(encode_transaction_log_key(TRANSACTION_LOG_KEY)) == TRANSACTION_LOG_KEY


def test_default_value_versions():
    assert version_of(encode_offsets_value(replace(OFFSET_COMMIT, expire_timestamp=-1))) == 3
    assert version_of(encode_offsets_value(OFFSET_COMMIT)) == 1
    assert version_of(encode_offsets_value(GROUP_METADATA)) == 3
    v0_only = replace(TRANSACTION, next_producer_id=-1, client_transaction_version=0)
    assert version_of(encode_transaction_log_value(v0_only)) == 0
    assert version_of(encode_transaction_log_value(TRANSACTION)) == 1


# Tombstones and bad input.


def test_tombstones_decode_to_none():
    assert decode_offsets_value(OFFSET_COMMIT_KEY, None) is None
    assert decode_offsets_value(GROUP_METADATA_KEY, None) is None
    assert decode_transaction_log_value(None) is None


def test_unknown_record_types_are_rejected():
    share_group_metadata_key = b"\x00\x0b\x00\x01g"  # type 11, not known here
    with pytest.raises(UnknownRecordType, match="type 11"):
        decode_offsets_key(share_group_metadata_key)
    with pytest.raises(UnknownRecordType, match="type 1"):
        decode_transaction_log_key(b"\x00\x01\x00\x02tx")


def test_unknown_value_versions_are_rejected():
    with pytest.raises(UnknownRecordVersion, match="OffsetCommitValue has no version 5"):
        decode_offsets_value(OFFSET_COMMIT_KEY, b"\x00\x05" + bytes(30))
    with pytest.raises(UnknownRecordVersion, match="GroupMetadataValue has no version -1"):
        decode_offsets_value(GROUP_METADATA_KEY, b"\xff\xff")
    key, _ = SINGLE_VERSION_RECORDS[0]
    with pytest.raises(UnknownRecordVersion, match="ConsumerGroupMetadataValue has no version 1"):
        decode_offsets_value(key, b"\x00\x01" + bytes(5))
    with pytest.raises(UnknownRecordVersion, match="TransactionLogValue has no version 2"):
        decode_transaction_log_value(b"\x00\x02" + bytes(40))
    with pytest.raises(UnknownRecordVersion):
        encode_offsets_value(OFFSET_COMMIT, version=5)


def test_record_too_short_for_its_version():
    with pytest.raises(ValueError, match="cannot hold its version"):
        decode_offsets_key(b"\x00")


def test_a_foreign_key_is_not_encoded_as_an_offsets_key():
    with pytest.raises(TypeError, match="TransactionLogKey is not a __consumer_offsets key"):
        encode_offsets_key(TRANSACTION_LOG_KEY)
