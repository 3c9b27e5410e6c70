"""The client's security settings as a file of Kafka's client properties gives them (what
`--command-config` reads): the login from sasl.jaas.config or librdkafka's names, the TLS
context's trust, certificate and host name check, and the refusals in words."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafkapy.client import ClientSecurity, SecurityConfigError
from kafkapy.client.security import Login
from kafkapy.config import load_properties
from kafkapy.testing.certificates import TestCertificates

SCRAM_JAAS = ('sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n'
              '    username="alice" \\\n    password="s3cr=t;";\n')


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCertificates]:
    yield TestCertificates(tmp_path_factory.mktemp("client-security-ca"))


def read(tmp_path: Path, text: str) -> ClientSecurity:
    path = tmp_path / "client.properties"
    path.write_text(text)
    return ClientSecurity.read(path)


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(SecurityConfigError) as refused:
        read(tmp_path, text)
    return str(refused.value)


def test_a_jaas_configuration_over_continued_lines_is_the_login(tmp_path: Path) -> None:
    security = read(tmp_path, "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n" + SCRAM_JAAS)

    assert security.login == Login("SCRAM-SHA-512", "alice", "s3cr=t;")
    assert security.tls is None


def test_librdkafkas_names_for_the_login_are_read_too(tmp_path: Path) -> None:
    security = read(tmp_path, "security.protocol=sasl_plaintext\nsasl.mechanism=PLAIN\nsasl.username=bob\nsasl.password=\n")

    assert (security.protocol, security.login) == ("SASL_PLAINTEXT", Login("PLAIN", "bob", ""))


def test_no_file_and_plaintext_mean_no_tls_and_no_login(tmp_path: Path) -> None:
    assert read(tmp_path, "# nothing but a comment\n") == ClientSecurity()
    assert read(tmp_path, "security.protocol=PLAINTEXT\n") == ClientSecurity()


def test_tls_trusts_the_trust_store_and_checks_host_names(tmp_path: Path, certificates: TestCertificates) -> None:
    ca = os.path.relpath(certificates.ca_path, tmp_path)  # read from the properties file's directory
    security = read(tmp_path, f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={ca}\n")

    assert security.tls is not None and security.login is None
    assert security.tls.check_hostname and security.tls.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in security.tls.get_ca_certs()] == [((("organizationName", "kafkapy test"),), (("commonName", "kafkapy test CA"),))]


def test_an_empty_endpoint_identification_algorithm_turns_the_host_name_check_off(tmp_path: Path,
                                                                                   certificates: TestCertificates) -> None:
    security = read(tmp_path, f"security.protocol=SASL_SSL\nssl.ca.location={certificates.ca_path}\n"
                              "ssl.endpoint.identification.algorithm=\nsasl.mechanism=SCRAM-SHA-256\n" + SCRAM_JAAS)

    assert security.tls is not None and not security.tls.check_hostname
    assert security.tls.verify_mode == ssl.CERT_REQUIRED  # the certificate is still verified
    assert security.login == Login("SCRAM-SHA-256", "alice", "s3cr=t;")


def test_a_pem_key_store_or_librdkafkas_certificate_and_key_load(tmp_path: Path, certificates: TestCertificates) -> None:
    certificate, key = certificates.client("carol")
    read(tmp_path, f"security.protocol=SSL\nssl.ca.location={certificates.ca_path}\n"
                   f"ssl.certificate.location={certificate}\nssl.key.location={key}\n")
    read(tmp_path, f"security.protocol=SSL\nssl.truststore.location={certificates.ca_path}\n"
                   f"ssl.keystore.type=PEM\nssl.keystore.location={certificates.server()}\n")

    assert "ssl.key.location without ssl.certificate.location" in refusal(
        tmp_path, f"security.protocol=SSL\nssl.ca.location={certificates.ca_path}\nssl.key.location={key}\n")


@pytest.mark.parametrize(("text", "said"), [
    ("security.protocol=SASL_SSLX\n", "security.protocol 'SASL_SSLX' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ("security.protocol=SASL_PLAINTEXT\nsasl.username=a\nsasl.password=b\n",
     "sasl.mechanism GSSAPI is not one kafkapy's client speaks (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"),
    ("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=a\n",
     "SASL needs a username and a password: sasl.jaas.config, or sasl.username and sasl.password"),
    ("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n" + SCRAM_JAAS,
     "sasl.jaas.config: PLAIN logs in with org.apache.kafka.common.security.plain.PlainLoginModule, "
     "not org.apache.kafka.common.security.scram.ScramLoginModule"),
    ("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=x required username=\"a\"\n",
     "Invalid JAAS config in sasl.jaas.config"),
    ("security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=x.jks\n",
     "ssl.truststore.type JKS: kafkapy's client reads PEM files only"),
    ("security.protocol=SSL\nssl.keystore.key=-----BEGIN\n", "ssl.keystore.key: kafkapy's client takes the certificate and key as files"),
    ("security.protocol=SSL\nssl.endpoint.identification.algorithm=ldap\n", "ssl.endpoint.identification.algorithm 'ldap'"),
    ("client.dns.lookup=use_all_dns_ips\n", "unknown client configuration key 'client.dns.lookup'"),
])
def test_settings_the_client_cannot_honour_are_refused_naming_the_file_and_key(tmp_path: Path, text: str, said: str) -> None:
    message = refusal(tmp_path, text)

    assert message.startswith(f"{tmp_path / 'client.properties'}: ") and said in message


def test_a_trust_store_that_does_not_exist_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    assert "No such file" in refusal(tmp_path, "security.protocol=SSL\nssl.truststore.location=absent.pem\n")
    with pytest.raises(SecurityConfigError, match="cannot read the client properties .*absent.properties: No such file"):
        ClientSecurity.read(tmp_path / "absent.properties")


def test_properties_continue_lines_ending_in_an_odd_number_of_backslashes_as_java_reads_them() -> None:
    text = "a = one \\\n    two\nb=ends in a backslash\\\\\nc=3\n# a comment ending in \\\nd=4\ne: last\\"

    assert load_properties(text) == {"a": "one two", "b": "ends in a backslash\\\\", "c": "3", "d": "4", "e": "last"}


def test_every_tool_that_takes_command_config_connects_with_it() -> None:
    # A tool given --command-config (add_bootstrap_option adds it) and connecting with
    # Client(args.bootstrap) would ignore it: the secured cluster would see a plaintext client.
    tools = Path(__file__).resolve().parent.parent / "kafkapy" / "tools"
    ignoring = [path.name for path in sorted(tools.glob("*.py"))
                if "add_bootstrap_option" in (source := path.read_text()) and "Client(args.bootstrap)" in source]

    assert ignoring == []
