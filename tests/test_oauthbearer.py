"""SASL/OAUTHBEARER, sans-IO: RFC 7628's client first message, the error challenge and the
client's 0x01 that ends a refused exchange, Kafka's unsecured validator (claims, clock skew,
required scope) and the signed-token validator (RS256/ES256 against a JWKS, issuer,
audience, sub claim), and the session lifetime a token's expiry gives."""

from __future__ import annotations

import json

import anyio
import pytest
from kio.schema.errors import ErrorCode
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from kafkapy.config import BrokerConfig, ConfigError
from kafkapy.security.jws import KeySet, SignedTokenRules, SignedValidator, parse_jwks
from kafkapy.security.oauthbearer import InvalidToken, OAuthBearerServer, UnsecuredValidator, unsecured_token
from kafkapy.security.sasl import SaslAuthenticationFailed, SaslAuthenticator, SaslListener, SaslRejected
from kafkapy.server.jwks import JwksSource, load_at_start, refresh_forever
from kafkapy.server.sasl import listener_sasl
from kafkapy.testing.oauth import SigningKey, write_jwks
from test_sasl_exchange import answer, frame

NOW = 1_700_000_000_000
NOW_S = NOW // 1000


def claims(**more: object) -> dict[str, object]:
    return {"sub": "alice", "iat": NOW_S - 10, "exp": NOW_S + 600, **more}


def first_message(token: str, authzid: str = "", extensions: str = "") -> bytes:
    return f"n,{'a=' + authzid if authzid else ''},\x01auth=Bearer {token}\x01{extensions}\x01".encode()


def unsecured_server(**options: str) -> OAuthBearerServer:
    return OAuthBearerServer(UnsecuredValidator(options))


def test_a_valid_unsecured_token_authenticates_its_subject():
    server = unsecured_server()
    assert server.evaluate(first_message(unsecured_token(claims()), extensions="traceId=abc 1\x01"), NOW) == b""
    assert server.complete and server.authorization_id == "alice" and server.credential_expiry_ms == (NOW_S + 600) * 1000


def test_a_refused_token_gets_the_error_json_then_fails_on_the_clients_0x01():
    server = unsecured_server()
    challenge = server.evaluate(first_message(unsecured_token(claims(exp=NOW_S - 1))), NOW)
    assert json.loads(challenge) == {"status": "invalid_token"} and not server.complete
    with pytest.raises(SaslAuthenticationFailed) as failed:
        server.evaluate(b"\x01", NOW)
    assert str(failed.value) == '{"status":"invalid_token"}'


@pytest.mark.parametrize(("message", "authzid"), [
    (b"n,,\x01auth=Bearer a.b.\x01", ""),  # no closing separator
    (b"y,,\x01auth=Bearer a.b.\x01\x01", ""),  # channel binding flag
    (b"n,,\x01host=x\x01\x01", ""),  # no auth
    (b"n,,\x01auth=Basic abc\x01\x01", ""),  # another scheme
    (b"n,,\x01auth=Bearer a b\x01\x01", ""),  # not a token
])
def test_malformed_client_first_messages_are_refused_with_kafkas_generic_message(message, authzid):
    with pytest.raises(SaslRejected):
        unsecured_server().evaluate(message, NOW)


def test_an_authorization_id_other_than_the_principal_is_refused():
    with pytest.raises(SaslAuthenticationFailed, match=r"authorization id \(bob\) that is different from the token's principal name \(alice\)"):
        unsecured_server().evaluate(first_message(unsecured_token(claims()), authzid="bob"), NOW)
    server = unsecured_server()
    server.evaluate(first_message(unsecured_token(claims()), authzid="alice"), NOW)
    assert server.authorization_id == "alice"


@pytest.mark.parametrize(("token", "reason"), [
    (unsecured_token(claims(exp=NOW_S)), "on or after the Expiration Time"),
    (unsecured_token(claims(iat=NOW_S + 1)), "was after the indicated time"),
    (unsecured_token(claims(iat=NOW_S + 600)), "after the indicated time"),
    (unsecured_token({"sub": "alice"}), "No expiration time in JWT"),
    (unsecured_token(claims(exp="soon")), "'exp' claim was not of type Number"),
    (unsecured_token(claims(sub=" ")), "No principal name in JWT claim: sub"),
    (unsecured_token(claims(sub=7)), "No principal name in JWT claim: sub"),
    (unsecured_token(claims()).replace("eyJhbGciOiJub25lIn0", "eyJhbGciOiJIUzI1NiJ9"), "must have 'none' for an algorithm"),
    (unsecured_token(claims()) + "c2ln", "must not contain a digital signature"),
    ("a..b", "contains '..'"),
    ("abc.def", "must have 3 dot-separated"),
    ("!!!.e30.", "malformed Base64"),
    ("bm90IGpzb24.e30.", "malformed JSON"),
])
def test_the_unsecured_validator_refuses_what_kafkas_refuses(token, reason):
    with pytest.raises(InvalidToken, match=reason):
        UnsecuredValidator({})(token, NOW)


def test_clock_skew_stretches_both_ends():
    validator = UnsecuredValidator({"unsecuredValidatorAllowableClockSkewMs": "2000"})
    assert validator(unsecured_token(claims(exp=NOW_S - 1)), NOW).principal == "alice"
    assert validator(unsecured_token(claims(iat=NOW_S + 2)), NOW).principal == "alice"
    with pytest.raises(InvalidToken):
        validator(unsecured_token(claims(exp=NOW_S - 2)), NOW)
    with pytest.raises(ConfigError, match="must not be negative"):
        UnsecuredValidator({"unsecuredValidatorAllowableClockSkewMs": "-1"})
    with pytest.raises(ConfigError):
        UnsecuredValidator({"unsecuredValidatorAllowableClockSkewMs": "soon"})


def test_required_scope_and_claim_names():
    validator = UnsecuredValidator({"unsecuredValidatorRequiredScope": "read write", "unsecuredValidatorScopeClaimName": "scp",
                                    "unsecuredValidatorPrincipalClaimName": "user"})
    token = validator(unsecured_token(claims(user="carol", scp=["read", " write ", ""])), NOW)
    assert token.principal == "carol" and token.scope == {"read", "write"}
    # A string scope is one scope, as Kafka reads it: "read write" is not split.
    server = OAuthBearerServer(validator)
    challenge = server.evaluate(first_message(unsecured_token(claims(user="carol", scp="read write"))), NOW)
    assert challenge == b'{"status":"insufficient_scope", "scope":"[read, write]"}'


# --- signed tokens ------------------------------------------------------------

@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {"RS256": SigningKey("RS256", kid="rsa"), "ES256": SigningKey("ES256", kid="ec")}


def signed_validator(keys: dict[str, SigningKey], **rules: object) -> SignedValidator:
    key_set = KeySet(parse_jwks(json.dumps({"keys": [k.jwk() for k in keys.values()]})))
    return SignedValidator(lambda: key_set, SignedTokenRules(**rules))  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_signed_tokens_are_checked_against_the_jwks(keys, algorithm):
    validator = signed_validator(keys)
    token = validator(keys[algorithm].sign(claims(scope=["a"])), NOW)
    assert token.principal == "alice" and token.scope == {"a"} and token.expiry_ms == (NOW_S + 600) * 1000
    impostor = SigningKey(algorithm, kid=keys[algorithm].kid)
    with pytest.raises(InvalidToken, match="signature is invalid"):
        validator(impostor.sign(claims()), NOW)
    stranger = SigningKey(algorithm, kid="unknown")
    with pytest.raises(InvalidToken, match="no key in the JWKS for kid unknown"):
        validator(stranger.sign(claims()), NOW)
    with pytest.raises(InvalidToken, match="algorithm 'none' is not allowed"):
        validator(unsecured_token(claims()), NOW)


@pytest.mark.parametrize(("rules", "token_claims", "reason"), [
    ({}, claims(exp=NOW_S - 30), "no longer valid"),
    ({"clock_skew_s": 0}, claims(exp=NOW_S), "no longer valid"),
    ({}, claims(nbf=NOW_S + 31), "not yet valid"),
    ({}, {"sub": "alice", "exp": NOW_S + 60}, r"No Issued At \(iat\)"),
    ({}, {"sub": "alice", "iat": NOW_S}, r"No Expiration Time \(exp\)"),
    ({"expected_issuer": "https://issuer"}, claims(iss="https://other"), "Issuer"),
    ({"expected_issuer": "https://issuer"}, claims(), "Issuer"),
    ({"expected_audience": ("kafka",)}, claims(aud=["web"]), "does not contain an expected audience"),
    ({"expected_audience": ("kafka",)}, claims(), "does not contain an expected audience"),
    ({}, claims(aud="kafka"), "no expected audience"),
    ({"sub_claim": "client_id"}, claims(), "Could not extract the 'client_id' claim"),
])
def test_signed_token_refusals(keys, rules, token_claims, reason):
    with pytest.raises(InvalidToken, match=reason):
        signed_validator(keys, **rules)(keys["RS256"].sign(token_claims), NOW)


@pytest.mark.parametrize("algorithm", ["RS384", "RS512", "ES384", "ES512"])
def test_the_other_signature_algorithms(algorithm):
    key = SigningKey(algorithm, kid=algorithm)
    validator = signed_validator({algorithm: key})
    assert validator(key.sign(claims()), NOW).principal == "alice"
    with pytest.raises(InvalidToken, match="signature is invalid"):
        validator(SigningKey(algorithm, kid=algorithm).sign(claims()), NOW)


def test_signed_token_rules_that_pass(keys):
    validator = signed_validator(keys, expected_issuer="https://issuer", expected_audience=("kafka", "other"),
                                 sub_claim="client_id", scope_claim="scp")
    token = validator(keys["ES256"].sign(claims(iss="https://issuer", aud=["kafka"], client_id="svc", scp="x y")), NOW)
    assert token.principal == "svc" and token.scope == {"x y"}
    assert signed_validator(keys)(keys["RS256"].sign(claims(exp=NOW_S - 29)), NOW).principal == "alice"  # 30 s skew


def test_jwks_keeps_signature_keys_only():
    document = {"keys": [SigningKey("ES256", kid="e").jwk(), {**SigningKey("RS256", kid="enc").jwk(), "use": "enc"},
                         {"kty": "oct", "k": "c2VjcmV0"}]}
    assert [k.kid for k in parse_jwks(json.dumps(document))] == ["e"]
    with pytest.raises(ValueError, match="no 'keys' list"):
        parse_jwks("{}")


# --- through the SASL exchange -------------------------------------------------

def oauth_listener(**more: object) -> SaslListener:
    return SaslListener({"OAUTHBEARER": lambda: unsecured_server()}, **more)  # type: ignore[arg-type]


def authenticate(authenticator: SaslAuthenticator, token: str, now_ms: int = NOW):
    authenticator.received(frame(SaslHandshakeRequest(mechanism="OAUTHBEARER")), now_ms)
    return authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=first_message(token))), now_ms)


@pytest.mark.parametrize(("max_reauth_ms", "lifetime_ms"), [(0, 600_000), (60_000, 60_000), (900_000, 600_000)])
def test_session_lifetime_is_the_sooner_of_token_expiry_and_max_reauth(max_reauth_ms, lifetime_ms):
    authenticator = SaslAuthenticator(oauth_listener(max_reauth_ms={"OAUTHBEARER": max_reauth_ms}))
    step = authenticate(authenticator, unsecured_token(claims()))
    assert step.principal == "User:alice" and step.session_lifetime_ms == lifetime_ms
    assert answer(step, 36, 2).session_lifetime.total_seconds() * 1000 == lifetime_ms


def test_an_expired_token_fails_with_the_error_json_and_closes():
    authenticator = SaslAuthenticator(oauth_listener())
    step = authenticate(authenticator, unsecured_token(claims(exp=NOW_S - 5)))
    assert step.close is None and answer(step, 36, 2).auth_bytes == b'{"status":"invalid_token"}'
    step = authenticator.received(frame(SaslAuthenticateRequest(auth_bytes=b"\x01")), NOW)
    assert step.close is not None and step.close.reason == '{"status":"invalid_token"}'
    response = answer(step, 36, 2, step.close.response)
    assert response.error_code == ErrorCode.sasl_authentication_failed and response.error_message == '{"status":"invalid_token"}'


# --- configuration, refused at start -------------------------------------------

OAUTH_LISTENER = {"listeners": "SASL_PLAINTEXT://127.0.0.1:9092", "sasl.enabled.mechanisms": "OAUTHBEARER",
                  "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
                      "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"}
HANDLER_KEY = "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class"
SIGNED = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"


@pytest.mark.parametrize(("values", "message"), [
    ({"sasl.enabled.mechanisms": "OAUTHBEARER", "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": None},
     "Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry"),
    ({HANDLER_KEY: "com.example.MyValidator"}, "loads no Java class"),
    ({HANDLER_KEY: SIGNED}, "needs sasl.oauthbearer.jwks.endpoint.url"),
    ({HANDLER_KEY: SIGNED, "sasl.oauthbearer.jwks.endpoint.url": "ftp://keys/jwks.json"}, "scheme must be one of https, http, file"),
    ({"sasl.oauthbearer.jwks.endpoint.url": "file:///keys.json"}, "tokens are validated unsecured"),
    ({"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
      'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorAllowableClockSkewMs="-5";'},
     "must not be negative"),
    ({"sasl.oauthbearer.clock.skew.seconds": "-1"}, "sasl.oauthbearer.clock.skew.seconds"),
])
def test_oauthbearer_settings_refused_at_start(values, message):
    settings = {k: v for k, v in {**OAUTH_LISTENER, **values}.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        BrokerConfig(settings)


def test_signed_token_settings_per_listener(tmp_path):
    config = BrokerConfig({**OAUTH_LISTENER, HANDLER_KEY: SIGNED, "sasl.oauthbearer.jwks.endpoint.url": "file:///k.json",
                           "listener.name.sasl_plaintext.sasl.oauthbearer.expected.audience": "kafka,web",
                           "sasl.oauthbearer.sub.claim.name": "client_id"})
    listeners, sources = listener_sasl(config, lambda user, mechanism: None)
    assert [(s.url, s.refresh_ms) for s in sources] == [("file:///k.json", 3_600_000)]
    server = listeners["SASL_PLAINTEXT"].mechanisms["OAUTHBEARER"]()
    assert isinstance(server, OAuthBearerServer)
    assert server._validate.rules == SignedTokenRules(sub_claim="client_id", expected_audience=("kafka", "web"))  # type: ignore[attr-defined]


def test_a_missing_kid_asks_for_the_key_set_again_at_most_once_a_minute_per_kid(keys):
    asked: list[int] = []
    key_set = KeySet(parse_jwks(json.dumps({"keys": [keys["RS256"].jwk()]})), refresh_wanted=lambda: asked.append(1))
    validator = SignedValidator(lambda: key_set, SignedTokenRules())
    rotated = SigningKey("RS256", kid="rotated")
    for now_ms in (NOW, NOW + 59_999):
        with pytest.raises(InvalidToken, match="no key in the JWKS for kid rotated"):
            validator(rotated.sign(claims()), now_ms)
    assert len(asked) == 1
    key_set.note_missing_kid("rotated", NOW + 60_000)
    assert len(asked) == 2
    # At most 16 kids are remembered: a seventeenth within the minute asks nothing.
    for i in range(16):
        key_set.note_missing_kid(f"kid-{i}", NOW + 60_000)
    assert len(asked) == 17
    key_set.note_missing_kid("x" * 1001, NOW + 200_000)  # too long to be a kid
    key_set.note_missing_kid("kid-16", NOW + 120_000)  # the oldest entry is a minute old: it gives way
    assert len(asked) == 18


def test_the_key_set_is_read_again_every_refresh_ms_and_when_asked(keys, tmp_path):
    first, second = SigningKey("ES256", kid="first"), SigningKey("ES256", kid="second")

    async def main() -> None:
        source = JwksSource(write_jwks(tmp_path / "jwks.json", [first]), 100, KeySet())
        load_at_start([source])
        assert [k.kid for k in source.keys.keys] == ["first"]
        async with anyio.create_task_group() as tg:
            tg.start_soon(refresh_forever, source)
            write_jwks(tmp_path / "jwks.json", [second])
            with anyio.fail_after(5):
                while [k.kid for k in source.keys.keys] != ["second"]:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        never = JwksSource(write_jwks(tmp_path / "never.json", [first]), 0, KeySet())
        load_at_start([never])
        async with anyio.create_task_group() as tg:
            unwatched = never.keys.refresh_wanted
            tg.start_soon(refresh_forever, never)
            write_jwks(tmp_path / "never.json", [second])
            with anyio.fail_after(5):  # refresh_forever waiting: with refresh.ms 0, no timer reads ...
                while never.keys.refresh_wanted is unwatched:
                    await anyio.sleep(0.01)
            assert [k.kid for k in never.keys.keys] == ["first"]
            never.keys.note_missing_kid("second", NOW)  # ... until a token names a kid it lacks
            with anyio.fail_after(5):
                while [k.kid for k in never.keys.keys] != ["second"]:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    anyio.run(main)
