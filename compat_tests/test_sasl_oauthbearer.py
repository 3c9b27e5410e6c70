"""SASL/OAUTHBEARER with real clients: confluent-kafka (librdkafka's unsecured JWT, or a
token callback) and kafka-python (a token provider) authenticate with unsecured tokens,
validated as Kafka's default validator does, and with RS256/ES256 tokens checked against a
JWKS read from a file: URL or fetched over HTTP (again when a token names a new kid); an expired token, a token signed by a
stranger's key and a token without the required scope are refused with what Apache Kafka
answers, the error JSON of RFC 7628, and the connection closed."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

import kafkapy
from kafkapy.compat.raw import RawConnection
from kafkapy.testing.oauth import SigningKey, confluent_token_settings, user_token, write_jwks
from kafkapy.testing.process import BrokerProcess
from test_sasl import confluent_error, kafka_python_refusals
from test_tls import confluent_round_trip, kafka_python_round_trip
from waiting import until

pytestmark = pytest.mark.kafkapy_internals

RECORDS = [f"record-{i}".encode() for i in range(20)]
INVALID_TOKEN = '{"status":"invalid_token"}'
SIGNED = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"


@pytest.fixture(scope="module", params=["sasl_plaintext", "sasl_ssl"])
def oauth_broker(request):
    with kafkapy.Broker(security=request.param, mechanism="OAUTHBEARER", group_initial_rebalance_delay_ms=0) as broker:
        yield broker


def test_confluent_kafka_produces_and_consumes_with_an_unsecured_token(oauth_broker):
    assert confluent_round_trip(oauth_broker.client_config(user="alice")) == RECORDS
    assert "User:alice" in until(lambda: set(oauth_broker.connected_principals()), 10, "connections")


def test_kafka_python_produces_and_consumes_with_an_unsecured_token(oauth_broker):
    assert kafka_python_round_trip(oauth_broker.client_config(user="bob", flavour="kafka-python")) == RECORDS


def test_an_expired_token_is_refused_as_kafka_refuses_it(oauth_broker, caplog):
    def expired() -> str:
        return user_token("alice", lifetime_s=-60)

    error = confluent_error(oauth_broker.client_config(token=expired))
    assert f"SASL authentication error: {INVALID_TOKEN}" in error, error
    refusals = kafka_python_refusals(oauth_broker.client_config(token=expired, flavour="kafka-python"), caplog)
    assert refusals and all(INVALID_TOKEN in m for m in refusals), refusals


def test_a_required_scope_missing_is_insufficient_scope():
    jaas = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
            'unsecuredValidatorRequiredScope="kafka";')
    with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER",
                        **{"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": jaas}) as broker:
        error = confluent_error(broker.client_config(token=lambda: user_token("alice", scope=["web"])))
        assert 'SASL authentication error: {"status":"insufficient_scope", "scope":"[kafka]"}' in error, error
        assert confluent_round_trip(broker.client_config(token=lambda: user_token("alice", scope=["kafka"]))) == RECORDS


# --- signed tokens ------------------------------------------------------------

@pytest.fixture(scope="module")
def signing_keys() -> list[SigningKey]:
    return [SigningKey("RS256", kid="rsa-1"), SigningKey("ES256", kid="ec-1")]


@pytest.fixture(scope="module")
def signed_broker(signing_keys, tmp_path_factory):
    url = write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json", signing_keys)
    with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER", group_initial_rebalance_delay_ms=0, **{
            "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": SIGNED,
            "sasl.oauthbearer.jwks.endpoint.url": url, "sasl.oauthbearer.expected.audience": "kafka",
            "sasl.oauthbearer.expected.issuer": "https://issuer.test"}) as broker:
        yield broker


def signed_token(key: SigningKey, user: str, **claims: object):
    return lambda: key.user_token(user, **{"aud": "kafka", "iss": "https://issuer.test", **claims})


def test_signed_tokens_from_a_jwks_file(signed_broker, signing_keys):
    rsa_key, ec_key = signing_keys
    assert confluent_round_trip(signed_broker.client_config(token=signed_token(rsa_key, "alice"))) == RECORDS
    assert "User:alice" in until(lambda: set(signed_broker.connected_principals()), 10, "connections")
    settings = signed_broker.client_config(token=signed_token(ec_key, "bob"), flavour="kafka-python")
    assert kafka_python_round_trip(settings) == RECORDS


@pytest.mark.parametrize("claims", [{"aud": "web"}, {"iss": "https://other.test"}, {"exp": 1_000_000}],
                         ids=["audience", "issuer", "expired"])
def test_signed_tokens_the_broker_refuses(signed_broker, signing_keys, claims):
    token = signed_token(signing_keys[0], "alice", **claims)
    assert f"SASL authentication error: {INVALID_TOKEN}" in confluent_error(signed_broker.client_config(token=token))


def test_kafka_python_with_an_expired_signed_token(signed_broker, signing_keys, caplog):
    token = signed_token(signing_keys[1], "bob", exp=1_000_000)
    refusals = kafka_python_refusals(signed_broker.client_config(token=token, flavour="kafka-python"), caplog)
    assert refusals and all(INVALID_TOKEN in m for m in refusals), refusals


def test_a_token_signed_by_a_key_not_in_the_jwks_is_refused(signed_broker):
    stranger = SigningKey("RS256", kid="rsa-1")  # the same kid, another key
    error = confluent_error(signed_broker.client_config(token=signed_token(stranger, "mallory")))
    assert f"SASL authentication error: {INVALID_TOKEN}" in error, error


class _JwksHandler(http.server.BaseHTTPRequestHandler):
    body = b""
    fetches = 0

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        type(self).fetches += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_jwks_fetched_over_http_and_again_for_a_new_kid(signing_keys, tmp_path: Path):
    rotated = SigningKey("ES256", kid="ec-2")
    _JwksHandler.fetches = 0
    _JwksHandler.body = Path(write_jwks(tmp_path / "a.json", signing_keys[:1]).removeprefix("file://")).read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER", group_initial_rebalance_delay_ms=0, **{
                "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": SIGNED,
                "sasl.oauthbearer.jwks.endpoint.url": f"http://127.0.0.1:{server.server_address[1]}/jwks.json",
                "sasl.oauthbearer.expected.audience": "kafka"}) as broker:  # refreshed hourly
            assert confluent_round_trip(broker.client_config(token=signed_token(signing_keys[0], "alice"))) == RECORDS
            assert _JwksHandler.fetches == 1
            # The issuer rotates its key: the first token that names the new kid is refused and
            # makes the broker fetch the key set at once, as Kafka's does; the client's next try passes.
            _JwksHandler.body = Path(write_jwks(tmp_path / "b.json", [rotated]).removeprefix("file://")).read_bytes()
            assert INVALID_TOKEN in confluent_error(broker.client_config(token=signed_token(rotated, "alice")))
            until(lambda: _JwksHandler.fetches == 2, 15, "the JWKS fetched again")
            assert confluent_round_trip(broker.client_config(token=signed_token(rotated, "alice"))) == RECORDS
    finally:
        server.shutdown()
        server.server_close()


# --- the real process ---------------------------------------------------------

def signed_process(tmp_path: Path, jwks_url: str) -> tuple[BrokerProcess, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return BrokerProcess(tmp_path / "data", {
        # The SASL listener alone: clients are sent to the first listener's address.
        "listeners": f"SASL_PLAINTEXT://127.0.0.1:{port}", "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": SIGNED,
        "sasl.oauthbearer.jwks.endpoint.url": jwks_url, "sasl.oauthbearer.sub.claim.name": "client_id",
        "group.initial.rebalance.delay.ms": 0,
    }), port


def test_a_broker_process_checks_signed_tokens(signing_keys, tmp_path):
    process, port = signed_process(tmp_path, write_jwks(tmp_path / "jwks.json", signing_keys))
    with process:
        settings = {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
                    **confluent_token_settings(lambda: signing_keys[1].sign(
                        {"client_id": "svc", "iat": int(time.time()), "exp": int(time.time()) + 600}))}
        assert confluent_round_trip(settings) == RECORDS
        no_client_id = {**settings, **confluent_token_settings(signed_token(signing_keys[1], "svc"))}
        assert INVALID_TOKEN in confluent_error(no_client_id)
        # RFC 7628 on the wire: the error as a challenge, the client's 0x01, the failure, the close.
        expired = signing_keys[0].sign({"client_id": "svc", "iat": 1_000_000, "exp": 1_000_600})
        with RawConnection(port) as connection:
            assert connection.request(SaslHandshakeRequest(mechanism="OAUTHBEARER")).error_code == ErrorCode.none
            challenge = connection.request(SaslAuthenticateRequest(auth_bytes=f"n,,\x01auth=Bearer {expired}\x01\x01".encode()))
            assert challenge.error_code == ErrorCode.none and challenge.auth_bytes == INVALID_TOKEN.encode()
            failure = connection.request(SaslAuthenticateRequest(auth_bytes=b"\x01"))
            assert failure.error_code == ErrorCode.sasl_authentication_failed and failure.error_message == INVALID_TOKEN
            assert connection.closed_by_broker()


def test_a_broker_process_without_its_jwks_does_not_start(tmp_path):
    process, _ = signed_process(tmp_path, (tmp_path / "missing.json").as_uri())
    with pytest.raises(RuntimeError, match="did not start") as refused:
        process.start()
    assert "Cannot read the JWKS at sasl.oauthbearer.jwks.endpoint.url=file://" in str(refused.value)
