"""TLS listeners with real clients (confluent-kafka and kafka-python): produce and consume
over SSL, mutual TLS with the principal taken from the client's certificate, and the
handshakes Kafka refuses: no client certificate where one is required, a broker certificate
the client does not trust. On a real process: plaintext to a TLS listener, TLS to a
plaintext listener, and a peer that never starts its handshake are closed, and the broker
serves on."""

from __future__ import annotations

import socket
import ssl
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError

import kafkapy
from kafkapy.testing.certificates import TestCertificates
from kafkapy.testing.process import BrokerProcess
from waiting import until

pytestmark = pytest.mark.kafkapy_internals

RECORDS = [f"record-{i}".encode() for i in range(20)]
# Names the principal by the certificate's common name, in lower case.
CN_RULE = "RULE:^CN=([^,]*),.*$/$1/L"


@pytest.fixture(scope="module")
def ssl_broker():
    with kafkapy.Broker(security="ssl", group_initial_rebalance_delay_ms=0) as broker:
        yield broker


@pytest.fixture(scope="module")
def mtls_broker():
    with kafkapy.Broker(security="mtls", group_initial_rebalance_delay_ms=0, ssl_principal_mapping_rules=f"{CN_RULE},DEFAULT") as broker:
        yield broker


def confluent_round_trip(settings: dict[str, object], records: list[bytes] = RECORDS, topic: str | None = None) -> list[bytes]:
    """What a consumer reads back of records produced to a new topic (also its group's name)."""
    topic = topic or f"tls-{uuid.uuid4().hex[:8]}"
    producer = Producer(settings)
    for value in records:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    consumer = Consumer({**settings, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    consumed: list[bytes] = []
    try:
        def all_consumed() -> bool:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                consumed.append(message.value())
            return len(consumed) >= len(records)

        until(all_consumed, 30, f"{len(records)} records consumed over TLS", lambda: f"{len(consumed)} consumed")
    finally:
        consumer.close()
    return consumed


def kafka_python_round_trip(settings: dict[str, object], records: list[bytes] = RECORDS) -> list[bytes]:
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(**settings)
    for value in records:
        producer.send(topic, value)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(topic, **settings, group_id=topic, auto_offset_reset="earliest", consumer_timeout_ms=30_000)
    consumed: list[bytes] = []
    try:
        for message in consumer:
            consumed.append(message.value)
            if len(consumed) == len(records):
                break
    finally:
        consumer.close()
    return consumed


def test_confluent_kafka_produces_and_consumes_over_ssl(ssl_broker):
    assert confluent_round_trip(ssl_broker.client_config()) == RECORDS


def test_kafka_python_produces_and_consumes_over_ssl(ssl_broker):
    assert kafka_python_round_trip(ssl_broker.client_config(flavour="kafka-python")) == RECORDS


def test_fetches_larger_than_a_file_piece_arrive_whole(ssl_broker):
    # 3 MB of log: a fetch's file ranges are read and encrypted in 256 KiB pieces.
    records = [bytes([i]) * 100_000 for i in range(30)]
    assert confluent_round_trip(ssl_broker.client_config(), records) == records
    assert kafka_python_round_trip(ssl_broker.client_config(flavour="kafka-python"), records) == records


def test_ssl_without_client_certificates_is_anonymous(ssl_broker):
    producer = Producer(ssl_broker.client_config())
    producer.list_topics(timeout=10)
    # Every client of a broker that asks for no certificate is anonymous (earlier tests' may still be connected).
    assert set(until(lambda: ssl_broker.connected_principals(), 10, "a connection")) == {"User:ANONYMOUS"}


def test_confluent_kafka_over_mutual_tls_has_the_principal_of_its_certificate(mtls_broker):
    settings = mtls_broker.client_config(user="alice")
    assert confluent_round_trip(settings) == RECORDS
    producer = Producer(settings)
    producer.list_topics(timeout=10)
    principals = until(lambda: set(mtls_broker.connected_principals()), 10, "connections")
    assert "User:alice" in principals and "User:ANONYMOUS" not in principals


def test_kafka_python_over_mutual_tls_has_the_principal_of_its_certificate(mtls_broker):
    settings = mtls_broker.client_config(user="Bob", flavour="kafka-python")
    assert kafka_python_round_trip(settings) == RECORDS
    producer = KafkaProducer(**settings)
    try:
        producer.partitions_for("principal-check")
        assert "User:bob" in mtls_broker.connected_principals()
    finally:
        producer.close()


def test_default_mapping_gives_the_subject_in_rfc2253_form():
    with kafkapy.Broker(security="mtls") as broker:
        producer = Producer(broker.client_config(user="carol"))
        producer.list_topics(timeout=10)
        assert until(lambda: broker.connected_principals(), 10, "a connection") == ["User:CN=carol,O=kafkapy test"]


def confluent_connection_errors(settings: dict[str, object]) -> str:
    """What confluent-kafka reports of a client that cannot connect."""
    errors: list[str] = []
    producer = Producer({**settings, "error_cb": lambda e: errors.append(str(e))})
    with pytest.raises(KafkaException):  # a refused handshake fails long before the timeout
        producer.list_topics(timeout=2)
    # Error callbacks are served by poll.
    return " ".join(until(lambda: (producer.poll(0.1), errors)[1], 10, "a reported connection error"))


def handshake_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "TLS handshake from" in r.getMessage() and "failed" in r.getMessage()]


def test_a_client_without_certificate_is_refused_where_one_is_required(mtls_broker, caplog):
    caplog.set_level("INFO", logger="kafkapy.server.tls")
    assert "certificate required" in confluent_connection_errors(mtls_broker.client_config())
    assert until(lambda: handshake_failures(caplog), 10, "the broker refusing the handshake")
    caplog.clear()
    with pytest.raises(KafkaTimeoutError):
        KafkaProducer(**mtls_broker.client_config(flavour="kafka-python"), bootstrap_timeout_ms=2000)
    assert any("certificate" in message for message in until(lambda: handshake_failures(caplog), 10, "a refused handshake"))
    assert "User:ANONYMOUS" not in mtls_broker.connected_principals()


def test_a_client_that_does_not_trust_the_broker_does_not_connect(ssl_broker, tmp_path, caplog):
    caplog.set_level("INFO", logger="kafkapy.server.tls")
    stranger = TestCertificates(tmp_path, name="another CA")
    assert "certificate verify failed" in confluent_connection_errors({**ssl_broker.client_config(), "ssl.ca.location": str(stranger.ca_path)})
    with pytest.raises(KafkaTimeoutError):
        KafkaProducer(**{**ssl_broker.client_config(flavour="kafka-python"), "ssl_cafile": str(stranger.ca_path)},
                      bootstrap_timeout_ms=2000)
    # The client gives up in its handshake, which the broker sees fail.
    assert until(lambda: handshake_failures(caplog), 10, "handshakes the clients abandoned")


@pytest.fixture(scope="module")
def tls_process(tmp_path_factory):
    """A real process with a TLS listener and a plaintext one."""
    certificates = TestCertificates(tmp_path_factory.mktemp("certificates"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tls_port = s.getsockname()[1]
    process = BrokerProcess(tmp_path_factory.mktemp("tls-broker"), {
        "listeners": f"PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:{tls_port}", "ssl.keystore.type": "PEM",
        "ssl.keystore.location": certificates.server(), "kafkapy.ssl.handshake.timeout.ms": 500,
    })
    with process:
        yield process, tls_port, certificates


def tls_client_works(port: int, certificates: TestCertificates) -> bool:
    """An ApiVersions request over TLS is answered."""
    context = ssl.create_default_context(cafile=str(certificates.ca_path))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(API_VERSIONS)
        size = int.from_bytes(receive_exactly(tls, 4), "big")
        return int.from_bytes(receive_exactly(tls, size)[:4], "big") == 7  # the correlation id


def receive_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        piece = sock.recv(n - len(data))
        if not piece:
            raise ConnectionError("closed")
        data += piece
    return data


# ApiVersions v0, correlation id 7, client id "t".
API_VERSIONS = (b"\x00\x00\x00\x0b" b"\x00\x12\x00\x00" b"\x00\x00\x00\x07" b"\x00\x01t")


def closed_by_broker(sock: socket.socket, timeout_s: float) -> bool:
    sock.settimeout(timeout_s)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


def test_plaintext_request_to_a_tls_listener_is_closed_and_the_broker_serves_on(tls_process):
    process, tls_port, certificates = tls_process
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as sock:
        sock.sendall(API_VERSIONS)
        assert closed_by_broker(sock, 10)
    assert tls_client_works(tls_port, certificates)
    assert process.process is not None and process.process.poll() is None


def test_tls_handshake_to_a_plaintext_listener_is_closed_and_the_broker_serves_on(tls_process):
    process, tls_port, certificates = tls_process
    context = ssl.create_default_context(cafile=str(certificates.ca_path))
    with socket.create_connection(("127.0.0.1", process.port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, TimeoutError)):
            context.wrap_socket(raw, server_hostname="127.0.0.1")
    assert tls_client_works(tls_port, certificates)
    producer = Producer({"bootstrap.servers": process.bootstrap})
    assert producer.list_topics(timeout=10).brokers


def test_a_peer_that_never_starts_its_handshake_is_closed(tls_process):
    process, tls_port, certificates = tls_process
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as sock:
        started = time.monotonic()
        assert closed_by_broker(sock, 10)
        # kafkapy.ssl.handshake.timeout.ms=500: closed by the deadline, not by the test's timeout.
        assert time.monotonic() - started < 5
    assert until(lambda: "none within" in process.output, 10, "the broker logging the handshake deadline")
    assert tls_client_works(tls_port, certificates)
