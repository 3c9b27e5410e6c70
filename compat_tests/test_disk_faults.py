"""Disk faults and files going away under a real broker process: a segment deleted while a
slow consumer's response is still being sent from it."""

from __future__ import annotations

import datetime
import hashlib
import socket
import struct

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.types import TopicName
from kio.static.primitive import i32, i32Timedelta, i64

from kafkapy.compat.adapters.base import Record
from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.log.segment import segment_name
from kafkapy.testing.process import BrokerProcess, wait_until
from kafkapy.wire.protocol import decode_response, encode_request
from kafkapy.wire.records import crc_ok, decode_records, iter_headers

pytestmark = pytest.mark.kafkapy_internals

_SIZE = struct.Struct(">i")
SEGMENT_BYTES = 256 * 1024
VALUE_SIZE = 4096


def value_of(i: int) -> bytes:
    """A record value that compresses badly and names its record."""
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (VALUE_SIZE // len(seed) + 1))[:VALUE_SIZE]


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 4096))
        if not chunk:
            raise ConnectionError(f"the broker closed the connection after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def test_a_segment_deleted_while_a_slow_consumer_reads_it_is_sent_whole(tmp_path):
    """The consumer's response is still being sent from segment 0 when DeleteRecords and
    retention (file.delete.delay.ms=0) delete it and new partitions open new files: what
    arrives is segment 0's batches, each passing its CRC, not another file's bytes."""
    overrides = {"log.retention.check.interval.ms": 100, "socket.send.buffer.bytes": 4096}
    with BrokerProcess(tmp_path / "data", overrides) as broker:
        client = ConfluentKafka(broker.bootstrap)
        client.create_topic("slow", 1, {"segment.bytes": str(SEGMENT_BYTES), "file.delete.delay.ms": "0"})
        records = 3 * SEGMENT_BYTES // VALUE_SIZE
        per_batch = 8
        for first in range(0, records, per_batch):  # batches well below a segment, so that segments roll
            client.produce("slow", [Record(b"k", value_of(i), partition=0) for i in range(first, first + per_batch)])
        partition_dir = tmp_path / "data" / "slow-0"
        bases = sorted(int(p.name[:-4]) for p in partition_dir.glob("*.log"))
        assert len(bases) >= 3 and bases[0] == 0

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", broker.port))
        try:
            sock.sendall(encode_request(FetchRequest(
                max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(0), max_bytes=i32(8 << 20),
                forgotten_topics_data=(), topics=(FetchTopic(topic=TopicName("slow"), partitions=(FetchPartition(
                    partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(SEGMENT_BYTES)),)),),
            ), 1))
            # A little of the answer: the rest waits in the broker's sendfile, far beyond both buffers.
            (size,) = _SIZE.unpack(recv_exactly(sock, 4))
            started = recv_exactly(sock, 16 * 1024)
            assert size > SEGMENT_BYTES // 2

            assert client.delete_records("slow", 0, bases[1]) == bases[1]
            first_segment = [partition_dir / segment_name(0, ".log"), partition_dir / segment_name(0, ".log.deleted")]
            wait_until(lambda: not any(p.exists() for p in first_segment), message="segment 0 deleted by retention")
            # New files: on a broker that closed segment 0's descriptor, they reuse its number.
            client.create_topic("newcomer", 8)
            client.produce("newcomer", [Record(b"x", b"y" * 1000, partition=p) for p in range(8)])

            frame = started + recv_exactly(sock, size - len(started))
        finally:
            sock.close()
        client.close()

    correlation_id, response = decode_response(frame, 1, 12)
    [partition] = response.responses[0].partitions
    assert (correlation_id, partition.error_code) == (1, ErrorCode.none)
    data = partition.records
    headers = list(iter_headers(data))
    assert headers and headers[0][1].base_offset == 0
    assert all(crc_ok(data, pos, header) for pos, header in headers)
    values = [r.value for pos, h in headers for r in decode_records(data[pos : pos + h.size], h)]
    assert values == [value_of(i) for i in range(len(values))]
    assert len(values) * VALUE_SIZE > SEGMENT_BYTES // 2

