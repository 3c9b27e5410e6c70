"""SASL listeners: what each one's configuration enables (mechanisms with their users or
token validators, the failed-authentication delay, session lifetimes), for the
connections' authenticators, and the key sets their signed tokens are checked against."""

from __future__ import annotations

from ..config import BrokerConfig
from ..listener_config import enabled_mechanisms, listener_setting, mechanism_setting, sasl_listener_names
from ..security.jaas import parse_jaas_config
from ..security.oauthbearer import SIGNED_TOKEN_VALIDATORS, OAuthBearerServer, TokenValidator, UnsecuredValidator
from ..security.sasl import MechanismFactory, SaslListener
from ..security.sasl_plain import PlainServer, plain_users
from ..security.scram import CredentialLookup, ScramServer
from .jwks import JwksSource


def listener_sasl(config: BrokerConfig, scram_credentials: CredentialLookup) -> tuple[dict[str, SaslListener], list[JwksSource]]:
    """Each SASL broker listener's settings, by listener name, and the key sets to load;
    SCRAM looks its users up in the metadata image as it is when each client authenticates."""
    out = {}
    key_sources: list[JwksSource] = []
    for name in sasl_listener_names(config):
        mechanisms: dict[str, MechanismFactory] = {}
        max_reauth_ms: dict[str, int] = {}
        for mechanism in enabled_mechanisms(config, name):
            jaas = mechanism_setting(config, name, mechanism, "sasl.jaas.config")
            if mechanism == "PLAIN":
                users = plain_users(parse_jaas_config(str(jaas)))
                mechanisms[mechanism] = lambda users=users: PlainServer(users)  # type: ignore[misc]
            elif mechanism == "OAUTHBEARER":
                validator = _token_validator(config, name, str(jaas), key_sources)
                mechanisms[mechanism] = lambda validator=validator: OAuthBearerServer(validator)  # type: ignore[misc]
            else:
                mechanisms[mechanism] = lambda mechanism=mechanism: ScramServer(mechanism, scram_credentials)  # type: ignore[misc]
            max_reauth_ms[mechanism] = int(mechanism_setting(config, name, mechanism, "connections.max.reauth.ms"))  # type: ignore[call-overload]
        out[name] = SaslListener(mechanisms, config.int("connection.failed.authentication.delay.ms"), max_reauth_ms)
    return out, key_sources


def _token_validator(config: BrokerConfig, listener_name: str, jaas: str, key_sources: list[JwksSource]) -> TokenValidator:
    if mechanism_setting(config, listener_name, "OAUTHBEARER", "sasl.server.callback.handler.class") not in SIGNED_TOKEN_VALIDATORS:
        return UnsecuredValidator.from_jaas(parse_jaas_config(jaas))

    # Signed tokens need the cryptography package, which unsecured ones do not.
    from ..security.jws import KeySet, SignedTokenRules, SignedValidator

    def setting(key: str) -> object:
        return listener_setting(config, listener_name, f"sasl.oauthbearer.{key}")

    source = JwksSource(str(setting("jwks.endpoint.url")), int(setting("jwks.endpoint.refresh.ms")), KeySet())  # type: ignore[call-overload]
    key_sources.append(source)
    issuer = setting("expected.issuer")
    rules = SignedTokenRules(str(setting("sub.claim.name")), str(setting("scope.claim.name")),
                             int(setting("clock.skew.seconds")), tuple(setting("expected.audience")),  # type: ignore[call-overload, arg-type]
                             None if issuer is None else str(issuer))
    return SignedValidator(lambda: source.keys, rules)
