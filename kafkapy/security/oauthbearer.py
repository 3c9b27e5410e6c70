"""SASL/OAUTHBEARER (RFC 7628) on the server, as Kafka's OAuthBearerSaslServer: the client's
first message carries a bearer token, which a validator turns into a principal, a scope and
an expiry. A token the validator refuses is answered with RFC 7628's error JSON as a
challenge; the client acknowledges it with a single 0x01 byte, and the authentication then
fails with that JSON as its message, as Kafka's does.

The validator here is Kafka's default, OAuthBearerUnsecuredValidatorCallbackHandler, for
unsecured JWS tokens (`alg` none) and tests; signed tokens are checked by `jws`."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..config import ConfigError
from .jaas import LoginModule
from .sasl import SaslAuthenticationFailed, SaslRejected

OAUTHBEARER_LOGIN_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
# The server callback handler that checks signed tokens against a JWKS (its name before and
# after Kafka 3.4 moved it); without one, Kafka validates unsecured tokens.
SIGNED_TOKEN_VALIDATORS = ("org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
                           "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler")
UNSECURED_TOKEN_VALIDATOR = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"

_SEPARATOR = "\x01"
_SASL_NAME = r"(?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|=2C|=3D)+"
_KV_PAIR = rf"[A-Za-z]+=[\x21-\x7e \t\r\n]+{_SEPARATOR}"
_CLIENT_FIRST = re.compile(rf"n,(?:a=(?P<authzid>{_SASL_NAME}))?,{_SEPARATOR}(?P<pairs>(?:{_KV_PAIR})*){_SEPARATOR}")
_TO_STANDARD_ALPHABET = str.maketrans("-_", "+/")
_AUTH = re.compile(r"(?P<scheme>\w+) +(?P<token>[-_.a-zA-Z0-9]+)")


@dataclass(frozen=True)
class BearerToken:
    principal: str
    scope: frozenset[str]
    expiry_ms: int
    issued_at_ms: int | None = None


class InvalidToken(Exception):
    """A token the validator refuses; `scope` is set when it lacks a required scope."""

    def __init__(self, description: str, scope: str | None = None) -> None:
        super().__init__(description)
        self.scope = scope

    def error_json(self) -> str:
        """RFC 7628's error, in Kafka's spelling."""
        status = "insufficient_scope" if self.scope is not None else "invalid_token"
        scope = f', "scope":"{self.scope}"' if self.scope is not None else ""
        return f'{{"status":"{status}"{scope}}}'


TokenValidator = Callable[[str, int], BearerToken]  # (compact serialization, now in ms)


class OAuthBearerServer:
    def __init__(self, validate: TokenValidator) -> None:
        self._validate = validate
        self._error: str | None = None  # the error JSON sent, awaiting the client's 0x01
        self.complete = False
        self.authorization_id = ""
        self.credential_expiry_ms: int | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        if token == b"\x01" and self._error is not None:
            raise SaslAuthenticationFailed(self._error)
        self._error = None
        if self.complete:
            raise SaslRejected("OAUTHBEARER exchange already complete")
        authorization_id, value = _client_first(token)
        try:
            bearer = self._validate(value, now_ms)
        except InvalidToken as e:
            self._error = e.error_json()
            return self._error.encode()
        if authorization_id and authorization_id != bearer.principal:
            raise SaslAuthenticationFailed(
                f"Authentication failed: Client requested an authorization id ({authorization_id}) that is different "
                f"from the token's principal name ({bearer.principal})")
        self.authorization_id = bearer.principal
        self.credential_expiry_ms = bearer.expiry_ms
        self.complete = True
        return b""


def _client_first(message: bytes) -> tuple[str, str]:
    """(authorization id, token) of an RFC 7628 client first message; its extensions are
    accepted and ignored, as Kafka's validators accept every one."""
    match = _CLIENT_FIRST.fullmatch(message.decode("utf-8", errors="replace"))
    if match is None:
        raise SaslRejected("Invalid OAUTHBEARER client first message")
    pairs = dict(pair.split("=", 1) for pair in match["pairs"].split(_SEPARATOR) if pair)
    auth = pairs.get("auth")
    if auth is None:
        raise SaslRejected("Invalid OAUTHBEARER client first message: 'auth' not specified")
    bearer = _AUTH.fullmatch(auth)
    if bearer is None:
        raise SaslRejected("Invalid OAUTHBEARER client first message: invalid 'auth' format")
    if bearer["scheme"].lower() != "bearer":
        raise SaslRejected(f"Invalid scheme in OAUTHBEARER client first message: {bearer['scheme']}")
    return match["authzid"] or "", bearer["token"]


def base64url_decode(text: str) -> bytes:
    """Unpadded base64url, strictly: a character outside its alphabet is an error."""
    return base64.b64decode(text.translate(_TO_STANDARD_ALPHABET) + "=" * (-len(text) % 4), validate=True)


def decode_segment(segment: str) -> dict[str, object]:
    """A JWS header or claims segment: base64url of a JSON object."""
    try:
        decoded = base64url_decode(segment)
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed Base64 URL encoded value") from None
    try:
        value = json.loads(decoded)
    except ValueError:
        raise InvalidToken("malformed JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken("malformed JSON")
    return value


def number_claim(claims: Mapping[str, object], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"The '{name}' claim was not of type Number: {type(value).__name__}")
    return float(value)


def scope_claim(claims: Mapping[str, object], name: str) -> frozenset[str]:
    """A scope claim as Kafka reads it: a string is one scope (not split on spaces), a list
    is one scope per non-blank element."""
    value = claims.get(name)
    if isinstance(value, str):
        return frozenset([value.strip()]) if value.strip() else frozenset()
    if isinstance(value, list):
        return frozenset(str(v).strip() for v in value if str(v).strip())
    if value is None:
        return frozenset()
    raise InvalidToken(f"The '{name}' claim was not of type List: {type(value).__name__}")


class UnsecuredValidator:
    """Kafka's unsecured validator: an `alg` none JWS without signature, whose principal claim
    (unsecuredValidatorPrincipalClaimName, `sub`) is a non-blank string, with an `exp` not
    passed and an `iat` (if any) not in the future, each within unsecuredValidatorAllowableClockSkewMs,
    and every scope of unsecuredValidatorRequiredScope (space-separated) in its scope claim
    (unsecuredValidatorScopeClaimName, `scope`)."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self.principal_claim = options.get("unsecuredValidatorPrincipalClaimName", "").strip() or "sub"
        self.scope_claim = options.get("unsecuredValidatorScopeClaimName", "").strip() or "scope"
        self.required_scope = options.get("unsecuredValidatorRequiredScope", "").split()
        skew = options.get("unsecuredValidatorAllowableClockSkewMs", "").strip() or "0"
        try:
            self.clock_skew_ms = int(skew)
        except ValueError:
            raise ConfigError(f"unsecuredValidatorAllowableClockSkewMs: For input string: \"{skew}\"") from None
        if self.clock_skew_ms < 0:
            raise ConfigError(f"Allowable clock skew millis must not be negative: {skew}")

    @classmethod
    def from_jaas(cls, module: LoginModule | None) -> UnsecuredValidator:
        return cls(module.options if module is not None else {})

    def __call__(self, token: str, now_ms: int) -> BearerToken:
        if ".." in token:
            raise InvalidToken("Malformed compact serialization contains '..'")
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values")
        header, claims = decode_segment(parts[0]), decode_segment(parts[1])
        if header.get("alg") != "none":
            raise InvalidToken("Unsecured JWS must have 'none' for an algorithm")
        if parts[2]:
            raise InvalidToken("Unsecured JWS must not contain a digital signature")
        scope = scope_claim(claims, self.scope_claim)
        expiry = number_claim(claims, "exp")
        if expiry is None:
            raise InvalidToken("No expiration time in JWT")
        principal = claims.get(self.principal_claim)
        if not isinstance(principal, str) or not principal.strip():
            raise InvalidToken(f"No principal name in JWT claim: {self.principal_claim}")
        issued_at = number_claim(claims, "iat")
        if issued_at is not None and 1000 * issued_at > now_ms + self.clock_skew_ms:
            raise InvalidToken(f"The Issued At value ({issued_at} seconds) was after the indicated time ({now_ms} ms) "
                               f"plus allowable clock skew ({self.clock_skew_ms} ms)")
        if now_ms - self.clock_skew_ms >= 1000 * expiry:
            raise InvalidToken(f"The indicated time ({now_ms} ms) minus allowable clock skew ({self.clock_skew_ms} ms) "
                               f"was on or after the Expiration Time value ({expiry} seconds)")
        if issued_at is not None and expiry <= issued_at:
            raise InvalidToken(f"The Expiration Time time ({expiry} seconds) was not after the Issued At time ({issued_at} seconds)")
        missing = [s for s in self.required_scope if s not in scope]
        if missing:
            # Kafka names the required scope as a Java list prints.
            raise InvalidToken(f"The provided scope was missing a required scope ({missing[0]})",
                               f"[{', '.join(self.required_scope)}]")
        return BearerToken(principal, scope, round(expiry * 1000), None if issued_at is None else round(issued_at * 1000))


def unsecured_token(claims: Mapping[str, object]) -> str:
    """An unsecured JWS (alg none) with these claims, as clients' unsecured login modules make."""
    def segment(value: Mapping[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{segment({'alg': 'none'})}.{segment(claims)}."
