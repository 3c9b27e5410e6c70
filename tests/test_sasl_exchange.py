"""The SASL exchange, sans-IO: frames in, steps out (what to send, what to hand to the
broker, the principal, or why and when to close), with PLAIN; and the JAAS text its users
come from."""

from __future__ import annotations

import struct

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.sasl_authenticate.v0.request import SaslAuthenticateRequest as SaslAuthenticateRequestV0
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v0.request import SaslHandshakeRequest as SaslHandshakeRequestV0
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from kafkapy.config import ConfigError
from kafkapy.security.jaas import parse_jaas_config
from kafkapy.security.sasl import SaslAuthenticator, SaslListener, SaslStep
from kafkapy.security.sasl_plain import PlainServer, plain_users
from kafkapy.wire.protocol import decode_response, encode_request

NOW = 1_700_000_000_000
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required\n'
        '  username="admin" password="admin-secret" // the broker\'s own, for inter-broker clients\n'
        '  user_admin="admin-secret" user_alice="s3cr=t;\\"x\\"" /* quoted: = ; and " inside */ user_bob=bobpw;')
USERS = plain_users(parse_jaas_config(JAAS))


def listener(**more: object) -> SaslListener:
    return SaslListener({"PLAIN": lambda: PlainServer(USERS), "SCRAM-SHA-256": lambda: PlainServer({})}, **more)  # type: ignore[arg-type]


def frame(request: object, correlation_id: int = 7) -> bytes:
    return encode_request(request, correlation_id)[4:]


def answer(step: SaslStep, api_key: int, version: int, chunks: object = None) -> object:
    data = b"".join(bytes(c) for c in (chunks if chunks is not None else step.send))  # type: ignore[union-attr]
    correlation_id, response = decode_response(data[4:], api_key, version)
    assert correlation_id == 7
    return response


def plain_token(user: str, password: str, authorization_id: str = "") -> bytes:
    return f"{authorization_id}\0{user}\0{password}".encode()


def handshake(authenticator: SaslAuthenticator, mechanism: str = "PLAIN") -> object:
    step = authenticator.received(frame(SaslHandshakeRequest(mechanism=mechanism)), NOW)
    assert step.close is None
    return answer(step, 17, 1)


def test_jaas_users_as_kafka_reads_them():
    assert USERS == {"admin": "admin-secret", "alice": 's3cr=t;"x"', "bob": "bobpw"}
    # Users of another login module are not PLAIN's.
    assert plain_users(parse_jaas_config('com.example.Other required user_x="y";')) == {}


@pytest.mark.parametrize(("text", "message"), [
    ("", "contains 0 login modules, should be 1 module"),
    ('a.B required x="1"; c.D required;', "contains 2 login modules"),
    ('a.B x="1";', "invalid control flag 'x'"),
    ('a.B required x "1";', "expected '=' after option 'x'"),
    ('a.B required x="1"', "expected ';'"),
])
def test_malformed_jaas_is_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_jaas_config(text)


def test_versions_handshake_and_authenticate():
    authenticator = SaslAuthenticator(listener())
    step = authenticator.received(frame(ApiVersionsRequest(client_software_name="x", client_software_version="1")), NOW)
    assert step.dispatch and step.send is None and step.close is None
    response = handshake(authenticator)
    assert response.error_code == ErrorCode.none and response.mechanisms == ("PLAIN", "SCRAM-SHA-256")
    step = authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=plain_token("alice", 's3cr=t;"x"'))), NOW)
    assert step.principal == "User:alice" and authenticator.complete
    response = answer(step, 36, 2)
    assert response.error_code == ErrorCode.none and response.auth_bytes == b""
    assert response.session_lifetime.total_seconds() == 0  # no connections.max.reauth.ms


@pytest.mark.parametrize(("token", "message"), [
    (plain_token("alice", "wrong"), "Authentication failed: Invalid username or password"),
    (plain_token("mallory", "s3cr=t"), "Authentication failed: Invalid username or password"),
    (plain_token("", "x"), "Authentication failed: username not specified"),
    (plain_token("bob", ""), "Authentication failed: password not specified"),
    (plain_token("bob", "bobpw", authorization_id="admin"),
     "Authentication failed: Client requested an authorization id that is different from username"),
    (b"bob\0bobpw", "Invalid SASL/PLAIN response: expected 3 tokens, got 2"),
    (b"\0a\0b\0c\0d", "Invalid SASL/PLAIN response: expected 3 tokens, got 4"),
])
def test_failed_authentication_is_answered_after_the_delay_then_closed(token, message):
    authenticator = SaslAuthenticator(listener(failed_authentication_delay_ms=250))
    handshake(authenticator)
    step = authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=token)), NOW)
    assert step.send is None and step.principal is None and not authenticator.complete
    assert step.close is not None and step.close.delay_ms == 250 and step.close.reason == message
    response = answer(step, 36, 2, step.close.response)
    assert response.error_code == ErrorCode.sasl_authentication_failed and response.error_message == message


def test_an_authorization_id_equal_to_the_user_is_accepted():
    authenticator = SaslAuthenticator(listener())
    handshake(authenticator)
    step = authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=plain_token("bob", "bobpw", "bob"))), NOW)
    assert step.principal == "User:bob"


def test_unsupported_mechanism_lists_the_enabled_ones():
    authenticator = SaslAuthenticator(listener())
    step = authenticator.received(frame(SaslHandshakeRequest(mechanism="GSSAPI")), NOW)
    assert step.send is None and step.close is not None and step.close.delay_ms == 100
    assert step.close.reason == "Unsupported SASL mechanism GSSAPI"
    response = answer(step, 17, 1, step.close.response)
    assert response.error_code == ErrorCode.unsupported_sasl_mechanism and response.mechanisms == ("PLAIN", "SCRAM-SHA-256")


def test_a_request_before_the_handshake_closes_without_an_answer():
    authenticator = SaslAuthenticator(listener())
    step = authenticator.received(frame(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                        include_topic_authorized_operations=False)), NOW)
    assert step.close is not None and step.close.response is None and not step.dispatch
    assert step.close.reason == "Unexpected Kafka request of type METADATA during SASL handshake."


def test_api_versions_only_first():
    authenticator = SaslAuthenticator(listener())
    handshake(authenticator)
    step = authenticator.received(frame(ApiVersionsRequest(client_software_name="x", client_software_version="1")), NOW)
    assert step.close is not None and not step.dispatch


def test_a_request_during_authentication_is_refused_with_illegal_sasl_state():
    authenticator = SaslAuthenticator(listener())
    handshake(authenticator)
    step = authenticator.received(frame(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                        include_topic_authorized_operations=False)), NOW)
    assert step.close is not None and step.close.reason == "Unexpected Kafka request of type METADATA during SASL authentication."
    response = answer(step, 3, 12, step.close.response)
    assert response.topics == () and response.brokers == ()  # Kafka's error response of Metadata: no fields to carry it


def test_handshake_v0_then_raw_tokens():
    authenticator = SaslAuthenticator(listener())
    step = authenticator.received(frame(SaslHandshakeRequestV0(mechanism="PLAIN")), NOW)
    assert answer(step, 17, 0).error_code == ErrorCode.none
    step = authenticator.received(plain_token("bob", "bobpw"), NOW)
    assert step.principal == "User:bob" and step.send == [struct.pack(">i", 0)]


def test_raw_token_failure_closes_without_an_answer():
    authenticator = SaslAuthenticator(listener())
    authenticator.received(frame(SaslHandshakeRequestV0(mechanism="PLAIN")), NOW)
    step = authenticator.received(plain_token("bob", "nope"), NOW)
    assert step.close is not None and step.close.response is None and step.close.delay_ms == 100
    assert step.close.reason == "Authentication failed: Invalid username or password"


def test_session_lifetime_is_connections_max_reauth_ms():
    authenticator = SaslAuthenticator(listener(max_reauth_ms={"PLAIN": 60_000}))
    handshake(authenticator)
    step = authenticator.received(frame(SaslAuthenticateRequestV0(auth_bytes=plain_token("bob", "bobpw"))), NOW)
    assert step.session_lifetime_ms == 60_000 and authenticator.session_expiry_ms == NOW + 60_000
    assert not authenticator.supports_reauthentication  # SaslAuthenticate v0
    assert answer(step, 36, 0).error_code == ErrorCode.none


def test_nothing_after_completion():
    authenticator = SaslAuthenticator(listener())
    handshake(authenticator)
    authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=plain_token("bob", "bobpw"))), NOW)
    from kafkapy.wire.protocol import InvalidRequest

    with pytest.raises(InvalidRequest):
        authenticator.received(frame(SaslHandshakeRequest(mechanism="PLAIN")), NOW)
