"""The `security.*` scenarios through `kafkapy compat --bootstrap --security FILE`, against
kafkapy secured four ways: SASL_SSL with SCRAM, SASL_PLAINTEXT with PLAIN, OAUTHBEARER and
SSL (and mutual TLS, where the client keeps its certificate). Each refusal the run's
settings can express passes with the clients that carry security settings; each it cannot
is skipped with the reason. A scenario or two of the ordinary matrix runs beside them (the
whole matrix over SASL_SSL is test_compat_security's, and so is the choice of clients)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import kafkapy
from kafkapy.cli import main
from kafkapy.compat.security import ClientSecurity, SecurityFileError
from kafkapy.security.oauthbearer import decode_segment
from test_compat_security import CHOSEN, CLIENTS, write_security_file

pytestmark = pytest.mark.kafkapy_internals

USERS = {"alice": "alice-secret"}
REFUSALS = ["security.wrong_password", "security.unknown_user", "security.unsupported_mechanism",
            "security.expired_token", "security.untrusted_certificate"]
NO_SASL = "without SASL to refuse"


def compat_outcomes(broker: kafkapy.Broker, tmp_path: Path, scenarios: list[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(scenario, client) -> (status, reason) of a compat run against the broker as alice."""
    security = write_security_file(tmp_path / "client.properties", broker.client_config(user="alice"))
    status = main(["compat", "--bootstrap", broker.bootstrap_servers, "--security", str(security),
                   "--out", str(tmp_path / "reports"), *CHOSEN, *(a for s in scenarios for a in ("--scenario", s))])
    report = json.loads((tmp_path / "reports" / "compat.json").read_text())
    outcomes = {(o["scenario"], o["client"]): (o["status"], o["reason"]) for o in report["outcomes"]}
    assert set(outcomes) == {(s, c) for s in scenarios for c in CLIENTS}
    assert status == 0, outcomes
    return outcomes


def assert_outcomes(outcomes: dict[tuple[str, str], tuple[str, str]], passed: list[str], skipped: dict[str, str]) -> None:
    """Each scenario of passed passes with every client; each of skipped is skipped with a
    reason containing the text given."""
    for (scenario, client), (status, reason) in outcomes.items():
        if scenario in skipped:
            assert status == "skipped" and skipped[scenario] in reason, (scenario, client, status, reason)
        else:
            assert scenario in passed and status == "pass", (scenario, client, status, reason)


def test_refusals_over_sasl_ssl_with_scram(tmp_path):
    with kafkapy.Broker(security="sasl_ssl", users=USERS, mechanism="SCRAM-SHA-256") as broker:
        outcomes = compat_outcomes(broker, tmp_path, REFUSALS)
    assert_outcomes(outcomes, passed=["security.wrong_password", "security.unknown_user",
                                      "security.unsupported_mechanism", "security.untrusted_certificate"],
                    skipped={"security.expired_token": "authenticates with SCRAM-SHA-256, not OAUTHBEARER"})


def test_refusals_over_sasl_plaintext_with_plain(tmp_path):
    with kafkapy.Broker(security="sasl_plaintext", users=USERS) as broker:
        outcomes = compat_outcomes(broker, tmp_path, REFUSALS)
    assert_outcomes(outcomes, passed=["security.wrong_password", "security.unknown_user", "security.unsupported_mechanism"],
                    skipped={"security.expired_token": "authenticates with PLAIN, not OAUTHBEARER",
                             "security.untrusted_certificate": "is SASL_PLAINTEXT, without TLS"})


def test_the_matrix_and_refusals_with_oauthbearer(tmp_path):
    with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER", group_initial_rebalance_delay_ms=0) as broker:
        outcomes = compat_outcomes(broker, tmp_path, ["metadata.cluster", "produce.codec_gzip", *REFUSALS])
    no_password = "OAUTHBEARER, which has no password to get wrong"
    assert_outcomes(outcomes, passed=["metadata.cluster", "produce.codec_gzip", "security.unsupported_mechanism",
                                      "security.expired_token"],
                    skipped={"security.wrong_password": no_password, "security.unknown_user": no_password,
                             "security.untrusted_certificate": "is SASL_PLAINTEXT, without TLS"})


def test_refusals_over_ssl(tmp_path):
    with kafkapy.Broker(security="ssl") as broker:
        outcomes = compat_outcomes(broker, tmp_path, REFUSALS)
    assert_outcomes(outcomes, passed=["security.untrusted_certificate"],
                    skipped={s: f"SSL, {NO_SASL}" for s in REFUSALS if s != "security.untrusted_certificate"})


def test_an_untrusted_broker_over_mutual_tls(tmp_path):
    with kafkapy.Broker(security="mtls") as broker:
        outcomes = compat_outcomes(broker, tmp_path, ["security.untrusted_certificate"])
    assert_outcomes(outcomes, passed=["security.untrusted_certificate"], skipped={})


def test_an_expired_token_the_broker_accepts_fails_the_scenario(tmp_path):
    """The scenario can fail: a broker that allows an hour of clock skew takes a token that
    expired a minute ago, and each client connects where Kafka refuses it."""
    jaas = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
            'unsecuredValidatorAllowableClockSkewMs="3600000";')
    with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER",
                        **{"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": jaas}) as broker:
        security = write_security_file(tmp_path / "client.properties", broker.client_config(user="alice"))
        status = main(["compat", "--bootstrap", broker.bootstrap_servers, "--security", str(security),
                       "--out", str(tmp_path / "reports"), *CHOSEN, "--scenario", "security.expired_token"])
    report = json.loads((tmp_path / "reports" / "compat.json").read_text())
    assert {(o["client"], o["status"]) for o in report["outcomes"]} == {(c, "fail") for c in CLIENTS}
    assert all("connected, or showed no error" in o["reason"] for o in report["outcomes"]), report["outcomes"]
    assert status == 1


@pytest.mark.parametrize(("text", "error"), [
    ("sasl.oauthbearer.config=principal=alice\n", "needs enable.sasl.oauthbearer.unsecure.jwt=true"),
    ("enable.sasl.oauthbearer.unsecure.jwt=true\n", "and sasl.oauthbearer.config=principal=<name>"),
    ("enable.sasl.oauthbearer.unsecure.jwt=true\nsasl.oauthbearer.config=scope=kafka\n", "needs principal=<name>"),
    ("enable.sasl.oauthbearer.unsecure.jwt=true\nsasl.oauthbearer.config=principal=alice extension_a=1\n",
     "'extension_a=1' is not one of principal=..."),
    ("enable.sasl.oauthbearer.unsecure.jwt=true\nsasl.oauthbearer.config=principal=alice lifeSeconds=soon\n",
     "invalid literal for int"),
    ("enable.sasl.oauthbearer.unsecure.jwt=true\nsasl.oauthbearer.config=principal=alice lifeSeconds=0\n",
     "lifeSeconds must be positive"),
])
def test_an_oauthbearer_file_kafkapy_cannot_use_is_refused_with_what_is_wrong(tmp_path, text, error):
    path = tmp_path / "client.properties"
    path.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n{text}")
    with pytest.raises(SecurityFileError, match=re.escape(error)):
        ClientSecurity.read(path)


def test_an_unsecured_token_as_librdkafka_makes_it_from_its_config(tmp_path):
    path = tmp_path / "client.properties"
    path.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\nenable.sasl.oauthbearer.unsecure.jwt=true\n"
                    "sasl.oauthbearer.config=principal=svc principalClaimName=client_id scope=a,b lifeSeconds=600\n")
    security = ClientSecurity.read(path)

    header, claims, signature = security.unsecured_token().split(".")
    assert (decode_segment(header), signature) == ({"alg": "none"}, "")
    payload = decode_segment(claims)
    assert (payload["client_id"], payload["scope"], payload["exp"] - payload["iat"]) == ("svc", ["a", "b"], 600)
    assert security.confluent() == {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                                    "enable.sasl.oauthbearer.unsecure.jwt": True,
                                    "sasl.oauthbearer.config": "principal=svc principalClaimName=client_id scope=a,b lifeSeconds=600"}
    provider = security.kafka_python()["sasl_oauth_token_provider"]
    assert decode_segment(provider.token().split(".")[1])["client_id"] == "svc"


def test_a_token_the_broker_refuses_is_reported_at_once(tmp_path, capsys):
    jaas = ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
            'unsecuredValidatorRequiredScope="kafka";')
    with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER",
                        **{"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": jaas}) as broker:
        security = write_security_file(tmp_path / "client.properties", broker.client_config(user="alice"))
        status = main(["compat", "--bootstrap", broker.bootstrap_servers, "--security", str(security),
                       "--out", str(tmp_path / "reports"), *CHOSEN, "--scenario", "metadata.cluster"])

    error = capsys.readouterr().err
    assert status == 2
    assert 'as alice: SASL_AUTHENTICATION_FAILED: {"status":"insufficient_scope", "scope":"[kafka]"}' in error, error
