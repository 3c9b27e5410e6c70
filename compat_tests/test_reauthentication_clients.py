"""Re-authentication (KIP-368) with `connections.max.reauth.ms`: confluent-kafka (with
OAUTHBEARER) and kafka-python (with PLAIN) re-authenticate on their live connections and
keep producing across several session lifetimes, every record delivered once; on the real
process, a client that does not re-authenticate is disconnected at its first request after
its session expired, and one that re-authenticates as another user is refused."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from kafka import KafkaProducer
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

import kafkapy
from kafkapy.compat.raw import RawConnection
from kafkapy.testing.process import BrokerProcess
from kafkapy.wire.protocol import encode_request
from waiting import until

pytestmark = pytest.mark.kafkapy_internals

# Clients re-authenticate at 85-95% of the session: a margin of 250 ms or more at 2.5 s.
SESSION_MS = 2_500
LIFETIMES = 2.2  # how many session lifetimes the producers run through
METADATA = MetadataRequest(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False)


def consumed_values(settings: dict[str, object], topic: str, count: int) -> list[bytes]:
    consumer = Consumer({**settings, "group.id": topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # the topic's one partition, without a rebalance
    values: list[bytes] = []
    try:
        def all_consumed() -> bool:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
            return len(values) >= count
        until(all_consumed, 30, f"{count} records consumed", lambda: f"{len(values)} consumed")
    finally:
        consumer.close()
    return values


def test_librdkafka_keeps_producing_across_session_lifetimes():
    with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER", group_initial_rebalance_delay_ms=0,
                        connections_max_reauth_ms=SESSION_MS) as broker:
        settings = broker.client_config(user="alice")
        topic = f"reauth-{uuid.uuid4().hex[:8]}"
        errors: list[str] = []
        delivered: list[bytes] = []
        producer = Producer({**settings, "error_cb": lambda e: errors.append(str(e))})
        sent = 0
        end = time.monotonic() + LIFETIMES * SESSION_MS / 1000

        def produce_through_lifetimes() -> bool:
            nonlocal sent
            producer.produce(topic, f"record-{sent}".encode(), on_delivery=lambda err, msg: err is None and delivered.append(msg.value()))
            sent += 1
            producer.poll(0.05)
            return time.monotonic() > end

        until(produce_through_lifetimes, 30, "producing through the session lifetimes")
        # Every connection still open re-authenticated once per lifetime, or it was closed
        # (and librdkafka would have reported the disconnection).
        assert broker.reauthentications() >= 2
        assert producer.flush(30) == 0
        expected = [f"record-{i}".encode() for i in range(sent)]
        assert delivered == expected and errors == []
        assert sorted(consumed_values(settings, topic, sent)) == sorted(expected)


def test_kafka_python_keeps_producing_across_session_lifetimes():
    with kafkapy.Broker(security="sasl_plaintext", users={"bob": "bob-secret"}, group_initial_rebalance_delay_ms=0,
                        connections_max_reauth_ms=SESSION_MS) as broker:
        topic = f"reauth-{uuid.uuid4().hex[:8]}"
        producer = KafkaProducer(**broker.client_config(user="bob", flavour="kafka-python"))
        futures = []
        end = time.monotonic() + LIFETIMES * SESSION_MS / 1000

        def produce_through_lifetimes() -> bool:
            futures.append(producer.send(topic, f"record-{len(futures)}".encode()))
            futures[-1].get(timeout=10)  # one record at a time, each acknowledged
            return time.monotonic() > end

        try:
            until(produce_through_lifetimes, 30, "producing through the session lifetimes")
            assert broker.reauthentications() >= 2
            offsets = [future.get(timeout=30).offset for future in futures]
        finally:
            producer.close()
        assert offsets == list(range(len(futures)))
        consumed = consumed_values(broker.client_config(user="bob"), topic, len(futures))
        assert sorted(consumed) == sorted(f"record-{i}".encode() for i in range(len(futures)))


# --- the real process ---------------------------------------------------------

@pytest.fixture(scope="module")
def reauth_process(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sasl_port = s.getsockname()[1]
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'user_alice="alice-secret" user_bob="bob-secret";')
    process = BrokerProcess(tmp_path_factory.mktemp("reauth-broker"), {
        "listeners": f"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "connections.max.reauth.ms": SESSION_MS,
        "connection.failed.authentication.delay.ms": 50,
    })
    with process:
        yield sasl_port


def login(connection: RawConnection, user: str, password: str) -> object:
    assert connection.request(SaslHandshakeRequest(mechanism="PLAIN")).error_code == ErrorCode.none
    return connection.request(SaslAuthenticateRequest(auth_bytes=f"\0{user}\0{password}".encode()))


def test_a_client_that_does_not_reauthenticate_is_disconnected_at_its_next_request(reauth_process):
    with RawConnection(reauth_process) as connection:
        response = login(connection, "alice", "alice-secret")
        authenticated = time.monotonic()
        assert response.error_code == ErrorCode.none and response.session_lifetime.total_seconds() * 1000 == SESSION_MS
        assert connection.request(METADATA).brokers
        until(lambda: time.monotonic() > authenticated + SESSION_MS / 1000 + 0.2, 10, "the session's end")
        connection.send(encode_request(METADATA, 99))
        assert connection.closed_by_broker()


def test_reauthentication_on_a_live_connection(reauth_process):
    with RawConnection(reauth_process) as connection:
        first = time.monotonic()
        assert login(connection, "alice", "alice-secret").error_code == ErrorCode.none
        assert connection.request(METADATA).brokers
        until(lambda: time.monotonic() > first + 1.2, 10, "the first session half over")
        again = login(connection, "alice", "alice-secret")
        assert again.error_code == ErrorCode.none and again.session_lifetime.total_seconds() * 1000 == SESSION_MS
        # Past the first session's end, the renewed one serves.
        until(lambda: time.monotonic() > first + SESSION_MS / 1000 + 0.3, 10, "the first session's end")
        assert connection.request(METADATA).brokers


def test_reauthenticating_as_another_user_is_refused(reauth_process):
    with RawConnection(reauth_process) as connection:
        assert login(connection, "alice", "alice-secret").error_code == ErrorCode.none
        refused = login(connection, "bob", "bob-secret")
        assert refused.error_code == ErrorCode.sasl_authentication_failed
        assert refused.error_message == "Cannot change principals during re-authentication from User.alice: User.bob"
        assert connection.closed_by_broker()
