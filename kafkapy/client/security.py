"""How the client reaches a secured cluster: TLS (the CA it trusts, the certificate it
presents, host names checked) and the SASL login, read from a file of Kafka's client
properties, as Kafka's tools read `--command-config`:

    security.protocol=SASL_SSL
    sasl.mechanism=SCRAM-SHA-256
    sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\
        username="alice" password="alice-secret";
    ssl.truststore.type=PEM
    ssl.truststore.location=ca.pem

librdkafka's names for the same settings are read too (`sasl.username`, `sasl.password`,
`ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location`), so one file serves
both kinds of client. Key and trust stores are PEM: the JVM's JKS and PKCS12 stores are
refused with what to use instead."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, load_properties
from ..security.jaas import parse_jaas_config
from .connection import ClientError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# The login modules whose username and password options are a SASL login, by mechanism.
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
_KNOWN_KEYS = (
    "security.protocol", "sasl.mechanism", "sasl.jaas.config", "sasl.username", "sasl.password",
    "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.certificates", "ssl.ca.location",
    "ssl.keystore.type", "ssl.keystore.location",
    "ssl.certificate.location", "ssl.key.location", "ssl.key.password", "ssl.endpoint.identification.algorithm",
)


class SecurityConfigError(ClientError):
    """Client properties the client cannot use: the message names the file and the key."""


@dataclass(frozen=True)
class Login:
    mechanism: str
    username: str
    password: str


@dataclass(frozen=True)
class ClientSecurity:
    """The TLS context connections are wrapped in (None: plaintext) and the SASL login
    they authenticate with (None: no SASL)."""

    protocol: str = "PLAINTEXT"
    tls: ssl.SSLContext | None = None
    login: Login | None = None

    @classmethod
    def read(cls, path: str | Path) -> ClientSecurity:
        """The settings of a properties file; SecurityConfigError when a key is unknown, a
        value unusable or a file it names unreadable. Relative file names are read from
        the file's directory. Reads the files named: call it before serving, or in a
        worker thread."""
        path = Path(path)
        try:
            properties = load_properties(path.read_text())
        except OSError as e:
            raise SecurityConfigError(f"cannot read the client properties {path}: {e.strerror}") from None
        try:
            return cls.from_properties(properties, path.parent)
        except (ConfigError, ssl.SSLError, OSError) as e:
            raise SecurityConfigError(f"{path}: {e}") from None

    @classmethod
    def from_properties(cls, properties: dict[str, str], directory: Path = Path()) -> ClientSecurity:
        for key in ("ssl.keystore.certificate.chain", "ssl.keystore.key"):
            if key in properties:
                raise ConfigError(f"{key}: kafkapy's client takes the certificate and key as files (ssl.keystore.location, "
                                  "or ssl.certificate.location and ssl.key.location)")
        unknown = sorted(set(properties) - set(_KNOWN_KEYS))
        if unknown:
            raise ConfigError(f"unknown client configuration key {unknown[0]!r}; kafkapy's client takes {', '.join(_KNOWN_KEYS)}")
        protocol = properties.get("security.protocol", "PLAINTEXT").upper()
        if protocol not in PROTOCOLS:
            raise ConfigError(f"security.protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
        tls = _tls_context(properties, directory) if protocol in ("SSL", "SASL_SSL") else None
        login = _login(properties) if protocol.startswith("SASL_") else None
        return cls(protocol, tls, login)


PLAINTEXT = ClientSecurity()


def _login(properties: dict[str, str]) -> Login:
    from ..security.client_login import MECHANISMS  # the mechanisms' code only when SASL is asked for

    # Kafka's default mechanism is GSSAPI, which kafkapy's client does not speak: say so.
    mechanism = properties.get("sasl.mechanism", "GSSAPI").upper()
    if mechanism not in MECHANISMS:
        raise ConfigError(f"sasl.mechanism {mechanism} is not one kafkapy's client speaks ({', '.join(MECHANISMS)})")
    jaas = properties.get("sasl.jaas.config")
    if jaas is not None:
        module = parse_jaas_config(jaas)
        if module.name != _LOGIN_MODULES[mechanism]:
            raise ConfigError(f"sasl.jaas.config: {mechanism} logs in with {_LOGIN_MODULES[mechanism]}, not {module.name}")
        username, password = module.options.get("username"), module.options.get("password")
        where = "the options of sasl.jaas.config"
    else:
        username, password = properties.get("sasl.username"), properties.get("sasl.password")
        where = "sasl.jaas.config, or sasl.username and sasl.password"
    if not username or password is None:
        raise ConfigError(f"SASL needs a username and a password: {where}")
    return Login(mechanism, username, password)


def _tls_context(properties: dict[str, str], directory: Path) -> ssl.SSLContext:
    """A client's context as Kafka's clients make one: the server's certificate verified
    against the trust store given (the system's without one), its host name checked unless
    ssl.endpoint.identification.algorithm is empty, and the key store's certificate
    presented to a broker that asks for one."""
    for store_type in ("ssl.truststore.type", "ssl.keystore.type"):
        if properties.get(store_type, "PEM").upper() != "PEM":
            raise ConfigError(f"{store_type} {properties[store_type]}: kafkapy's client reads PEM files only (set "
                              f"{store_type}=PEM and convert the store, e.g. with keytool -exportcert -rfc or openssl pkcs12)")

    def located(key: str) -> str | None:
        value = properties.get(key)
        return None if value is None else str(directory / value)

    context = ssl.create_default_context(
        cafile=located("ssl.truststore.location") or located("ssl.ca.location"),
        cadata=properties.get("ssl.truststore.certificates"))
    identification = properties.get("ssl.endpoint.identification.algorithm", "https").lower()
    if identification not in ("https", ""):
        raise ConfigError(f"ssl.endpoint.identification.algorithm {identification!r}: 'https' (check the host name) or empty")
    context.check_hostname = identification == "https"
    password = properties.get("ssl.key.password")
    keystore = located("ssl.keystore.location")
    certificate = keystore or located("ssl.certificate.location")
    key: str | None = None if keystore else located("ssl.key.location")
    if key and not certificate:
        raise ConfigError("ssl.key.location without ssl.certificate.location")
    if certificate:
        context.load_cert_chain(certificate, key, password)
    return context
