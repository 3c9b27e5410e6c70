"""The `security.*` scenarios through `kafkapy compat --bootstrap --security FILE`, against
kafkapy secured four ways: SASL_SSL with SCRAM, SASL_PLAINTEXT with PLAIN, OAUTHBEARER and
SSL. Each refusal the run's settings can express passes with both clients; each it cannot
is skipped with the reason. A scenario or two of the ordinary matrix runs beside them (the
whole matrix over SASL_SSL is test_compat_security's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kafkapy
from kafkapy.cli import main
from kafkapy.compat.adapters import ADAPTERS
from test_compat_security import write_security_file

pytestmark = pytest.mark.kafkapy_internals

USERS = {"alice": "alice-secret"}
REFUSALS = ["security.wrong_password", "security.unknown_user", "security.unsupported_mechanism",
            "security.expired_token", "security.untrusted_certificate"]
NO_SASL = "without SASL to refuse"


def compat_outcomes(broker: kafkapy.Broker, tmp_path: Path, scenarios: list[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(scenario, client) -> (status, reason) of a compat run against the broker as alice."""
    security = write_security_file(tmp_path / "client.properties", broker.client_config(user="alice"))
    status = main(["compat", "--bootstrap", broker.bootstrap_servers, "--security", str(security),
                   "--out", str(tmp_path / "reports"), *(a for s in scenarios for a in ("--scenario", s))])
    report = json.loads((tmp_path / "reports" / "compat.json").read_text())
    outcomes = {(o["scenario"], o["client"]): (o["status"], o["reason"]) for o in report["outcomes"]}
    assert set(outcomes) == {(s, c) for s in scenarios for c in ADAPTERS}
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
