"""The console tools against secured brokers, given Kafka's client properties with
`--command-config`: SCRAM over SASL_SSL with an authorizer (the principal a tool logs in
as is the one the ACLs decide on), PLAIN over SASL_PLAINTEXT, mutual TLS; and a wrong
password, an untrusted certificate or no security at all, each refused in Kafka's words
with exit status 1."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafkapy.testing.certificates import TestCertificates
from kafkapy.testing.embedded import Broker
from test_console_tools import TOOL_TIMEOUT_S

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(120)]

SCRAM = "SCRAM-SHA-256"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


def scram_properties(directory: Path, broker: Broker, user: str, password: str | None = None) -> Path:
    """A client properties file as Kafka's tools take one: the JAAS login over continued lines, a PEM trust store."""
    assert broker.certificates is not None
    path = directory / f"{user}-{uuid.uuid4().hex[:6]}.properties"
    path.write_text(f"security.protocol=SASL_SSL\nsasl.mechanism={SCRAM}\n"
                    f"sasl.jaas.config={SCRAM_LOGIN} required \\\n"
                    f'    username="{user}" password="{password or USERS[user]}";\n'
                    f"ssl.truststore.type=PEM\nssl.truststore.location={broker.certificates.ca_path}\n")
    return path


def run(broker: Broker, config: Path | None, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    security = ["--command-config", str(config)] if config else []
    return subprocess.run([sys.executable, "-m", "kafkapy", *args, "--bootstrap", broker.bootstrap_servers, *security],
                          input=stdin, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)


def ok(broker: Broker, config: Path | None, *args: str, stdin: str | None = None) -> str:
    result = run(broker, config, *args, stdin=stdin)
    assert result.returncode == 0, f"kafkapy {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def sasl_ssl() -> Iterator[Broker]:
    with Broker(security="sasl_ssl", users=USERS, mechanism=SCRAM,
                **{"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                   "super.users": "User:alice", "group.initial.rebalance.delay.ms": 0}) as broker:
        yield broker


@pytest.fixture(scope="module")
def alice(sasl_ssl: Broker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scram_properties(tmp_path_factory.mktemp("alice"), sasl_ssl, "alice")


@pytest.fixture
def topic() -> str:
    return f"secured-{uuid.uuid4().hex[:8]}"


def test_topics_over_sasl_ssl_with_scram(sasl_ssl: Broker, alice: Path, topic: str) -> None:
    assert ok(sasl_ssl, alice, "topics", "create", topic, "--partitions", "2") == f"Created topic {topic} with 2 partitions.\n"
    [described] = json.loads(ok(sasl_ssl, alice, "topics", "describe", topic, "--format", "json"))
    assert (described["name"], described["partition_count"]) == (topic, 2)
    assert ok(sasl_ssl, alice, "topics", "delete", topic) == f"Deleted topic {topic}.\n"


def test_produce_consume_and_groups_over_sasl_ssl_with_scram(sasl_ssl: Broker, alice: Path, topic: str) -> None:
    group = f"{topic}-group"
    ok(sasl_ssl, alice, "topics", "create", topic)
    ok(sasl_ssl, alice, "produce", "--topic", topic, stdin="one\ntwo\nthree\n")

    consumed = ok(sasl_ssl, alice, "consume", "--topic", topic, "--group", group, "--from-beginning", "--max-messages", "3")
    assert consumed == "one\ntwo\nthree\n"
    described = json.loads(ok(sasl_ssl, alice, "groups", "describe", group, "--format", "json"))
    assert [(o["partition"], o["committed_offset"], o["lag"]) for o in described["offsets"]] == [(0, 3, 0)]


def test_acls_over_sasl_ssl_decide_for_the_user_logged_in(sasl_ssl: Broker, alice: Path, topic: str, tmp_path: Path) -> None:
    bob = scram_properties(tmp_path, sasl_ssl, "bob")
    ok(sasl_ssl, alice, "topics", "create", topic)
    refused = run(sasl_ssl, bob, "produce", "--topic", topic, stdin="from bob\n")
    assert refused.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in refused.stderr

    ok(sasl_ssl, alice, "acls", "add", "--allow-principal", "User:bob", "--operation", "Write", "--operation", "Describe",
       "--topic", topic)
    listed = json.loads(ok(sasl_ssl, alice, "acls", "list", "--topic", topic, "--format", "json"))
    assert sorted((a["principal"], a["operation"], a["permission"]) for a in listed) == [
        ("User:bob", "Describe", "ALLOW"), ("User:bob", "Write", "ALLOW")]
    ok(sasl_ssl, bob, "produce", "--topic", topic, stdin="from bob\n")
    assert ok(sasl_ssl, alice, "consume", "--topic", topic, "--from-beginning", "--max-messages", "1") == "from bob\n"


def test_quorum_describe_over_sasl_ssl(sasl_ssl: Broker, alice: Path) -> None:
    status = ok(sasl_ssl, alice, "quorum", "describe", "--status")
    assert "LeaderId:" in status and "CurrentVoters:" in status


def test_a_wrong_password_is_refused_with_kafkas_error(sasl_ssl: Broker, tmp_path: Path) -> None:
    wrong = scram_properties(tmp_path, sasl_ssl, "alice", password="not-the-password")
    for args in (["topics", "list"], ["groups", "list"], ["acls", "list"]):
        result = run(sasl_ssl, wrong, *args)
        assert result.returncode == 1
        assert result.stderr == (
            f"kafkapy {' '.join(args)}: error: SASL authentication with the broker at {sasl_ssl.bootstrap_servers}: "
            f"SASL_AUTHENTICATION_FAILED (Authentication failed during authentication due to invalid credentials with "
            f"SASL mechanism {SCRAM})\n")


def test_a_certificate_of_another_authority_is_not_trusted(sasl_ssl: Broker, tmp_path: Path) -> None:
    stranger = TestCertificates(tmp_path / "stranger", name="another CA")
    config = scram_properties(tmp_path, sasl_ssl, "alice")
    assert sasl_ssl.certificates is not None
    config.write_text(config.read_text().replace(str(sasl_ssl.certificates.ca_path), str(stranger.ca_path)))

    result = run(sasl_ssl, config, "topics", "list")
    assert result.returncode == 1
    assert result.stderr.startswith(f"kafkapy topics list: error: SSL handshake with the broker at {sasl_ssl.bootstrap_servers} "
                                    "failed: unable to get local issuer certificate")


def test_a_client_without_security_settings_is_told_what_is_missing(sasl_ssl: Broker) -> None:
    result = run(sasl_ssl, None, "topics", "list")
    assert result.returncode == 1
    assert "(does it listen with SSL there? then security.protocol=SSL or SASL_SSL)" in result.stderr


def test_a_properties_file_the_client_cannot_use_is_named(sasl_ssl: Broker, tmp_path: Path) -> None:
    config = tmp_path / "gssapi.properties"
    config.write_text("security.protocol=SASL_SSL\nsasl.kerberos.service.name=kafka\n")
    result = run(sasl_ssl, config, "topics", "list")
    assert result.returncode == 1
    assert result.stderr.startswith(f"kafkapy topics list: error: {config}: unknown client configuration key "
                                    "'sasl.kerberos.service.name'")


def test_plain_over_sasl_plaintext_with_librdkafkas_names(tmp_path: Path, topic: str) -> None:
    with Broker(security="sasl_plaintext", users={"carol": "carol-secret"}) as broker:
        config = tmp_path / "plain.properties"
        config.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=carol\nsasl.password=carol-secret\n")
        ok(broker, config, "topics", "create", topic)
        assert [t["name"] for t in json.loads(ok(broker, config, "topics", "list", "--format", "json"))] == [topic]


def test_mutual_tls_presents_the_users_certificate(tmp_path: Path, topic: str) -> None:
    with Broker(security="mtls") as broker:
        assert broker.certificates is not None
        certificate, key = broker.certificates.client("dave")
        config = tmp_path / "mtls.properties"
        config.write_text(f"security.protocol=SSL\nssl.truststore.location={broker.certificates.ca_path}\n"
                          f"ssl.certificate.location={certificate}\nssl.key.location={key}\n")
        ok(broker, config, "topics", "create", topic)
        assert topic in ok(broker, config, "topics", "list")

        no_certificate = tmp_path / "no-certificate.properties"
        no_certificate.write_text(f"security.protocol=SSL\nssl.truststore.location={broker.certificates.ca_path}\n")
        refused = run(broker, no_certificate, "topics", "list")
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"kafkapy topics list: error: SSL handshake with the broker at {broker.bootstrap_servers} "
                                         "failed: TLSV13_ALERT_CERTIFICATE_REQUIRED (the broker requires a client certificate it trusts")
