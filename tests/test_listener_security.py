"""listener.security.protocol.map, the ssl.* keys and their per-listener overrides: checked
at start, and turned into each SSL listener's TLS context."""

from __future__ import annotations

import ssl

import pytest

from kafkapy.config import BrokerConfig, ConfigError
from kafkapy.listener_config import console_listener, listener_setting, security_protocol_map
from kafkapy.server.tls import inter_broker_client_tls, listener_tls, quorum_tls
from kafkapy.testing.certificates import TestCertificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return TestCertificates(tmp_path_factory.mktemp("certificates"))


JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="secret";'


def ssl_config(certificates: TestCertificates, **more: object) -> BrokerConfig:
    return BrokerConfig({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM",
                         "ssl.keystore.location": str(certificates.server()), **more})


def refusal(values: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as e:
        BrokerConfig(values)
    return str(e.value)


def test_kafka_default_map_and_controller_listeners_in_plaintext():
    config = BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                           "controller.quorum.voters": "1@127.0.0.1:9093"})
    assert security_protocol_map(config) == {"PLAINTEXT": "PLAINTEXT", "SSL": "SSL", "SASL_PLAINTEXT": "SASL_PLAINTEXT",
                                             "SASL_SSL": "SASL_SSL", "CONTROLLER": "PLAINTEXT"}


@pytest.mark.parametrize(("values", "message"), [
    ({"listeners": "CLIENTS://127.0.0.1:9092"}, "No security protocol defined for listener CLIENTS"),
    ({"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CLIENTS:TLS", "listeners": "PLAINTEXT://127.0.0.1:9092"},
     "Invalid security protocol 'TLS' for listener CLIENTS"),
    # SASL: mechanisms kafkapy serves (Kafka's default, GSSAPI, is not one), each with what it needs.
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:9092"}, "SASL mechanism GSSAPI (Kafka's default) is not served by kafkapy"),
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:9092", "sasl.enabled.mechanisms": ""}, "sasl.enabled.mechanisms is empty"),
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:9092", "sasl.enabled.mechanisms": "PLAIN"},
     "Could not find a 'KafkaServer' or 'sasl_plaintext.KafkaServer' entry in the JAAS configuration"),
    ({"listeners": "SASL_PLAINTEXT://127.0.0.1:9092", "sasl.enabled.mechanisms": "PLAIN",
      "listener.name.sasl_plaintext.plain.sasl.jaas.config": "PlainLoginModule required user_a=\"b\""},
     "expected ';' after the login module's options"),
    ({"listeners": "SASL_SSL://127.0.0.1:9092", "sasl.enabled.mechanisms": "PLAIN", "sasl.jaas.config": "M required;"},
     "ssl.keystore.type=JKS is not supported"),
    ({"listener.name.plaintext.plain.num.partitions": "3"}, "Unknown configuration key"),
    ({"listeners": "SSL://127.0.0.1:9092"}, "ssl.keystore.type=JKS is not supported by kafkapy, which reads PEM key stores only"),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.type": "PEM"}, "SSL listener SSL has no key store"),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.type": "PKCS12", "ssl.keystore.location": "x.p12"},
     "ssl.keystore.type=PKCS12 is not supported"),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.key": "k", "ssl.keystore.certificate.chain": "c"},
     "SSL private key can be specified only for PEM, but key store type is JKS."),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.type": "PEM", "ssl.keystore.key": "k"},
     "ssl.keystore.certificate.chain and ssl.keystore.key must be given together"),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.type": "PEM", "ssl.keystore.location": "a", "ssl.keystore.password": "p"},
     "SSL key store password cannot be specified with PEM format"),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.type": "PEM", "ssl.keystore.location": "a", "ssl.truststore.location": "t"},
     "ssl.truststore.type=JKS is not supported by kafkapy"),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.type": "PEM", "ssl.keystore.location": "a", "ssl.enabled.protocols": "TLSv1.4"},
     "ssl.enabled.protocols must list some of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.type": "PEM", "ssl.keystore.location": "a", "ssl.client.auth": "maybe"},
     "Invalid value maybe for configuration ssl.client.auth"),
    ({"listeners": "SSL://127.0.0.1:9092", "ssl.keystore.type": "PEM", "ssl.keystore.location": "a",
      "ssl.principal.mapping.rules": "RULE:x/y/Q"}, "Invalid rule"),
    # Per-listener overrides: of ssl.* keys, for a listener that exists, named in lower case.
    ({"listener.name.plaintext.num.partitions": "3"}, "Unknown configuration key 'listener.name.plaintext.num.partitions': kafkapy takes ssl.* and sasl.* keys per listener"),
    ({"listener.name.secure.ssl.client.auth": "required"}, "overrides a key for listener 'secure', which is not in listeners"),
    ({"listener.name.PLAINTEXT.ssl.client.auth": "required"}, "the override names it in lower case"),
    # Brokers of a cluster log in to each other on a SASL inter-broker listener with a mechanism it enables...
    ({"listeners": "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093,2@127.0.0.1:9095",
      "ssl.keystore.type": "PEM", "ssl.keystore.location": "a", "sasl.enabled.mechanisms": "SCRAM-SHA-256"},
     "sasl.mechanism.inter.broker.protocol=GSSAPI must be enabled on the inter-broker listener SASL_SSL"),
    # ... and the username and password of its JAAS configuration.
    ({"listeners": "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093,2@127.0.0.1:9095",
      "ssl.keystore.type": "PEM", "ssl.keystore.location": "a", "sasl.enabled.mechanisms": "PLAIN",
      "sasl.mechanism.inter.broker.protocol": "PLAIN",
      "listener.name.sasl_ssl.plain.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required user_a="b";'},
     "needs the username and password options"),
    ({"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093",
      "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL"}, "Controller listener CONTROLLER is SASL_SSL"),
    # A broker-only node connects to the controllers with their listener's protocol.
    ({"listeners": "PLAINTEXT://127.0.0.1:9092", "process.roles": "broker", "controller.quorum.voters": "1@127.0.0.1:9093",
      "node.id": 2, "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"},
     "Controller listener CONTROLLER is SASL_PLAINTEXT"),
    # An SSL controller listener needs what any SSL listener needs.
    ({"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093",
      "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL", "ssl.keystore.type": "PEM"},
     "SSL listener CONTROLLER has no key store"),
])
def test_refused_at_start(values, message):
    assert message in refusal(values)


def test_the_console_beside_the_broker_connects_to_its_first_plaintext_broker_listener():
    config = BrokerConfig({"listeners": "CONTROLLER://127.0.0.1:9093,SASL://127.0.0.1:9094,CLIENTS://127.0.0.1:9092",
                           "controller.quorum.voters": "1@127.0.0.1:9093", "kafkapy.console.port": 0,
                           "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT,CLIENTS:PLAINTEXT",
                           "listener.name.sasl.plain.sasl.jaas.config": JAAS, "sasl.enabled.mechanisms": "PLAIN"})
    assert (console_listener(config).name, console_listener(config).port) == ("CLIENTS", 9092)
    message = refusal({"listeners": "SASL_PLAINTEXT://127.0.0.1:9094", "kafkapy.console.port": 8080,
                       "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS, "sasl.enabled.mechanisms": "PLAIN"})
    assert message.startswith("kafkapy.console.port: the console connects to its broker over a PLAINTEXT listener")
    assert "SASL_PLAINTEXT://127.0.0.1:9094" in message
    # Off (the default), the same listeners are accepted.
    BrokerConfig({"listeners": "SASL_PLAINTEXT://127.0.0.1:9094",
                  "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS, "sasl.enabled.mechanisms": "PLAIN"})


def test_an_override_wins_for_its_listener_only(certificates):
    config = ssl_config(certificates, **{"listeners": "SSL://127.0.0.1:0,SECURE://127.0.0.1:0",
                                         "listener.security.protocol.map": "SSL:SSL,SECURE:SSL",
                                         "listener.name.secure.ssl.client.auth": "required",
                                         "ssl.truststore.type": "PEM", "ssl.truststore.location": str(certificates.ca_path)})
    assert listener_setting(config, "SECURE", "ssl.client.auth") == "required"
    assert listener_setting(config, "SSL", "ssl.client.auth") == "none"
    contexts = listener_tls(config)
    assert contexts["SECURE"].context.verify_mode == ssl.CERT_REQUIRED
    assert contexts["SSL"].context.verify_mode == ssl.CERT_NONE


def test_key_store_in_the_values_written_on_one_line(certificates):
    pem = certificates.server().read_text()
    key = pem[:pem.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----")]
    chain = pem[len(key):]
    # A properties file holds a value on one line.
    config = BrokerConfig({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM",
                           "ssl.keystore.key": " ".join(key.split("\n")), "ssl.keystore.certificate.chain": " ".join(chain.split("\n")),
                           "ssl.client.auth": "requested", "ssl.truststore.type": "PEM",
                           "ssl.truststore.certificates": certificates.ca_path.read_text()})
    context = listener_tls(config)["SSL"].context
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert [c["subject"] for c in context.get_ca_certs()] == [((("organizationName", "kafkapy test"),), (("commonName", "kafkapy test CA"),))]


def test_a_key_store_that_cannot_be_read_is_a_start_error(tmp_path):
    config = BrokerConfig({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM", "ssl.keystore.location": str(tmp_path / "none.pem")})
    with pytest.raises(ConfigError, match="SSL listener SSL: cannot load its key store"):
        listener_tls(config)


def test_versions_from_enabled_protocols_capped_by_ssl_protocol(certificates):
    context = listener_tls(ssl_config(certificates))["SSL"].context
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    context = listener_tls(ssl_config(certificates, **{"ssl.protocol": "TLSv1.2"}))["SSL"].context
    assert context.maximum_version == ssl.TLSVersion.TLSv1_2
    context = listener_tls(ssl_config(certificates, **{"ssl.enabled.protocols": "TLSv1.3"}))["SSL"].context
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_cipher_suites_by_iana_name(certificates):
    config = ssl_config(certificates, **{"ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"})
    context = listener_tls(config)["SSL"].context
    # Only TLS 1.2 suites listed: TLS 1.3 is left out, as in Java.
    assert context.maximum_version == ssl.TLSVersion.TLSv1_2
    assert [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"] == ["ECDHE-ECDSA-AES256-GCM-SHA384"]
    with pytest.raises(ConfigError, match="names some TLS 1.3 suites but not all"):
        listener_tls(ssl_config(certificates, **{"ssl.cipher.suites": "TLS_AES_128_GCM_SHA256"}))
    with pytest.raises(ConfigError, match="cipher suite TLS_FOO in ssl.cipher.suites is unknown"):
        listener_tls(ssl_config(certificates, **{"ssl.cipher.suites": "TLS_FOO"}))


def test_passwords_are_not_shown_by_describe_configs(certificates):
    from types import SimpleNamespace

    from kafkapy.handlers.configs import describe_broker

    config = ssl_config(certificates, **{"ssl.key.password": "secret"})
    entries = {e["name"]: e for e in describe_broker(config, "1", {"ssl.key.password", "ssl.client.auth"}, SimpleNamespace())}
    assert (entries["ssl.key.password"]["value"], entries["ssl.key.password"]["is_sensitive"]) == (None, True)
    assert (entries["ssl.client.auth"]["value"], entries["ssl.client.auth"]["is_sensitive"]) == ("none", False)


def test_nodes_connect_to_each_other_as_clients_that_check_the_other_and_present_their_own_certificate(certificates):
    config = BrokerConfig({
        "listeners": "SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093", "controller.quorum.voters": "1@127.0.0.1:9093",
        "listener.security.protocol.map": "SSL:SSL,CONTROLLER:SSL", "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certificates.server()), "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certificates.ca_path), "listener.name.controller.ssl.enabled.protocols": "TLSv1.3",
    })
    inter_broker, quorum = inter_broker_client_tls(config), quorum_tls(config)

    assert inter_broker is not None and quorum is not None and quorum.listener is not None
    for context in (inter_broker, quorum.client):
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    # Each from its own listener's settings.
    assert quorum.client.minimum_version == ssl.TLSVersion.TLSv1_3
    assert inter_broker.minimum_version == ssl.TLSVersion.TLSv1_2
    assert quorum.listener.context.verify_mode == ssl.CERT_NONE  # ssl.client.auth=none, Kafka's default


def test_plaintext_between_nodes_needs_no_tls():
    config = BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
                           "controller.quorum.voters": "1@127.0.0.1:9093"})

    assert inter_broker_client_tls(config) is None and quorum_tls(config) is None
