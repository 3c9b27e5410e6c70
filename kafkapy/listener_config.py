"""Listeners' security: listener.security.protocol.map, the ssl.* keys and their
per-listener overrides (`listener.name.<listener>.<key>`), checked at start as Kafka's
KafkaConfig and DefaultSslEngineFactory check them, and the sasl.* keys
of SASL listeners, and kafkapy's refusal of what it does not serve yet (JKS and PKCS12
stores, SASL to the controllers, SASL mechanisms other than PLAIN, SCRAM and OAUTHBEARER,
server callback handler classes other than Kafka's OAUTHBEARER validators)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from .config import LISTENER_PREFIX, ConfigError, listener_override
from .kraft_config import Listener, parse_listeners

if TYPE_CHECKING:
    from .config import BrokerConfig

# In the order of Kafka's SecurityProtocol ids, which broker registrations carry.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
JWKS_URL_SCHEMES = ("https", "http", "file")
# Protocol names TLS knows, in order, as ssl.protocol and ssl.enabled.protocols spell them.
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
# ssl.protocol may also name the family, which caps nothing.
_TLS_FAMILIES = ("TLS", "SSL")


def listener_setting(config: BrokerConfig, listener_name: str, key: str) -> object:
    """A key's value for one listener: its `listener.name.<listener>.<key>` override, if set,
    over the broker-wide value."""
    found = config.lookup(f"{LISTENER_PREFIX}{listener_name.lower()}.{key}")
    return found[0] if found is not None else config.get(key)


def security_protocol_map(config: BrokerConfig) -> dict[str, str]:
    """Each listener name's security protocol. As Kafka in KRaft mode, when the map is not
    set explicitly, a controller listener it does not name is PLAINTEXT."""
    mapping: dict[str, str] = {}
    for entry in config.strings("listener.security.protocol.map"):
        name, colon, protocol = entry.partition(":")
        name, protocol = name.strip(), protocol.strip()
        if not colon or not name or not protocol:
            raise ConfigError(f"Invalid listener.security.protocol.map entry '{entry}': expected LISTENER_NAME:SECURITY_PROTOCOL")
        if protocol.upper() not in SECURITY_PROTOCOLS:
            raise ConfigError(f"Invalid security protocol '{protocol}' for listener {name} in listener.security.protocol.map: "
                              f"expected one of {', '.join(SECURITY_PROTOCOLS)}")
        if name in mapping:
            raise ConfigError(f"Listener {name} appears more than once in listener.security.protocol.map")
        mapping[name] = protocol.upper()
    if config.lookup("listener.security.protocol.map") is None:
        for name in config.strings("controller.listener.names"):
            mapping.setdefault(name, "PLAINTEXT")
    return mapping


def listener_protocol(config: BrokerConfig, listener: Listener) -> str:
    protocol = security_protocol_map(config).get(listener.name)
    if protocol is None:
        raise ConfigError(f"No security protocol defined for listener {listener.name} "
                          "(add it to listener.security.protocol.map)")
    return protocol


def validate_listener_security(config: BrokerConfig) -> None:
    """Every listener has a known security protocol that kafkapy serves, and every SSL
    listener what TLS needs; per-listener overrides name a listener that exists."""
    listeners = parse_listeners(config.strings("listeners"))
    advertised = parse_listeners(config.strings("advertised.listeners"))
    names = {lst.name for lst in listeners}
    for key in config.explicit:
        split = listener_override(key)
        if split is not None and split[0] not in {name.lower() for name in names}:
            raise ConfigError(f"{key} overrides a key for listener '{split[0]}', which is not in listeners "
                              f"({', '.join(sorted(names))}; the override names it in lower case)")
    controller_names = config.strings("controller.listener.names")
    for listener in listeners + advertised:
        listener_protocol(config, listener)  # refuses a listener the map does not name
    # A broker-only node has no controller listener of its own, but connects to the controllers' with its protocol.
    for name in controller_names:
        protocol = security_protocol_map(config).get(name, "PLAINTEXT")
        if protocol.startswith("SASL_"):
            raise ConfigError(f"Controller listener {name} is {protocol}: kafkapy's nodes do not authenticate "
                              "to the controllers with SASL yet; map it to PLAINTEXT or SSL")
    # A broker registers its advertised listeners: each must be one it listens on.
    if not {lst.name for lst in advertised} <= names:
        raise ConfigError("advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. "
                          f"Found {','.join(lst.name for lst in advertised)}. The valid options based on the current "
                          f"configuration are {','.join(lst.name for lst in listeners)}")
    validate_inter_broker_listener(config)
    inter_broker_login(config)  # refuses a SASL inter-broker listener without what the brokers log in with
    for listener in listeners:
        protocol = listener_protocol(config, listener)
        if listener.name in controller_names:
            if protocol == "SSL":
                validate_ssl_settings(config, listener.name)
            continue
        if protocol in ("SSL", "SASL_SSL"):
            validate_ssl_settings(config, listener.name)
        if protocol.startswith("SASL_"):
            validate_sasl_settings(config, listener.name)


def console_listener(config: BrokerConfig) -> Listener:
    """The listener the console served beside the broker (kafkapy.console.port) connects
    to: its client speaks plaintext only, so a broker listener mapped to PLAINTEXT."""
    if "broker" not in config.strings("process.roles"):
        raise ConfigError("kafkapy.console.port: the console is served beside a broker, and this node's "
                          f"process.roles ({','.join(config.strings('process.roles'))}) has none")
    controller_names = config.strings("controller.listener.names")
    for listener in parse_listeners(config.strings("listeners")):
        if listener.name not in controller_names and listener_protocol(config, listener) == "PLAINTEXT":
            return listener
    raise ConfigError("kafkapy.console.port: the console connects to its broker over a PLAINTEXT listener, and "
                      f"listeners ({','.join(config.strings('listeners'))}) has none that is not a controller's")


def controller_listener_name(config: BrokerConfig) -> str:
    """The listener nodes reach the controllers on: the first of controller.listener.names, as Kafka."""
    return config.strings("controller.listener.names")[0]


def security_protocol_id(config: BrokerConfig, listener: Listener) -> int:
    """The listener's security protocol as Kafka's SecurityProtocol id."""
    return SECURITY_PROTOCOLS.index(listener_protocol(config, listener))


def broker_listener_names(config: BrokerConfig, key: str = "listeners") -> list[str]:
    """The names of the listeners in `key` (listeners or advertised.listeners) that are not the controllers'."""
    controller_names = config.strings("controller.listener.names")
    return [lst.name for lst in parse_listeners(config.strings(key)) if lst.name not in controller_names]


def inter_broker_listener_name(config: BrokerConfig) -> str | None:
    """The listener brokers reach each other on, as Kafka picks it: inter.broker.listener.name,
    else the listener named after security.inter.broker.protocol (PLAINTEXT by default).
    Where neither is set and no broker listener is named PLAINTEXT, Kafka refuses to start;
    kafkapy takes the first broker listener, so that a node with one SSL or SASL listener
    runs as it is. None on a controller-only node."""
    names = broker_listener_names(config)
    if not names:
        return None
    explicit = config.string_or_none("inter.broker.listener.name")
    if explicit is not None:
        return explicit
    protocol = config.lookup("security.inter.broker.protocol")
    if protocol is not None:
        return str(protocol[0]).upper()
    return "PLAINTEXT" if "PLAINTEXT" in names else names[0]


def validate_inter_broker_listener(config: BrokerConfig) -> None:
    """Kafka's checks of inter.broker.listener.name and security.inter.broker.protocol."""
    names = broker_listener_names(config, "advertised.listeners")
    if not names:
        return  # a controller-only node: kraft_config checks its listeners
    explicit = config.lookup("inter.broker.listener.name")
    protocol = config.lookup("security.inter.broker.protocol")
    if explicit is not None and protocol is not None:
        raise ConfigError("Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.")
    if protocol is not None and str(protocol[0]).upper() not in SECURITY_PROTOCOLS:
        raise ConfigError(f"Invalid value {protocol[0]} for configuration security.inter.broker.protocol: "
                          f"expected one of {', '.join(SECURITY_PROTOCOLS)}")
    name = inter_broker_listener_name(config)
    if explicit is not None and name not in security_protocol_map(config):
        raise ConfigError(f"Listener with name {name} defined in inter.broker.listener.name not found in "
                          "listener.security.protocol.map.")
    if name not in names:
        raise ConfigError("inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid "
                          f"options based on currently configured listeners are {','.join(names)}")


def inter_broker_login(config: BrokerConfig) -> tuple[str, str, str] | None:
    """(mechanism, username, password) a broker authenticates with on its SASL inter-broker
    listener: sasl.mechanism.inter.broker.protocol, enabled on that listener, and the
    username and password options of the listener's JAAS configuration for it, as Kafka's
    login modules read them. None when that listener is not SASL, or when a lone node has
    no other broker to reach."""
    from .security.jaas import parse_jaas_config  # it raises this module's ConfigError

    listener = inter_broker_listener_name(config)
    cluster = len(config.quorum_voters) > 1 or "controller" not in config.strings("process.roles")
    if not cluster or listener is None or not security_protocol_map(config).get(listener, "").startswith("SASL_"):
        return None
    mechanism = str(config.get("sasl.mechanism.inter.broker.protocol"))
    if mechanism not in enabled_mechanisms(config, listener):
        raise ConfigError(f"sasl.mechanism.inter.broker.protocol={mechanism} must be enabled on the inter-broker listener "
                          f"{listener} (sasl.enabled.mechanisms: {', '.join(enabled_mechanisms(config, listener))})")
    key = f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config"
    jaas = mechanism_setting(config, listener, mechanism, "sasl.jaas.config")
    options = parse_jaas_config(str(jaas), key).options if jaas is not None else {}
    if "username" not in options or "password" not in options:
        raise ConfigError(f"{key} (or sasl.jaas.config) needs the username and password options the broker authenticates "
                          f"to the other brokers with, over its SASL inter-broker listener {listener}")
    return mechanism, options["username"], options["password"]


def mechanism_setting(config: BrokerConfig, listener_name: str, mechanism: str, key: str) -> object:
    """A per-mechanism key's value for one listener's mechanism, as Kafka looks it up:
    `listener.name.<listener>.<mechanism>.<key>`, then the broker-wide key."""
    found = config.lookup(f"{LISTENER_PREFIX}{listener_name.lower()}.{mechanism.lower()}.{key}")
    return found[0] if found is not None else config.get(key)


def enabled_mechanisms(config: BrokerConfig, listener_name: str) -> list[str]:
    return [m.strip() for m in listener_setting(config, listener_name, "sasl.enabled.mechanisms")  # type: ignore[attr-defined]
            if m.strip()]


def validate_sasl_settings(config: BrokerConfig, listener_name: str) -> None:
    """Every enabled mechanism is one kafkapy serves, with what it needs."""
    from .security.jaas import parse_jaas_config  # it raises this module's ConfigError

    mechanisms = enabled_mechanisms(config, listener_name)
    where = f"SASL listener {listener_name}"
    if not mechanisms:
        raise ConfigError(f"{where}: sasl.enabled.mechanisms is empty: enable some of {', '.join(SASL_MECHANISMS)}")
    for mechanism in mechanisms:
        if mechanism not in SASL_MECHANISMS:
            default = " (Kafka's default)" if mechanism == "GSSAPI" else ""
            raise ConfigError(f"{where}: SASL mechanism {mechanism}{default} is not served by kafkapy: set "
                              f"sasl.enabled.mechanisms (or listener.name.{listener_name.lower()}.sasl.enabled.mechanisms) "
                              f"to some of {', '.join(SASL_MECHANISMS)}")
        jaas = mechanism_setting(config, listener_name, mechanism, "sasl.jaas.config")
        if mechanism == "PLAIN" and jaas is None:
            raise ConfigError(f"{where}: Could not find a 'KafkaServer' or '{listener_name.lower()}.KafkaServer' entry in "
                              f"the JAAS configuration: set listener.name.{listener_name.lower()}.plain.sasl.jaas.config "
                              "(or sasl.jaas.config) to org.apache.kafka.common.security.plain.PlainLoginModule required "
                              'user_<name>="<password>" ...;')
        if mechanism == "OAUTHBEARER" and jaas is None:
            raise ConfigError(f"{where}: Could not find a 'KafkaServer' or '{listener_name.lower()}.KafkaServer' entry in the "
                              f"JAAS configuration: set listener.name.{listener_name.lower()}.oauthbearer.sasl.jaas.config "
                              "(or sasl.jaas.config) to org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;")
        if jaas is not None:
            parse_jaas_config(str(jaas), f"listener.name.{listener_name.lower()}.{mechanism.lower()}.sasl.jaas.config")
        validate_callback_handler(config, listener_name, mechanism)


def validate_callback_handler(config: BrokerConfig, listener_name: str, mechanism: str) -> None:
    """sasl.server.callback.handler.class names one of Kafka's OAUTHBEARER validators, the
    signed-token one with a JWKS to check against; kafkapy loads no other class."""
    from .security.jaas import parse_jaas_config
    from .security.oauthbearer import SIGNED_TOKEN_VALIDATORS, UNSECURED_TOKEN_VALIDATOR, UnsecuredValidator

    where = f"SASL listener {listener_name}"
    handler = mechanism_setting(config, listener_name, mechanism, "sasl.server.callback.handler.class")
    key = f"listener.name.{listener_name.lower()}.{mechanism.lower()}.sasl.server.callback.handler.class"
    if handler is not None and (mechanism != "OAUTHBEARER" or handler not in SIGNED_TOKEN_VALIDATORS + (UNSECURED_TOKEN_VALIDATOR,)):
        raise ConfigError(f"{where}: {key}={handler} is not served by kafkapy, which loads no Java class: for OAUTHBEARER, "
                          f"leave it unset for unsecured tokens or set it to {SIGNED_TOKEN_VALIDATORS[0]}")
    if mechanism != "OAUTHBEARER":
        return
    url = listener_setting(config, listener_name, "sasl.oauthbearer.jwks.endpoint.url")
    if handler in SIGNED_TOKEN_VALIDATORS:
        if importlib.util.find_spec("cryptography") is None:
            raise ConfigError(f"{where}: {handler} checks signatures with the cryptography package, which is not "
                              "installed: pip install cryptography")
        if url is None:
            raise ConfigError(f"{where}: {handler} needs sasl.oauthbearer.jwks.endpoint.url (an https or file: URL of the "
                              "JSON Web Key Set that signs the tokens)")
        scheme = str(url).partition(":")[0].lower()
        if scheme not in JWKS_URL_SCHEMES:
            raise ConfigError(f"{where}: sasl.oauthbearer.jwks.endpoint.url={url}: the URL's scheme must be one of "
                              f"{', '.join(JWKS_URL_SCHEMES)}")
        return
    if url is not None:
        # Kafka's unsecured validator would ignore the key set and take any unsigned token.
        raise ConfigError(f"{where}: sasl.oauthbearer.jwks.endpoint.url is set but OAUTHBEARER tokens are validated unsecured: "
                          f"set {key}={SIGNED_TOKEN_VALIDATORS[0]}")
    jaas = mechanism_setting(config, listener_name, mechanism, "sasl.jaas.config")
    UnsecuredValidator.from_jaas(parse_jaas_config(str(jaas)) if jaas is not None else None)


def sasl_listener_names(config: BrokerConfig) -> list[str]:
    """The broker listeners that authenticate with SASL."""
    controller_names = config.strings("controller.listener.names")
    return [lst.name for lst in parse_listeners(config.strings("listeners"))
            if lst.name not in controller_names and listener_protocol(config, lst).startswith("SASL_")]


def validate_ssl_settings(config: BrokerConfig, listener_name: str) -> None:
    """What an SSL listener needs, with the messages of Kafka's DefaultSslEngineFactory
    where it has one."""
    def setting(key: str) -> object:
        return listener_setting(config, listener_name, key)

    where = f"SSL listener {listener_name}"
    keystore_type = str(setting("ssl.keystore.type")).upper()
    location, chain, key = setting("ssl.keystore.location"), setting("ssl.keystore.certificate.chain"), setting("ssl.keystore.key")
    if keystore_type != "PEM":
        if chain is not None or key is not None:
            raise ConfigError(f"{where}: SSL private key can be specified only for PEM, but key store type is {keystore_type}.")
        raise ConfigError(f"{where}: ssl.keystore.type={keystore_type} is not supported by kafkapy, which reads PEM key "
                          "stores only: set ssl.keystore.type=PEM with ssl.keystore.location (a PEM file holding the "
                          "private key and the certificate chain) or with ssl.keystore.certificate.chain and ssl.keystore.key")
    if setting("ssl.keystore.password") is not None:
        raise ConfigError(f"{where}: SSL key store password cannot be specified with PEM format, only key password may be specified")
    if location is not None and (chain is not None or key is not None):
        raise ConfigError(f"{where}: Both ssl.keystore.location and ssl.keystore.certificate.chain/ssl.keystore.key are set: "
                          "give the key store in one form only")
    if (chain is None) != (key is None):
        raise ConfigError(f"{where}: ssl.keystore.certificate.chain and ssl.keystore.key must be given together")
    if location is None and chain is None:
        raise ConfigError(f"{where} has no key store: set ssl.keystore.location, or ssl.keystore.certificate.chain "
                          "and ssl.keystore.key, with ssl.keystore.type=PEM")
    truststore_type = str(setting("ssl.truststore.type")).upper()
    trust_location, trust_certificates = setting("ssl.truststore.location"), setting("ssl.truststore.certificates")
    if truststore_type != "PEM":
        if trust_certificates is not None:
            raise ConfigError(f"{where}: SSL trust store certs can be specified only for PEM, but trust store type is {truststore_type}.")
        if trust_location is not None:
            raise ConfigError(f"{where}: ssl.truststore.type={truststore_type} is not supported by kafkapy, which reads PEM "
                              "trust stores only: set ssl.truststore.type=PEM")
    else:
        if setting("ssl.truststore.password") is not None:
            raise ConfigError(f"{where}: SSL trust store password cannot be specified for PEM format.")
        if trust_location is not None and trust_certificates is not None:
            raise ConfigError(f"{where}: Both ssl.truststore.location and ssl.truststore.certificates are set: "
                              "give the trust store in one form only")
    protocol = str(setting("ssl.protocol"))
    if protocol not in TLS_VERSIONS + _TLS_FAMILIES:
        raise ConfigError(f"{where}: ssl.protocol={protocol} is not a TLS protocol kafkapy knows "
                          f"({', '.join(TLS_VERSIONS + _TLS_FAMILIES)})")
    enabled: list[str] = setting("ssl.enabled.protocols")  # type: ignore[assignment]
    unknown = [p for p in enabled if p not in TLS_VERSIONS]
    if unknown or not enabled:
        raise ConfigError(f"{where}: ssl.enabled.protocols must list some of {', '.join(TLS_VERSIONS)}, "
                          f"not {','.join(enabled) or 'nothing'}")
    from .security.principal import SslPrincipalMapper  # it raises this module's ConfigError

    SslPrincipalMapper(str(setting("ssl.principal.mapping.rules")))


def ssl_listener_names(config: BrokerConfig) -> list[str]:
    """The broker listeners that speak TLS."""
    controller_names = config.strings("controller.listener.names")
    return [lst.name for lst in parse_listeners(config.strings("listeners"))
            if lst.name not in controller_names and listener_protocol(config, lst) in ("SSL", "SASL_SSL")]
