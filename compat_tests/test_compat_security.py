"""`kafkapy compat --bootstrap --security FILE` against a kafkapy that serves SASL_SSL only,
its users authenticated with SCRAM: every client of the matrix, and the bare connections
some scenarios open themselves, connect with the file's settings and pass as they do over
plaintext."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kafkapy
from kafkapy.cli import main
from kafkapy.compat.adapters import ADAPTERS
from kafkapy.compat.security import ClientSecurity, SecurityFileError

pytestmark = pytest.mark.kafkapy_internals

USERS = {"alice": "alice-secret"}
# A short cross-section: admin calls, produce and consume (and a bare TLS+SCRAM connection
# reading the served batches), a group whose members run in child processes, plus a bare
# OffsetCommit to its coordinator.
SCENARIOS = ["metadata.cluster", "produce.codec_gzip", "groups.commit_refusals"]
# The libraries that carry security settings, at their own protocol level: the profiles
# pinned to older levels are the matrix's proof of old versions, over plaintext.
CLIENTS = [name for name, adapter in ADAPTERS.items() if adapter.speaks_security and not adapter.pinned]
CHOSEN = [a for c in CLIENTS for a in ("--client", c)]


def write_security_file(path: Path, settings: dict[str, object]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in settings.items() if key != "bootstrap.servers"))
    return path


def test_the_matrix_passes_against_a_sasl_ssl_scram_broker(tmp_path):
    with kafkapy.Broker(security="sasl_ssl", users=USERS, mechanism="SCRAM-SHA-256",
                        group_initial_rebalance_delay_ms=0) as broker:
        security = write_security_file(tmp_path / "client.properties", broker.client_config(user="alice"))
        status = main(["compat", "--bootstrap", broker.bootstrap_servers, "--security", str(security),
                       "--out", str(tmp_path / "reports"), *CHOSEN, *(a for s in SCENARIOS for a in ("--scenario", s))])

    report = json.loads((tmp_path / "reports" / "compat.json").read_text())
    outcomes = {(o["scenario"], o["client"]): (o["status"], o["reason"]) for o in report["outcomes"]}
    assert set(outcomes) == {(s, c) for s in SCENARIOS for c in CLIENTS}
    assert {status for status, _ in outcomes.values()} == {"pass"}, outcomes
    assert status == 0
    assert report["target"].endswith("over SASL_SSL")


def test_the_clients_present_their_certificate_to_a_broker_that_requires_one(tmp_path):
    scenarios = ["metadata.cluster", "produce.codec_gzip"]
    with kafkapy.Broker(security="mtls") as broker:
        security = write_security_file(tmp_path / "client.properties", broker.client_config(user="alice"))
        status = main(["compat", "--bootstrap", broker.bootstrap_servers, "--security", str(security),
                       "--out", str(tmp_path / "reports"), *CHOSEN, *(a for s in scenarios for a in ("--scenario", s))])

    report = json.loads((tmp_path / "reports" / "compat.json").read_text())
    assert {(o["scenario"], o["client"], o["status"]) for o in report["outcomes"]} == {
        (s, c, "pass") for s in scenarios for c in CLIENTS}
    assert status == 0  # the broker refuses a TLS handshake without a client certificate


def test_a_wrong_password_is_reported_at_once_instead_of_failing_every_run(tmp_path, capsys):
    with kafkapy.Broker(security="sasl_ssl", users=USERS, mechanism="SCRAM-SHA-256") as broker:
        security = write_security_file(tmp_path / "client.properties",
                                       broker.client_config(user="alice", password="not-alice-secret"))
        status = main(["compat", "--bootstrap", broker.bootstrap_servers, "--security", str(security),
                       "--out", str(tmp_path / "reports"), "--scenario", "metadata.cluster"])

    error = capsys.readouterr().err
    assert status == 2
    assert "cannot authenticate to" in error and "as alice: SASL_AUTHENTICATION_FAILED" in error, error
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(("text", "error"), [
    ("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\n", "needs sasl.mechanism"),
    ("security.protocol=SSLv3\n", "security.protocol SSLV3 is not one of"),
    ("security.protocol=SSL\nssl.truststore.location=ca.jks\n", "unknown key 'ssl.truststore.location'"),
    ("security.protocol=SSL\nssl.ca.location=missing.pem\n", "ssl.ca.location missing.pem does not exist"),
    ("security.protocol=SSL\nssl.certificate.location=client.properties\n", "needs both"),
])
def test_a_security_file_kafkapy_cannot_use_is_refused_with_what_is_wrong(tmp_path, text, error):
    path = tmp_path / "client.properties"
    path.write_text(text)
    with pytest.raises(SecurityFileError, match=error):
        ClientSecurity.read(path)


def test_each_client_library_gets_the_settings_in_its_own_words(tmp_path):
    (tmp_path / "ca.pem").write_text("")
    path = tmp_path / "client.properties"
    path.write_text("security.protocol=sasl_ssl\nsasl.mechanisms=PLAIN\nsasl.username=u\nsasl.password=p\n"
                    "ssl.ca.location=ca.pem\n")
    security = ClientSecurity.read(path)

    ca = str((tmp_path / "ca.pem").resolve())
    assert security.confluent() == {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "u",
                                    "sasl.password": "p", "ssl.ca.location": ca}
    assert security.kafka_python() == {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                                       "sasl_plain_username": "u", "sasl_plain_password": "p", "ssl_cafile": ca}
