"""The client settings for a secured cluster, read from a properties file of librdkafka's
keys and handed to each client library in its own words.

    security.protocol=SASL_SSL
    sasl.mechanism=SCRAM-SHA-256
    sasl.username=alice
    sasl.password=alice-secret
    ssl.ca.location=ca.pem
    # mutual TLS: the client's certificate and key
    ssl.certificate.location=client.pem
    ssl.key.location=client.key

OAUTHBEARER presents unsecured tokens, as librdkafka makes them from its settings (and
kafka-python from a token provider the adapter gives it):

    sasl.mechanism=OAUTHBEARER
    enable.sasl.oauthbearer.unsecure.jwt=true
    sasl.oauthbearer.config=principal=alice scope=kafka lifeSeconds=600

Workers and children are given the file's path, never the secrets on a command line.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import load_properties
from ..security.oauthbearer import decode_segment, unsecured_token

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
# The attributes of librdkafka's sasl.oauthbearer.config that make an unsecured token.
_TOKEN_ATTRIBUTES = ("principal", "principalClaimName", "scope", "scopeClaimName", "lifeSeconds")
# librdkafka's lifeSeconds when the config names none.
DEFAULT_TOKEN_LIFETIME_S = "3600"
TokenSource = Callable[[], str]
# librdkafka's key -> the field of ClientSecurity it sets (sasl.mechanisms is its older alias).
_KEYS = {
    "security.protocol": "protocol", "sasl.mechanism": "mechanism", "sasl.mechanisms": "mechanism",
    "sasl.username": "username", "sasl.password": "password", "ssl.ca.location": "ca_location",
    "ssl.certificate.location": "certificate_location", "ssl.key.location": "key_location",
    "ssl.key.password": "key_password", "sasl.oauthbearer.config": "oauthbearer_config",
    "enable.sasl.oauthbearer.unsecure.jwt": "unsecured_jwt",
}
_FILES = {"ca_location": "ssl.ca.location", "certificate_location": "ssl.certificate.location",
          "key_location": "ssl.key.location"}


class SecurityFileError(ValueError):
    """A security file kafkapy compat cannot use: the message says what is wrong."""


@dataclass(frozen=True)
class ClientSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    ca_location: str | None = None
    certificate_location: str | None = None
    key_location: str | None = None
    key_password: str | None = None
    oauthbearer_config: str | None = None
    unsecured_jwt: str | None = None
    # Tokens are made as if the time were this much later: a client whose clock is behind
    # presents tokens that expired already (not a setting of the file).
    token_clock_offset_s: float = 0.0
    # The file read, for the processes that run the clients to read again.
    source: str | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def user(self) -> str | None:
        """Who the settings authenticate as: sasl.username, or the principal of the tokens."""
        if self.mechanism == "OAUTHBEARER":
            return token_attributes(self.oauthbearer_config or "").get("principal")
        return self.username

    @classmethod
    def read(cls, path: str | Path) -> ClientSecurity:
        """The settings of the file; SecurityFileError for a key it does not know, a
        protocol or mechanism it does not know, SASL without a user, or a file named in
        it that does not exist (relative names are read from the file's directory)."""
        path = Path(path)
        try:
            properties = load_properties(path.read_text())
        except OSError as e:
            raise SecurityFileError(f"cannot read {path}: {e.strerror}") from e
        fields: dict[str, Any] = {"source": str(path.resolve())}
        for key, value in properties.items():
            if key not in _KEYS:
                raise SecurityFileError(f"{path}: unknown key {key!r}; known: {', '.join(sorted(_KEYS))}")
            fields[_KEYS[key]] = value
        for name, key in _FILES.items():
            if fields.get(name):
                located = path.parent / fields[name]
                if not located.is_file():
                    raise SecurityFileError(f"{path}: {key} {fields[name]} does not exist")
                fields[name] = str(located.resolve())
        security = cls(**{**fields, "protocol": fields.get("protocol", "PLAINTEXT").upper()})
        security._check(path)
        return security

    def _check(self, path: Path) -> None:
        if self.protocol not in PROTOCOLS:
            raise SecurityFileError(f"{path}: security.protocol {self.protocol} is not one of {', '.join(PROTOCOLS)}")
        if self.sasl and self.mechanism == "OAUTHBEARER":
            self._check_oauthbearer(path)
        elif self.sasl and (self.mechanism not in MECHANISMS or not self.username or self.password is None):
            raise SecurityFileError(f"{path}: {self.protocol} needs sasl.mechanism (one of {', '.join(MECHANISMS)}), "
                                    "sasl.username and sasl.password")
        if bool(self.certificate_location) != bool(self.key_location):
            raise SecurityFileError(f"{path}: a client certificate needs both ssl.certificate.location and ssl.key.location")

    def _check_oauthbearer(self, path: Path) -> None:
        if (self.unsecured_jwt or "").lower() != "true" or not self.oauthbearer_config:
            raise SecurityFileError(f"{path}: OAUTHBEARER presents unsecured tokens: it needs "
                                    "enable.sasl.oauthbearer.unsecure.jwt=true and sasl.oauthbearer.config=principal=<name>")
        try:
            attributes = token_attributes(self.oauthbearer_config)
            if int(attributes.get("lifeSeconds", DEFAULT_TOKEN_LIFETIME_S)) <= 0:
                raise ValueError("lifeSeconds must be positive")
        except ValueError as e:
            raise SecurityFileError(f"{path}: sasl.oauthbearer.config: {e}") from e
        if "principal" not in attributes:
            raise SecurityFileError(f"{path}: sasl.oauthbearer.config needs principal=<name>")

    def unsecured_token(self) -> str:
        """An unsecured token issued now, as librdkafka makes one from sasl.oauthbearer.config."""
        attributes = token_attributes(self.oauthbearer_config or "")
        now = int(time.time() + self.token_clock_offset_s)
        claims: dict[str, object] = {attributes.get("principalClaimName", "sub"): attributes["principal"], "iat": now,
                                     "exp": now + int(attributes.get("lifeSeconds", DEFAULT_TOKEN_LIFETIME_S))}
        if "scope" in attributes:
            claims[attributes.get("scopeClaimName", "scope")] = attributes["scope"].split(",")
        return unsecured_token(claims)

    def confluent(self) -> dict[str, Any]:
        """confluent-kafka's configuration entries."""
        settings: dict[str, Any] = {"security.protocol": self.protocol}
        if self.sasl and self.mechanism == "OAUTHBEARER":
            settings.update(self._confluent_oauthbearer())
        elif self.sasl:
            settings.update({"sasl.mechanism": self.mechanism, "sasl.username": self.username, "sasl.password": self.password})
        for key, value in (("ssl.ca.location", self.ca_location), ("ssl.certificate.location", self.certificate_location),
                           ("ssl.key.location", self.key_location), ("ssl.key.password", self.key_password)):
            if value is not None and self.tls:
                settings[key] = value
        return settings

    def kafka_python(self) -> dict[str, Any]:
        """kafka-python's keyword arguments."""
        settings: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl and self.mechanism == "OAUTHBEARER":
            settings.update({"sasl_mechanism": "OAUTHBEARER",
                             "sasl_oauth_token_provider": kafka_python_token_provider(self.unsecured_token)})
        elif self.sasl:
            settings.update({"sasl_mechanism": self.mechanism, "sasl_plain_username": self.username,
                             "sasl_plain_password": self.password})
        for key, value in (("ssl_cafile", self.ca_location), ("ssl_certfile", self.certificate_location),
                           ("ssl_keyfile", self.key_location), ("ssl_password", self.key_password)):
            if value is not None and self.tls:
                settings[key] = value
        return settings

    def _confluent_oauthbearer(self) -> dict[str, Any]:
        if not self.token_clock_offset_s:
            return {"sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
                    "sasl.oauthbearer.config": self.oauthbearer_config}
        # librdkafka makes its tokens by its own clock: it is handed them.
        return confluent_token_settings(self.unsecured_token)

    def ssl_context(self) -> ssl.SSLContext:
        """A client's TLS context: the CA given (the system's without one), the client's
        certificate if given, host names checked as Kafka's clients check them."""
        context = ssl.create_default_context(cafile=self.ca_location)
        if self.certificate_location:
            context.load_cert_chain(self.certificate_location, self.key_location, self.key_password)
        return context


def token_attributes(config: str) -> dict[str, str]:
    """The attributes of librdkafka's sasl.oauthbearer.config ("principal=alice scope=a,b");
    ValueError for one that kafkapy compat does not make tokens with."""
    attributes: dict[str, str] = {}
    for item in config.split():
        name, equals, value = item.partition("=")
        if not equals or name not in _TOKEN_ATTRIBUTES:
            raise ValueError(f"{item!r} is not one of {', '.join(a + '=...' for a in _TOKEN_ATTRIBUTES)}")
        attributes[name] = value
    return attributes


def confluent_token_settings(token: TokenSource) -> dict[str, object]:
    """confluent-kafka's settings for a client that presents the tokens `token` makes."""
    def refresh(_config: str) -> tuple[str, float]:
        value = token()
        expiry = float(decode_segment(value.split(".")[1]).get("exp", 0))  # type: ignore[arg-type]
        # librdkafka takes no token it thinks expired; telling it a later expiry lets a test
        # show what the broker answers to one.
        return value, max(expiry, time.time() + 60)
    return {"sasl.mechanism": "OAUTHBEARER", "oauth_cb": refresh}


def kafka_python_token_provider(token: TokenSource) -> object:
    """kafka-python's token provider for the tokens `token` makes."""
    from kafka.net.sasl.oauth import AbstractTokenProvider  # only where kafka-python runs

    class Provider(AbstractTokenProvider):
        def token(self) -> str:
            return token()

    return Provider()


PLAINTEXT = ClientSecurity()
