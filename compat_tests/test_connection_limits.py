"""What a client can make the broker hold: memory for requests announced and not sent,
connections left idle or not reading, connections beyond the configured limits, and file
descriptors. Each limit with Kafka's key, against a real broker process."""

from __future__ import annotations

import datetime
import resource
import socket
import struct
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.types import TopicName
from kio.static.primitive import i32, i32Timedelta, i64

from kafkapy.compat.adapters.base import Record
from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.compat.raw import RawConnection
from kafkapy.testing.process import BrokerProcess
from kafkapy.wire.framing import recv_frame
from kafkapy.wire.protocol import encode_request
from raw_client import assert_served
from waiting import until

pytestmark = pytest.mark.kafkapy_internals

API_VERSIONS = encode_request(ApiVersionsRequest(client_software_name="compat-tests", client_software_version="1"), correlation_id=1)
# How long a test takes an unanswered request to be one the broker holds back.
UNANSWERED_S = 1.5
IDLE_MS = 1000
IDLE_CLOSED = "idle for longer than connections.max.idle.ms"


@contextmanager
def broker_with(tmp_path: Path, overrides: dict[str, object], **kwargs: object) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path / "data", overrides, **kwargs) as broker:  # type: ignore[arg-type]
        yield broker
        assert broker.process is not None and broker.process.poll() is None, broker.output


def memory_kb(broker: BrokerProcess, field: str) -> int:
    assert broker.process is not None
    for line in Path(f"/proc/{broker.process.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in the broker's /proc status")


def answered_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the response to the ApiVersions just sent arrives within seconds."""
    sock.settimeout(seconds)
    try:
        recv_frame(sock)
        return True
    except TimeoutError:
        return False


def produce_and_consume(broker: BrokerProcess, topic: str, count: int = 50) -> None:
    client = ConfluentKafka(broker.bootstrap)
    client.create_topic(topic, 1)
    records = [Record(key=None, value=f"v{i}".encode()) for i in range(count)]
    client.produce(topic, records)
    assert [r.value for r in client.consume(topic, {0: count})] == [r.value for r in records]


# 1. Frame memory

def test_size_prefixes_alone_do_not_make_the_broker_hold_what_they_announce(tmp_path, topic_name):
    announced = 100 << 20  # socket.request.max.bytes, Kafka's default
    with broker_with(tmp_path, {}) as broker, ExitStack() as hostile:
        before_kb = memory_kb(broker, "VmRSS")
        for _ in range(300):
            sock = hostile.enter_context(socket.create_connection(("127.0.0.1", broker.port)))
            sock.sendall(struct.pack(">i", announced) + b"a few bytes")

        # Accepted after the 300, so served after each of them has been read.
        produce_and_consume(broker, topic_name)

        grown_mb = (memory_kb(broker, "VmHWM") - before_kb) / 1024
        assert grown_mb < 150, f"the broker's peak resident memory grew by {grown_mb:.0f} MB for 300 announced frames"


def test_queued_max_request_bytes_stops_reading_requests_until_memory_is_released(tmp_path):
    limit = 1 << 20
    with broker_with(tmp_path, {"socket.request.max.bytes": limit, "queued.max.request.bytes": limit}) as broker:
        with socket.create_connection(("127.0.0.1", broker.port)) as before:
            before.sendall(API_VERSIONS)
            assert answered_within(before, 30)
            hoarder = socket.create_connection(("127.0.0.1", broker.port))
            hoarder.sendall(struct.pack(">i", limit) + b"the first bytes of a request as large as the pool")
            with socket.create_connection(("127.0.0.1", broker.port)) as bystander:
                bystander.sendall(API_VERSIONS)
                assert not answered_within(bystander, UNANSWERED_S), "read while the pool was exhausted"

                hoarder.close()

                assert answered_within(bystander, 30)


# 2. connections.max.idle.ms

def test_idle_connection_is_closed(tmp_path):
    with broker_with(tmp_path, {"connections.max.idle.ms": IDLE_MS}) as broker, RawConnection(broker.port) as idle:
        assert_served(idle)
        served_at = time.monotonic()

        assert idle.closed_by_broker()
        assert time.monotonic() - served_at >= IDLE_MS / 1000 * 0.9


def test_partly_received_request_counts_as_idle(tmp_path):
    with broker_with(tmp_path, {"connections.max.idle.ms": IDLE_MS}) as broker, RawConnection(broker.port) as stalled:
        stalled.send(API_VERSIONS[:7])

        assert stalled.closed_by_broker()
        until(lambda: IDLE_CLOSED in broker.output, 30, "the broker saying why it closed the connection")


def test_connection_in_use_or_waiting_for_the_broker_is_not_idle(tmp_path, topic_name):
    with broker_with(tmp_path, {"connections.max.idle.ms": IDLE_MS}) as broker, RawConnection(broker.port) as busy:
        ConfluentKafka(broker.bootstrap).create_topic(topic_name, 1)
        # Requests more often than the idle time, for three times the idle time.
        until_s = time.monotonic() + 3 * IDLE_MS / 1000
        while time.monotonic() < until_s:
            assert_served(busy)
            busy.sock.settimeout(IDLE_MS / 1000 / 4)
            with pytest.raises(TimeoutError):
                busy.sock.recv(1)  # nothing arrives, and the connection is not closed meanwhile
        # A fetch the broker holds for twice the idle time, waiting for data, is answered.
        busy.sock.settimeout(30)
        waited = datetime.timedelta(milliseconds=2 * IDLE_MS)
        response = busy.request(FetchRequest(
            max_wait=i32Timedelta.parse(waited), min_bytes=i32(1), max_bytes=i32(1 << 20), forgotten_topics_data=(),
            topics=(FetchTopic(topic=TopicName(topic_name), partitions=(FetchPartition(
                partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(1 << 20)),)),),
        ))
        assert response.responses[0].partitions[0].records in (None, b"")


# 4. A client that stops reading

def test_client_that_stops_reading_a_large_fetch_is_closed_after_the_idle_time(tmp_path, topic_name):
    with broker_with(tmp_path, {"connections.max.idle.ms": IDLE_MS}) as broker:
        client = ConfluentKafka(broker.bootstrap)
        client.create_topic(topic_name, 1)
        value = bytes(500_000)
        client.produce(topic_name, [Record(key=None, value=value) for _ in range(40)])
        with socket.socket() as reader:
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect(("127.0.0.1", broker.port))
            fetch = FetchRequest(
                max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(1), max_bytes=i32(64 << 20), forgotten_topics_data=(),
                topics=(FetchTopic(topic=TopicName(topic_name), partitions=(FetchPartition(
                    partition=i32(0), fetch_offset=i64(0), partition_max_bytes=i32(64 << 20)),)),),
            )
            reader.sendall(encode_request(fetch, correlation_id=1))

            # This connection's own closing: the producer's connections go idle too.
            closed = f"127.0.0.1:{reader.getsockname()[1]}: {IDLE_CLOSED}"
            until(lambda: closed in broker.output, 30, "the broker closing the connection that stopped reading")

            received = 0
            reader.settimeout(30)
            while chunk := reader.recv(1 << 20):
                received += len(chunk)
            assert received < 40 * len(value), "the whole response went out: the connection was not cut"
        assert_served(RawConnection(broker.port))


# 3. max.connections, max.connections.per.ip, max.connections.per.ip.overrides

def test_connection_over_max_connections_per_ip_is_closed_at_once(tmp_path):
    with broker_with(tmp_path, {"max.connections.per.ip": 2}) as broker:
        first, second = RawConnection(broker.port), RawConnection(broker.port)
        assert_served(first)
        assert_served(second)
        with RawConnection(broker.port) as third:
            assert third.closed_by_broker()
        until(lambda: "Rejected connection from 127.0.0.1" in broker.output, 30, "the rejection logged")
        first.sock.close()
        with RawConnection(broker.port) as replacing:
            assert_served(replacing)
        assert_served(second)
        second.sock.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_max_connections_per_ip_overrides_apply_to_their_address(tmp_path, host):
    with broker_with(tmp_path, {"max.connections.per.ip": 0, "max.connections.per.ip.overrides": f"{host}:2,192.0.2.1:5"}) as broker:
        with RawConnection(broker.port) as first, RawConnection(broker.port) as second, RawConnection(broker.port) as third:
            assert_served(first)
            assert_served(second)
            assert third.closed_by_broker()


def test_connection_over_max_connections_waits_until_one_closes(tmp_path):
    with broker_with(tmp_path, {"max.connections": 2}) as broker:
        first, second = RawConnection(broker.port), RawConnection(broker.port)
        assert_served(first)
        assert_served(second)
        with socket.create_connection(("127.0.0.1", broker.port)) as waiting:
            waiting.sendall(API_VERSIONS)
            assert not answered_within(waiting, UNANSWERED_S), "served beyond max.connections"

            first.sock.close()

            assert answered_within(waiting, 30)
        second.sock.close()


# 5. Out of file descriptors

def test_accepting_recovers_after_running_out_of_file_descriptors(tmp_path):
    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    with broker_with(tmp_path, {}, preexec_fn=few_descriptors) as broker, ExitStack() as connections:
        for _ in range(500):
            sock = connections.enter_context(socket.create_connection(("127.0.0.1", broker.port)))
            sock.sendall(API_VERSIONS)
            if not answered_within(sock, UNANSWERED_S):
                break
        else:
            pytest.fail("500 connections were all served under a limit of 128 descriptors")
        until(lambda: "Accepting connections failed (EMFILE)" in broker.output, 30, "the broker out of descriptors")

        connections.close()

        with RawConnection(broker.port) as after:
            assert_served(after)
