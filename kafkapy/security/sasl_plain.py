"""SASL/PLAIN (RFC 4616) on the server, as Kafka's PlainSaslServer with its default
callback handler: users and passwords are the `user_<name>="<password>"` options of
PlainLoginModule in the listener's JAAS configuration."""

from __future__ import annotations

import hmac

from .jaas import LoginModule
from .sasl import SaslAuthenticationFailed

PLAIN_LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


def plain_users(module: LoginModule) -> dict[str, str]:
    """Each user's password, from a PlainLoginModule's options (none from another module,
    as Kafka looks for them under PlainLoginModule only)."""
    if module.name != PLAIN_LOGIN_MODULE:
        return {}
    return {option[len("user_"):]: value for option, value in module.options.items() if option.startswith("user_")}


class PlainServer:
    def __init__(self, users: dict[str, str]) -> None:
        self._users = users
        self.complete = False
        self.authorization_id = ""
        self.credential_expiry_ms: int | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        parts = token.decode("utf-8", errors="replace").split("\0", 3)
        if len(parts) != 3:
            raise SaslAuthenticationFailed(f"Invalid SASL/PLAIN response: expected 3 tokens, got {min(len(parts), 4)}")
        authorization_id, username, password = parts
        if not username:
            raise SaslAuthenticationFailed("Authentication failed: username not specified")
        if not password:
            raise SaslAuthenticationFailed("Authentication failed: password not specified")
        expected = self._users.get(username)
        # Compared in constant time, and for an unknown user too, so timing tells nothing.
        matches = hmac.compare_digest(password.encode(), (expected if expected is not None else "\0" + password).encode())
        if expected is None or not matches:
            raise SaslAuthenticationFailed("Authentication failed: Invalid username or password")
        if authorization_id and authorization_id != username:
            raise SaslAuthenticationFailed("Authentication failed: Client requested an authorization id that is different from username")
        self.authorization_id = username
        self.complete = True
        return b""
