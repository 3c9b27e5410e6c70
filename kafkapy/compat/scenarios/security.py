"""Authentication refused as Apache Kafka refuses it. Each scenario starts from the run's
security settings and changes one thing: a wrong password, an unknown user, a SASL
mechanism the broker does not enable, an expired OAUTHBEARER token, a CA that did not sign
the broker's certificate. The client must show the error it shows for Apache Kafka, and a
bare connection with the same settings checks what the broker answered on the wire and
that it then closed the connection. A scenario whose change the run's settings cannot
express (a password on a PLAINTEXT run, a token on a PLAIN one) is skipped, saying why."""

from __future__ import annotations

import ssl
import tempfile
import uuid
from dataclasses import replace

from kio.schema.errors import ErrorCode
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from ..adapters import ADAPTERS
from ..adapters.base import BrokerError, Client
from ..raw import RawConnection
from ..registry import Context, NotApplicable, scenario
from ..security import DEFAULT_TOKEN_LIFETIME_S, MECHANISMS, ClientSecurity, token_attributes

# Kafka's messages for refused credentials start so, whatever the mechanism.
AUTHENTICATION_FAILED = "Authentication failed"
# RFC 7628's error for a token the validator refuses, in Kafka's spelling.
INVALID_TOKEN = '{"status":"invalid_token"}'
# How each client names the refusal of an unsupported mechanism: librdkafka, kafka-python.
UNSUPPORTED_MECHANISM = ("Unsupported SASL mechanism", "UnsupportedSaslMechanismError")
CERTIFICATE_NOT_TRUSTED = "certificate verify failed"


def _address(ctx: Context) -> tuple[str, int]:
    host, _, port = ctx.client.bootstrap.split(",")[0].rpartition(":")
    return host, int(port)


def _security(ctx: Context, needs: str) -> ClientSecurity:
    """The run's settings, if they use SASL with credentials (needs "password") or
    OAUTHBEARER (needs "token"); NotApplicable otherwise."""
    security = ctx.client.security
    if not security.sasl:
        raise NotApplicable(f"the run's security.protocol is {security.protocol}, without SASL to refuse")
    if needs == "password" and security.mechanism == "OAUTHBEARER":
        raise NotApplicable("the run authenticates with OAUTHBEARER, which has no password to get wrong")
    if needs == "token" and security.mechanism != "OAUTHBEARER":
        raise NotApplicable(f"the run authenticates with {security.mechanism}, not OAUTHBEARER")
    return security


def _without_sasl(security: ClientSecurity) -> ClientSecurity:
    """The settings of a bare connection that authenticates by itself: TLS if the run's has it."""
    return replace(security, protocol="SSL" if security.tls else "PLAINTEXT")


def _errors_shown(ctx: Context, security: ClientSecurity) -> list[str]:
    # The run's adapter, at the run's protocol level, with the settings changed.
    client: Client = ADAPTERS[ctx.client.name].connect(ctx.client.bootstrap, replace(security, source=None))
    try:
        errors = client.connection_errors()
    finally:
        client.close()
    assert errors, f"{client.name} connected, or showed no error, with settings the broker must refuse"
    return errors


def _assert_shown(errors: list[str], *texts: str) -> None:
    assert any(text in error for error in errors for text in texts), (
        f"expected the client to show an error with {' or '.join(map(repr, texts))}, it showed {errors}")


def _refused_on_the_wire(ctx: Context, security: ClientSecurity, error: str, message: str) -> None:
    """A bare connection with the settings: the broker answers with error, its message
    containing message, and then closes the connection."""
    host, port = _address(ctx)
    with RawConnection(port, host, _without_sasl(security)) as connection:
        try:
            connection.authenticate(security)
        except BrokerError as refusal:
            assert refusal.name == error and message in str(refusal), (
                f"expected the broker to answer {error} with {message!r}, it answered {refusal}")
        else:
            raise AssertionError(f"the broker authenticated a connection it must refuse with {error}")
        assert connection.closed_by_broker(), f"the broker kept the connection open after {error}"


@scenario("security.wrong_password")
def wrong_password(ctx: Context) -> None:
    """The run's user with a wrong password is refused with SASL_AUTHENTICATION_FAILED and
    Kafka's "Authentication failed..." message, and the connection closed."""
    security = _security(ctx, "password")
    wrong = replace(security, password=f"not-{security.password}")
    _assert_shown(_errors_shown(ctx, wrong), AUTHENTICATION_FAILED)
    _refused_on_the_wire(ctx, wrong, "SASL_AUTHENTICATION_FAILED", AUTHENTICATION_FAILED)


@scenario("security.unknown_user")
def unknown_user(ctx: Context) -> None:
    """A user the broker does not know, with the run's password, is refused as a wrong
    password is: SASL_AUTHENTICATION_FAILED, "Authentication failed...", the connection
    closed."""
    stranger = replace(_security(ctx, "password"), username=f"compat-stranger-{uuid.uuid4().hex[:8]}")
    _assert_shown(_errors_shown(ctx, stranger), AUTHENTICATION_FAILED)
    _refused_on_the_wire(ctx, stranger, "SASL_AUTHENTICATION_FAILED", AUTHENTICATION_FAILED)


@scenario("security.unsupported_mechanism")
def unsupported_mechanism(ctx: Context) -> None:
    """A SASL mechanism the broker does not enable is refused in the SaslHandshake with
    UNSUPPORTED_SASL_MECHANISM naming the enabled ones, and the connection closed; the
    client shows the refusal."""
    security = _security(ctx, "sasl")
    assert security.mechanism is not None  # a SASL run's settings name one
    host, port = _address(ctx)
    transport = _without_sasl(security)
    with RawConnection(port, host, transport) as connection:
        enabled = list(connection.request(SaslHandshakeRequest(mechanism=security.mechanism)).mechanisms)
    others = [m for m in MECHANISMS if m not in enabled and m != "OAUTHBEARER"]
    if not others:
        raise NotApplicable(f"the broker enables every mechanism the clients offer with a password: {enabled}")
    refused = replace(security, mechanism=others[0], username=security.username or "compat-user",
                      password=security.password or "compat-password")
    errors = _errors_shown(ctx, refused)
    _assert_shown(errors, *UNSUPPORTED_MECHANISM)
    with RawConnection(port, host, transport) as connection:
        handshake = connection.request(SaslHandshakeRequest(mechanism=others[0]))
        assert handshake.error_code == ErrorCode.unsupported_sasl_mechanism, (
            f"SaslHandshake for {others[0]} answered {ErrorCode(handshake.error_code).name}")
        assert list(handshake.mechanisms) == enabled, f"enabled mechanisms named: {list(handshake.mechanisms)}, {enabled}"
        assert connection.closed_by_broker(), "the broker kept the connection open after UNSUPPORTED_SASL_MECHANISM"
    if any(UNSUPPORTED_MECHANISM[0] in error for error in errors):  # librdkafka shows the broker's list
        _assert_shown(errors, f"supported mechanisms: {','.join(enabled)}")


@scenario("security.expired_token")
def expired_token(ctx: Context) -> None:
    """An OAUTHBEARER token that expired a minute ago (its client's clock is behind by its
    lifetime and a minute) is refused with {"status":"invalid_token"} (RFC 7628's error, as
    Kafka spells it), and the connection closed."""
    security = _security(ctx, "token")
    lifetime_s = int(token_attributes(security.oauthbearer_config or "").get("lifeSeconds", DEFAULT_TOKEN_LIFETIME_S))
    expired = replace(security, token_clock_offset_s=-(lifetime_s + 60))
    _assert_shown(_errors_shown(ctx, expired), INVALID_TOKEN)
    _refused_on_the_wire(ctx, expired, "SASL_AUTHENTICATION_FAILED", INVALID_TOKEN)


@scenario("security.untrusted_certificate")
def untrusted_certificate(ctx: Context) -> None:
    """A client that trusts only another CA does not connect over TLS: the handshake fails
    with "certificate verify failed"."""
    security = ctx.client.security
    if not security.tls:
        raise NotApplicable(f"the run's security.protocol is {security.protocol}, without TLS")
    try:
        from ...testing.certificates import TestCertificates
    except ImportError as e:  # the cryptography package, which kafkapy[testkit] installs
        raise NotApplicable(f"making another CA needs the cryptography package: {e}") from e
    with tempfile.TemporaryDirectory(prefix="kafkapy-compat-ca-") as directory:
        stranger = replace(security, ca_location=str(TestCertificates(directory, name="another CA").ca_path))
        _assert_shown(_errors_shown(ctx, stranger), CERTIFICATE_NOT_TRUSTED)
        host, port = _address(ctx)
        try:
            RawConnection(port, host, _without_sasl(stranger)).sock.close()
        except ssl.SSLCertVerificationError:
            return
        raise AssertionError("a bare TLS connection trusting another CA completed its handshake")
