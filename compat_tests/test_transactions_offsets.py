"""Consume-transform-produce, exactly once: offsets sent to a transaction are committed
with it, or not at all; and they survive a restart while the transaction is open."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from kafkapy.testing.embedded import Broker
from kafkapy.wire.build import build
from kafkapy.wire.protocol import decode_response, encode_request, request_type

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(120)]

INIT_PRODUCER_ID, OFFSET_FETCH, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 22, 9, 25, 26, 28
TIMEOUT_S = 30
SOURCE, SINK, GROUP = "source", "sink", "etl"


@pytest.fixture
def kafkapy() -> Iterator[Broker]:
    with Broker(**{"group.initial.rebalance.delay.ms": 0}) as broker:
        yield broker


class Raw:
    """Requests over a bare connection, for what confluent-kafka does not show."""

    def __init__(self, broker: Broker) -> None:
        self.sock = socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT_S)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        self.correlation_id += 1
        self.sock.sendall(encode_request(build(request_type(api_key, version), body), self.correlation_id))
        (size,) = struct.unpack(">i", self._read(4))
        answered, response = decode_response(self._read(size), api_key, version)
        assert answered == self.correlation_id
        return response

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def committed(self, group_id: str, topic: str, *, require_stable: bool) -> tuple[int, ErrorCode]:
        """(offset, error) of the group's partition 0 of the topic, by OffsetFetch v7."""
        response = self.request(OFFSET_FETCH, 7, {
            "group_id": group_id, "topics": [{"name": topic, "partition_indexes": [0]}], "require_stable": require_stable,
        })
        [partition] = response.topics[0].partitions
        return partition.committed_offset, partition.error_code

    def retried(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        """The request again while the transaction coordinator answers CONCURRENT_TRANSACTIONS."""
        deadline = time.monotonic() + TIMEOUT_S
        while (response := self.request(api_key, version, body)).error_code == ErrorCode.concurrent_transactions:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return response


def create_topics(broker: Broker, *names: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    for future in admin.create_topics([NewTopic(name, 1, 1) for name in names]).values():
        future.result(TIMEOUT_S)


def consumer(broker: Broker) -> Consumer:
    return Consumer({
        "bootstrap.servers": broker.bootstrap_servers, "group.id": GROUP, "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "isolation.level": "read_committed",
    })


def consume(c: Consumer, count: int) -> list[Any]:
    messages: list[Any] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(messages) < count:
        assert time.monotonic() < deadline, f"{len(messages)} of {count} messages"
        message = c.poll(0.5)
        if message is not None:
            assert message.error() is None, message.error()
            messages.append(message)
    return messages


def test_offsets_sent_to_a_transaction_are_committed_with_it_or_not_at_all(kafkapy: Broker):
    create_topics(kafkapy, SOURCE, SINK)
    source = Producer({"bootstrap.servers": kafkapy.bootstrap_servers})
    for i in range(10):
        source.produce(SOURCE, str(i).encode())
    assert source.flush(TIMEOUT_S) == 0
    producer = Producer({"bootstrap.servers": kafkapy.bootstrap_servers, "transactional.id": "etl-1"})
    producer.init_transactions(TIMEOUT_S)
    raw = Raw(kafkapy)
    first = consumer(kafkapy)
    first.subscribe([SOURCE])

    def transform(c: Consumer, count: int) -> list[int]:
        """Consumes and produces the transformed records in a transaction, sends the offsets."""
        messages = consume(c, count)
        producer.begin_transaction()
        for message in messages:
            producer.produce(SINK, message.value() * 2)
        producer.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), TIMEOUT_S)
        return [m.offset() for m in messages]

    assert transform(first, 4) == [0, 1, 2, 3]
    # Pending: a stable fetch is told to retry; the others see what was committed before.
    assert raw.committed(GROUP, SOURCE, require_stable=True) == (-1, ErrorCode.unstable_offset_commit)
    assert raw.committed(GROUP, SOURCE, require_stable=False) == (-1, ErrorCode.none)
    producer.commit_transaction(TIMEOUT_S)
    assert raw.committed(GROUP, SOURCE, require_stable=True) == (4, ErrorCode.none)
    first.close()

    # A new consumer of the group carries on after the committed offsets.
    second = consumer(kafkapy)
    second.subscribe([SOURCE])
    assert transform(second, 3) == [4, 5, 6]
    producer.abort_transaction(TIMEOUT_S)
    assert raw.committed(GROUP, SOURCE, require_stable=True) == (4, ErrorCode.none)
    assert second.committed([TopicPartition(SOURCE, 0)], TIMEOUT_S)[0].offset == 4
    second.close()

    sink = Consumer({"bootstrap.servers": kafkapy.bootstrap_servers, "group.id": "check", "auto.offset.reset": "earliest",
                     "isolation.level": "read_committed"})
    sink.assign([TopicPartition(SINK, 0)])
    assert [m.value() for m in consume(sink, 4)] == [b"00", b"11", b"22", b"33"]
    assert sink.poll(1) is None  # the aborted transaction's records are not read
    sink.close()
    raw.close()


def begin_offsets_transaction(raw: Raw, transactional_id: str, group_id: str) -> tuple[int, int]:
    """A new producer's transaction that AddOffsetsToTxn gave the group's partition: (producer id, epoch)."""
    init = raw.retried(INIT_PRODUCER_ID, 3, {"transactional_id": transactional_id, "transaction_timeout": 60_000,
                                              "producer_id": -1, "producer_epoch": -1})
    assert init.error_code == ErrorCode.none
    added = raw.request(ADD_OFFSETS_TO_TXN, 3, {"transactional_id": transactional_id, "producer_id": init.producer_id,
                                                 "producer_epoch": init.producer_epoch, "group_id": group_id})
    assert added.error_code == ErrorCode.none
    return init.producer_id, init.producer_epoch


def txn_commit(
    raw: Raw, transactional_id: str, group_id: str, producer: tuple[int, int], offset: int, topic: str = SOURCE,
) -> ErrorCode:
    """A TxnOffsetCommit of the offset for partition 0 of the topic (and 9, which does not exist)."""
    response = raw.request(TXN_OFFSET_COMMIT, 3, {
        "transactional_id": transactional_id, "group_id": group_id, "producer_id": producer[0],
        "producer_epoch": producer[1], "generation_id": -1, "member_id": "", "group_instance_id": None,
        "topics": [{"name": topic, "partitions": [
            {"partition_index": 0, "committed_offset": offset, "committed_leader_epoch": -1, "committed_metadata": ""},
            {"partition_index": 9, "committed_offset": offset, "committed_leader_epoch": -1, "committed_metadata": ""},
        ]}],
    })
    errors = {p.partition_index: p.error_code for t in response.topics for p in t.partitions}
    assert errors[9] == ErrorCode.unknown_topic_or_partition  # the topic has one partition
    return errors[0]


def end_txn(raw: Raw, transactional_id: str, producer: tuple[int, int], commit: bool) -> None:
    ended = raw.retried(END_TXN, 3, {"transactional_id": transactional_id, "producer_id": producer[0],
                                      "producer_epoch": producer[1], "committed": commit})
    assert ended.error_code == ErrorCode.none


def test_a_fenced_producer_cannot_commit_offsets(kafkapy: Broker):
    create_topics(kafkapy, SOURCE, SINK)
    raw = Raw(kafkapy)
    zombie = begin_offsets_transaction(raw, "z", "fenced")
    assert txn_commit(raw, "z", "fenced", zombie, 5) == ErrorCode.none
    # A new instance of the producer fences the old one, whose transaction is aborted.
    current = begin_offsets_transaction(raw, "z", "fenced")
    assert current[0] == zombie[0] and current[1] > zombie[1]
    assert txn_commit(raw, "z", "fenced", zombie, 6) == ErrorCode.invalid_producer_epoch
    assert raw.committed("fenced", SOURCE, require_stable=True) == (-1, ErrorCode.none)
    # The same producer id's next transaction commits its own offsets, not the zombie's.
    assert txn_commit(raw, "z", "fenced", current, 7, topic=SINK) == ErrorCode.none
    end_txn(raw, "z", current, commit=True)
    assert raw.committed("fenced", SINK, require_stable=True) == (7, ErrorCode.none)
    assert raw.committed("fenced", SOURCE, require_stable=True) == (-1, ErrorCode.none)
    raw.close()


def test_pending_offsets_and_their_marker_survive_restarts(kafkapy: Broker):
    create_topics(kafkapy, SOURCE)
    raw = Raw(kafkapy)
    producer = begin_offsets_transaction(raw, "r", "restarted")
    assert txn_commit(raw, "r", "restarted", producer, 3) == ErrorCode.none
    raw.close()
    kafkapy.restart()
    raw = Raw(kafkapy)
    assert raw.committed("restarted", SOURCE, require_stable=True) == (-1, ErrorCode.unstable_offset_commit)
    end_txn(raw, "r", producer, commit=True)
    assert raw.committed("restarted", SOURCE, require_stable=True) == (3, ErrorCode.none)
    raw.close()
    kafkapy.restart()
    raw = Raw(kafkapy)
    assert raw.committed("restarted", SOURCE, require_stable=True) == (3, ErrorCode.none)
    raw.close()
