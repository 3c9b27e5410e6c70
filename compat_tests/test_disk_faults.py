"""Disk faults and files going away under a real broker process: a full log directory (a
small tmpfs) goes offline while the other keeps serving, losing nothing acknowledged; the
metadata log's directory filling up halts the broker; a segment deleted while a slow
consumer's response is still being sent from it is sent whole."""

from __future__ import annotations

import datetime
import hashlib
import os
import socket
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32, i32Timedelta, i64

from kafkapy.compat.adapters.base import Record
from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.compat.raw import RawConnection
from kafkapy.log.segment import segment_name
from kafkapy.testing.process import BrokerProcess, wait_until
from kafkapy.wire.protocol import decode_response, encode_request
from kafkapy.wire.records import Record as StoredRecord
from kafkapy.wire.records import crc_ok, decode_records, encode_batch, iter_headers

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



@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at path (a disk that fills up), or the test skipped."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or mounted.returncode}): needs root or CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def grow(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def produce_raw(connection: RawConnection, topic: str, value: bytes) -> tuple[ErrorCode, int]:
    """One record, acks=all: (error code, offset)."""
    response = connection.request(ProduceRequest(
        acks=i16(-1), timeout=i32Timedelta.parse(datetime.timedelta(seconds=10)), topic_data=(TopicProduceData(
            name=TopicName(topic), partition_data=(PartitionProduceData(
                index=i32(0), records=encode_batch([StoredRecord(0, 1000, b"k", value)])),)),),
    ))
    [answer] = response.responses[0].partition_responses
    return answer.error_code, int(answer.base_offset)


def fetch_raw(connection: RawConnection, topic: str, offset: int) -> tuple[ErrorCode, list[tuple[int, bytes | None]]]:
    """(error code, [(offset, value)]) of a fetch from offset."""
    response = connection.request(FetchRequest(
        max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(0), max_bytes=i32(64 << 20),
        forgotten_topics_data=(), topics=(FetchTopic(topic=TopicName(topic), partitions=(FetchPartition(
            partition=i32(0), fetch_offset=i64(offset), partition_max_bytes=i32(64 << 20)),)),),
    ))
    [answer] = response.responses[0].partitions
    data = answer.records or b""
    return answer.error_code, [(r.offset, r.value) for pos, h in iter_headers(data)
                               for r in decode_records(data[pos : pos + h.size], h)]


def fill(connection: RawConnection, topic: str, value_size: int = 32 * 1024) -> tuple[dict[int, bytes], ErrorCode | None]:
    """Produces until the broker refuses (or drops the connection: None); what it acknowledged, by offset."""
    acknowledged: dict[int, bytes] = {}
    for i in range(10_000):
        value = value_of(i)[:32] * (value_size // 32)
        try:
            code, offset = produce_raw(connection, topic, value)
        except (ConnectionError, OSError):
            return acknowledged, None
        if code != ErrorCode.none:
            return acknowledged, code
        acknowledged[offset] = value
    raise AssertionError("the disk never filled up")


def test_a_full_log_directory_goes_offline_the_other_serves_and_nothing_acknowledged_is_lost(tmp_path):
    first = tmp_path / "first"
    with small_tmpfs(tmp_path / "small", "2m") as small:
        broker = BrokerProcess(first, {"log.dirs": f"{first},{small}", "log.flush.interval.messages": 1})
        try:
            broker.start()
            client = ConfluentKafka(broker.bootstrap)
            client.create_topic("full", 1)  # the metadata log is in the first directory: this goes to the second
            client.create_topic("other", 1)
            client.close()
            assert (small / "full-0").is_dir() and (first / "other-0").is_dir()
            with RawConnection(broker.port) as connection:
                acknowledged, refusal = fill(connection, "full")
                assert refusal == ErrorCode.kafka_storage_error and len(acknowledged) > 10

                assert produce_raw(connection, "other", b"still served") == (ErrorCode.none, 0)
                assert fetch_raw(connection, "other", 0) == (ErrorCode.none, [(0, b"still served")])
                assert fetch_raw(connection, "full", 0)[0] == ErrorCode.kafka_storage_error
                assert produce_raw(connection, "full", b"x")[0] == ErrorCode.kafka_storage_error
            assert f"Log directory {small} is offline" in broker.output
            assert broker.stop() == 0, broker.output

            grow(small, "16m")
            broker.start()
            with RawConnection(broker.port) as connection:
                served: dict[int, bytes | None] = {}
                while len(served) < len(acknowledged):
                    code, records = wait_until(lambda: ok_fetch(connection, "full", len(served)), message="full-0 served")
                    assert records, f"acknowledged offsets missing after {len(served)}"
                    served.update(records)
                assert {o: served[o] for o in acknowledged} == acknowledged
                assert fetch_raw(connection, "other", 0) == (ErrorCode.none, [(0, b"still served")])
        finally:
            if broker.process is not None:
                broker.kill()


def ok_fetch(connection: RawConnection, topic: str, offset: int) -> tuple[ErrorCode, list[tuple[int, bytes | None]]] | None:
    answer = fetch_raw(connection, topic, offset)
    return answer if answer[0] == ErrorCode.none else None


def test_the_metadata_log_directory_filling_up_halts_the_broker(tmp_path):
    with small_tmpfs(tmp_path / "small", "2m") as small:
        broker = BrokerProcess(small, {"log.flush.interval.messages": 1})
        try:
            broker.start()
            ConfluentKafka(broker.bootstrap).create_topic("full", 1)
            with RawConnection(broker.port) as connection:
                acknowledged, _ = fill(connection, "full")
            assert broker.process is not None
            status = broker.process.wait(30)
            assert status != 0
            assert f"Halting: log directory {small} holds the metadata log" in broker.output

            grow(small, "16m")
            broker.start()
            with RawConnection(broker.port) as connection:
                _, records = wait_until(lambda: ok_fetch(connection, "full", 0), message="full-0 served")
                served = dict(records)
                while len(served) < len(acknowledged) and records:
                    _, records = fetch_raw(connection, "full", max(served) + 1)
                    served.update(records)
            assert {o: served.get(o) for o in acknowledged} == acknowledged
        finally:
            if broker.process is not None:
                broker.kill()


def test_a_metadata_log_that_cannot_be_written_halts_the_broker_before_it_acknowledges(tmp_path):
    """The disk of the metadata log fills up under something else: the next metadata
    record (a topic config change) cannot be written, so the broker halts, naming the file
    and the error, without answering it; with space again it starts with every change it
    acknowledged."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    def set_retention(admin: Any, ms: int) -> None:
        resource = ConfigResource(ConfigResource.Type.TOPIC, "kept", incremental_configs=[
            ConfigEntry("retention.ms", str(ms), incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([resource], request_timeout=10)[resource].result(timeout=15)

    other = tmp_path / "other"
    with small_tmpfs(tmp_path / "small", "1m") as small:
        # No checkpoint is due while the disk is full: the metadata log is the first to fail.
        quiet = {key: 3_600_000 for key in ("replica.high.watermark.checkpoint.interval.ms",
                                            "log.flush.offset.checkpoint.interval.ms",
                                            "log.flush.start.offset.checkpoint.interval.ms")}
        broker = BrokerProcess(small, {"log.dirs": f"{small},{other}", **quiet})
        try:
            broker.start()
            client = ConfluentKafka(broker.bootstrap)
            client.create_topic("kept", 1)
            filler = small / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
            try:
                with pytest.raises(OSError, match="No space left"):
                    while True:
                        os.write(fd, b"\0" * 4096)
            finally:
                os.close(fd)
            acknowledged = None
            for ms in range(100_000, 100_500):  # the metadata log's last page fills up within these
                try:
                    set_retention(client.admin, ms)
                except Exception:  # noqa: BLE001 - whatever the client says, it is not a success
                    break
                acknowledged = ms
            else:
                raise AssertionError("every config change was acknowledged on a full disk")
            client.close()
            assert broker.process is not None
            assert broker.process.wait(30) != 0
            metadata_log = small / "__cluster_metadata-0" / segment_name(0, ".log")
            assert f"Halting: log directory {small} holds the metadata log" in broker.output
            assert f"{metadata_log}: [Errno 28] No space left on device" in broker.output

            filler.unlink()
            broker.start()
            client = ConfluentKafka(broker.bootstrap)
            try:
                resource = ConfigResource(ConfigResource.Type.TOPIC, "kept")
                config = client.admin.describe_configs([resource], request_timeout=10)[resource].result(timeout=15)
                assert config["retention.ms"].value == str(acknowledged)
            finally:
                client.close()
        finally:
            if broker.process is not None:
                broker.kill()
