"""Produce with acks=all and consume back, with each client and each compression codec."""

from __future__ import annotations

import struct
from collections import defaultdict
from pathlib import Path

import pytest
from clients import CLIENTS, COMPRESSIONS, ConfluentKafka, Record, assert_same_records, end_offsets, keyed_records

# The codec of a v2 batch is in the low bits of its attributes (Kafka's numbering).
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
PARTITIONS = 3


class NotCompressedAsAsked(AssertionError):
    """The batches on disk do not use the codec the producer was configured with."""


def stored_codecs(data_dir: Path, topic: str, partition: int) -> set[int]:
    """The codecs of the batches in a partition's log files, read straight from disk."""
    codecs = set()
    for path in (data_dir / f"{topic}-{partition}").glob("*.log"):
        data = path.read_bytes()
        pos = 0
        # A batch starts: base offset (8 bytes), batch length (4, counting what follows it),
        # leader epoch (4), magic (1), crc (4), attributes (2).
        while pos + 23 <= len(data):
            (batch_length,) = struct.unpack_from(">i", data, pos + 8)
            (attributes,) = struct.unpack_from(">h", data, pos + 21)
            codecs.add(attributes & 0x07)
            pos += 12 + batch_length
    return codecs


def assert_stored_with(data_dir: Path, topic: str, partitions: int, compression: str) -> None:
    """Batches in the asked codec, or uncompressed: producers send a batch as it is when
    compressing would not make it smaller."""
    for partition in range(partitions):
        codecs = stored_codecs(data_dir, topic, partition)
        if CODECS[compression] not in codecs or not codecs <= {CODECS["none"], CODECS[compression]}:
            raise NotCompressedAsAsked(f"partition {partition} holds batches with codecs {codecs}, not {compression}")


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_keyed_records_round_trip(broker, client, topic_name, compression):
    client.create_topic(topic_name, PARTITIONS)
    sent = keyed_records(10_000)

    acked = client.produce(topic_name, sent, compression)

    offsets_by_partition: dict[int, list[int]] = defaultdict(list)
    for r in acked:
        offsets_by_partition[r.partition].append(r.offset)
    assert set(offsets_by_partition) == set(range(PARTITIONS)), "the keys should spread over every partition"
    for partition, offsets in offsets_by_partition.items():
        assert offsets == list(range(len(offsets))), f"offsets of partition {partition} are not consecutive in send order"
    partitions_of_key: dict[bytes | None, set[int]] = defaultdict(set)
    for r in acked:
        partitions_of_key[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partitions_of_key.values()), "records with one key landed in several partitions"

    consumed = client.consume(topic_name, end_offsets(acked))

    assert_same_records(consumed, acked)
    for partition, offsets in offsets_by_partition.items():
        assert [r.offset for r in consumed if r.partition == partition] == offsets, "records not fetched in offset order"
    assert_stored_with(broker.data_dir, topic_name, PARTITIONS, compression)


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize(
    ("producer_class", "consumer_class"), [CLIENTS, CLIENTS[::-1]], ids=lambda cls: cls.name,
)
def test_records_pass_between_clients(broker, topic_name, compression, producer_class, consumer_class):
    """Each client decodes the batches the other one encoded, as the broker stored them."""
    producer, consumer = producer_class(broker.bootstrap), consumer_class(broker.bootstrap)
    producer.create_topic(topic_name, PARTITIONS)

    acked = producer.produce(topic_name, keyed_records(2_000), compression)

    assert_same_records(consumer.consume(topic_name, end_offsets(acked)), acked)


def test_null_keys_and_values_round_trip(client, topic_name):
    client.create_topic(topic_name, 1)
    sent = [
        Record(key=None, value=b"value without key", partition=0),
        Record(key=b"key without value", value=None, partition=0),
        Record(key=b"", value=b"", partition=0),
        Record(key=None, value=b"", partition=0),
    ]

    acked = client.produce(topic_name, sent)
    consumed = client.consume(topic_name, end_offsets(acked))

    assert [r.offset for r in acked] == [0, 1, 2, 3]
    assert [(r.key, r.value) for r in consumed] == [(r.key, r.value) for r in sent]
