"""Re-authentication (KIP-368), sans-IO: a SaslHandshake on an authenticated connection
whose session has a lifetime begins a new exchange (at most once a second), which must keep
the mechanism and the principal; a request after the session expired closes the connection."""

from __future__ import annotations

from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from kafkapy.security.sasl import SaslAuthenticator, SaslStep
from test_sasl_exchange import NOW, answer, frame, handshake, listener, plain_token

METADATA = frame(MetadataRequest(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False))


def authenticated(max_reauth_ms: int = 60_000) -> SaslAuthenticator:
    authenticator = SaslAuthenticator(listener(max_reauth_ms={"PLAIN": max_reauth_ms}))
    handshake(authenticator)
    step = authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=plain_token("alice", 's3cr=t;"x"'))), NOW)
    assert step.principal == "User:alice"
    return authenticator


def reauthenticate(authenticator: SaslAuthenticator, now_ms: int, user: str = "alice", password: str = 's3cr=t;"x"',
                   mechanism: str = "PLAIN") -> SaslStep:
    step = authenticator.after_authentication(frame(SaslHandshakeRequest(mechanism=mechanism)), now_ms)
    assert step is not None and step.close is None and answer(step, 17, 1).error_code == ErrorCode.none
    assert not authenticator.complete
    return authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=plain_token(user, password))), now_ms)


def test_requests_pass_until_the_session_expires_then_close_the_connection():
    authenticator = authenticated()
    assert authenticator.after_authentication(METADATA, NOW + 60_000) is None
    step = authenticator.after_authentication(METADATA, NOW + 60_001)
    assert step is not None and step.close is not None and step.close.response is None and step.close.delay_ms == 0
    # A late re-authentication is too late, as in Kafka: the session expired first.
    late = authenticated().after_authentication(frame(SaslHandshakeRequest(mechanism="PLAIN")), NOW + 60_001)
    assert late is not None and late.close is not None


def test_reauthentication_renews_the_session():
    authenticator = authenticated()
    step = reauthenticate(authenticator, NOW + 50_000)
    assert step.principal == "User:alice" and step.close is None and authenticator.complete
    assert answer(step, 36, 2).session_lifetime.total_seconds() == 60
    assert authenticator.session_expiry_ms == NOW + 110_000 and authenticator.reauthentications == 1
    assert authenticator.after_authentication(METADATA, NOW + 100_000) is None
    step = reauthenticate(authenticator, NOW + 101_000)
    assert step.principal == "User:alice" and authenticator.reauthentications == 2


def test_at_most_one_reauthentication_a_second_and_none_without_a_session_lifetime():
    authenticator = authenticated()
    reauthenticate(authenticator, NOW + 10_000)
    # Too soon: the handshake goes to the broker, which answers ILLEGAL_SASL_STATE.
    assert authenticator.after_authentication(frame(SaslHandshakeRequest(mechanism="PLAIN")), NOW + 10_999) is None
    assert authenticated(max_reauth_ms=0).after_authentication(frame(SaslHandshakeRequest(mechanism="PLAIN")), NOW) is None


def test_the_principal_cannot_change():
    authenticator = authenticated()
    step = reauthenticate(authenticator, NOW + 1_000, user="bob", password="bobpw")
    assert step.close is not None and step.principal is None
    message = "Cannot change principals during re-authentication from User.alice: User.bob"
    response = answer(step, 36, 2, step.close.response)
    assert response.error_code == ErrorCode.sasl_authentication_failed and response.error_message == message


def test_the_mechanism_cannot_change():
    authenticator = authenticated()
    step = authenticator.after_authentication(frame(SaslHandshakeRequest(mechanism="SCRAM-SHA-256")), NOW + 1_000)
    assert step is not None and answer(step, 17, 1).error_code == ErrorCode.none  # Kafka answers the handshake ...
    step = authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=b"n,,n=alice,r=abc")), NOW + 1_000)
    assert step.close is not None and step.close.response is None  # ... and closes at the next token
    assert step.close.reason == "SASL mechanism 'SCRAM-SHA-256' requested by client is not supported for re-authentication of mechanism 'PLAIN'"


def test_a_failed_reauthentication_says_so():
    authenticator = authenticated()
    step = reauthenticate(authenticator, NOW + 1_000, password="wrong")
    assert step.close is not None
    assert answer(step, 36, 2, step.close.response).error_message == "Authentication failed: Invalid username or password"
