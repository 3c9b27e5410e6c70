"""SASL listeners: what each one's configuration enables (mechanisms with their users, the
failed-authentication delay, session lifetimes), for the connections' authenticators."""

from __future__ import annotations

from ..config import BrokerConfig
from ..listener_config import enabled_mechanisms, mechanism_setting, sasl_listener_names
from ..security.jaas import parse_jaas_config
from ..security.sasl import MechanismFactory, SaslListener
from ..security.sasl_plain import PlainServer, plain_users
from ..security.scram import CredentialLookup, ScramServer


def listener_sasl(config: BrokerConfig, scram_credentials: CredentialLookup) -> dict[str, SaslListener]:
    """Each SASL broker listener's settings, by listener name; SCRAM looks its users up
    in the metadata image as it is when each client authenticates."""
    out = {}
    for name in sasl_listener_names(config):
        mechanisms: dict[str, MechanismFactory] = {}
        max_reauth_ms: dict[str, int] = {}
        for mechanism in enabled_mechanisms(config, name):
            jaas = mechanism_setting(config, name, mechanism, "sasl.jaas.config")
            if mechanism == "PLAIN":
                users = plain_users(parse_jaas_config(str(jaas)))
                mechanisms[mechanism] = lambda users=users: PlainServer(users)  # type: ignore[misc]
            else:
                mechanisms[mechanism] = lambda mechanism=mechanism: ScramServer(mechanism, scram_credentials)  # type: ignore[misc]
            max_reauth_ms[mechanism] = int(mechanism_setting(config, name, mechanism, "connections.max.reauth.ms"))  # type: ignore[call-overload]
        out[name] = SaslListener(mechanisms, config.int("connection.failed.authentication.delay.ms"), max_reauth_ms)
    return out
