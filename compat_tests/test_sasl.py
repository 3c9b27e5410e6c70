"""SASL listeners with real clients (confluent-kafka and kafka-python): SASL_PLAINTEXT and
SASL_SSL with PLAIN, the refusals Kafka gives (wrong password, unknown user, a mechanism
the listener does not enable) as each client reports them, ACLs on SASL principals, and on
a real process: a request before authentication, garbage tokens and 10,000 failed logins
(the broker serves on, its memory stays flat)."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, AdminClient, ResourcePatternType, ResourceType
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

import kafkapy
from kafkapy.compat.raw import RawConnection
from kafkapy.testing.process import BrokerProcess
from kafkapy.wire.protocol import encode_request
from test_tls import confluent_round_trip, kafka_python_round_trip
from waiting import until

pytestmark = pytest.mark.kafkapy_internals

USERS = {"alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret"}
PLAIN_FAILURE = "Authentication failed: Invalid username or password"


@pytest.fixture(scope="module", params=["sasl_plaintext", "sasl_ssl"])
def sasl_broker(request):
    with kafkapy.Broker(security=request.param, users=USERS, group_initial_rebalance_delay_ms=0) as broker:
        yield broker


@pytest.fixture(scope="module")
def acl_broker():
    with kafkapy.Broker(security="sasl_plaintext", users=USERS, group_initial_rebalance_delay_ms=0,
                        authorizer_class_name="org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                        super_users="User:admin") as broker:
        yield broker


def test_confluent_kafka_produces_and_consumes_as_its_user(sasl_broker):
    assert confluent_round_trip(sasl_broker.client_config(user="alice")) == [f"record-{i}".encode() for i in range(20)]
    assert "User:alice" in until(lambda: set(sasl_broker.connected_principals()), 10, "connections")


def test_kafka_python_produces_and_consumes_as_its_user(sasl_broker):
    settings = sasl_broker.client_config(user="bob", flavour="kafka-python")
    assert kafka_python_round_trip(settings) == [f"record-{i}".encode() for i in range(20)]


def confluent_error(settings: dict[str, object]) -> str:
    """The first error confluent-kafka reports for a producer with these settings."""
    errors: list[str] = []
    producer = Producer({**settings, "error_cb": lambda e: errors.append(str(e))})
    return until(lambda: (producer.poll(0.1), errors)[1], 15, "a reported error")[0]


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "alice-secret")])
def test_confluent_kafka_reports_kafkas_message_for_bad_credentials(sasl_broker, user, password):
    settings = sasl_broker.client_config(user="alice", password=password)
    settings["sasl.username"] = user
    error = confluent_error(settings)
    assert "SASL authentication error" in error and PLAIN_FAILURE in error, error


def kafka_python_refusals(settings: dict[str, object], caplog: pytest.LogCaptureFixture) -> list[str]:
    """The SASL refusals kafka-python logs while it fails to bootstrap with these settings.

    kafka-python drops a response that arrives together with the connection's close (its
    transport aborts on end of stream before handing over the bytes read with it), so an
    attempt sees the broker's answer only when the two arrive apart; Kafka sends the answer
    and then closes just as kafkapy does. Short attempts are repeated until one sees it,
    where one attempt with kafka-python's default bootstrap timeout takes 30 s."""
    deadline = time.monotonic() + 30
    while True:
        with pytest.raises(KafkaTimeoutError):
            KafkaProducer(**settings, bootstrap_timeout_ms=1_500)
        refusals = [r.getMessage() for r in caplog.records if "SaslAuthenticationFailedError" in r.getMessage()]
        if refusals or time.monotonic() > deadline:
            return refusals


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "alice-secret")])
def test_kafka_python_reports_kafkas_message_for_bad_credentials(sasl_broker, user, password, caplog):
    settings = sasl_broker.client_config(user="alice", flavour="kafka-python", password=password)
    settings["sasl_plain_username"] = user
    refusals = kafka_python_refusals(settings, caplog)
    assert refusals and all(PLAIN_FAILURE in message for message in refusals), refusals


def test_a_mechanism_the_listener_does_not_enable(sasl_broker):
    error = confluent_error(sasl_broker.client_config(user="alice", mechanism="SCRAM-SHA-256"))
    assert "Unsupported SASL mechanism: broker's supported mechanisms: PLAIN" in error, error


def test_a_user_without_write_gets_topic_authorization_failed(acl_broker):
    topic = f"acl-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(acl_broker.client_config(user="admin"))
    binding = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:bob", "*", AclOperation.WRITE,
                         AclPermissionType.ALLOW)
    for future in admin.create_acls([binding], request_timeout=10).values():
        future.result(timeout=10)
    allowed = Producer(acl_broker.client_config(user="bob"))
    allowed.produce(topic, b"from bob")
    assert allowed.flush(20) == 0
    refused = Producer({**acl_broker.client_config(user="alice"), "message.timeout.ms": 10_000})
    errors: list[KafkaException] = []
    refused.produce(topic, b"from alice", on_delivery=lambda err, msg: errors.append(err))
    refused.flush(20)
    assert [e.name() for e in errors] == ["TOPIC_AUTHORIZATION_FAILED"]


# --- the real process ---------------------------------------------------------

@pytest.fixture(scope="module")
def sasl_process(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sasl_port = s.getsockname()[1]
    jaas = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";'
    process = BrokerProcess(tmp_path_factory.mktemp("sasl-broker"), {
        "listeners": f"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "connection.failed.authentication.delay.ms": 50,
    })
    with process:
        yield process, sasl_port


def sasl_connection(port: int) -> RawConnection:
    connection = RawConnection(port)
    handshake = connection.request(SaslHandshakeRequest(mechanism="PLAIN"))
    assert handshake.error_code == ErrorCode.none
    return connection


def plain_login(port: int, password: str) -> tuple[int, str | None]:
    with sasl_connection(port) as connection:
        response = connection.request(SaslAuthenticateRequest(auth_bytes=f"\0alice\0{password}".encode()))
        if response.error_code != ErrorCode.none:
            assert connection.closed_by_broker()
        return response.error_code, response.error_message


def test_a_request_before_authentication_closes_the_connection(sasl_process):
    _, port = sasl_process
    with RawConnection(port) as connection:
        connection.send(encode_request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                       include_topic_authorized_operations=False), 1))
        assert connection.closed_by_broker()
    assert plain_login(port, "alice-secret") == (ErrorCode.none, None)


@pytest.mark.parametrize("token", [b"", b"\xff" * 300, b"\0\0\0\0\0", bytes(range(256)) * 4])
def test_garbage_tokens_fail_authentication(sasl_process, token):
    _, port = sasl_process
    with sasl_connection(port) as connection:
        response = connection.request(SaslAuthenticateRequest(auth_bytes=token))
        assert response.error_code == ErrorCode.sasl_authentication_failed
        assert connection.closed_by_broker()


def test_an_oversized_frame_before_authentication_closes_the_connection(sasl_process):
    _, port = sasl_process
    with sasl_connection(port) as connection:
        connection.send((10_000_000).to_bytes(4, "big") + b"\0" * 1000)
        assert connection.closed_by_broker()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def failed_logins(port: int, count: int, at_once: int = 100) -> int:
    """Logs in with a wrong password `count` times, `at_once` connections at a time; the
    number of failures answered SASL_AUTHENTICATION_FAILED."""
    failures = 0
    token = encode_request(SaslAuthenticateRequest(auth_bytes=b"\0alice\0wrong"), 2)
    for _ in range(count // at_once):
        connections = [sasl_connection(port) for _ in range(at_once)]
        for connection in connections:
            connection.send(token)
        for connection in connections:
            with connection:
                response = connection.response(36, 2, 2)
                failures += response.error_code == ErrorCode.sasl_authentication_failed
    return failures


@pytest.mark.timeout(300)
def test_ten_thousand_failed_logins_leave_the_broker_serving_with_flat_memory(sasl_process):
    process, port = sasl_process
    assert process.process is not None
    # Warm up: 100 connections at a time take the allocator to a high-water mark that RSS
    # then wanders around by some MB. A connection left behind holds at least its 64 KiB
    # read buffer: 10,000 of them would be 640 MB, far beyond the margin.
    failed_logins(port, 3000)
    before = rss_kib(process.process.pid)
    assert failed_logins(port, 10_000) == 10_000
    after = rss_kib(process.process.pid)
    assert after - before < 20_000, f"RSS grew from {before} KiB to {after} KiB over 10,000 failed logins"
    assert plain_login(port, "alice-secret") == (ErrorCode.none, None)
