"""Signed bearer tokens, as Kafka's OAuthBearerValidatorCallbackHandler checks them (with
jose4j): a JWS signed with RS256/384/512 or ES256/384/512 by a key of the JSON Web Key Set
the broker was given (`sasl.oauthbearer.jwks.endpoint.url`), with `exp` and `iat`,
`exp` not passed beyond `sasl.oauthbearer.clock.skew.seconds` (nor `nbf` ahead), the
expected issuer and audience, and the principal in `sasl.oauthbearer.sub.claim.name`.
Every refusal is RFC 7628's invalid_token. Sans-IO: the key set is handed in, fetched
elsewhere."""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .oauthbearer import BearerToken, InvalidToken, base64url_decode, decode_segment, number_claim, scope_claim

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}


@dataclass(frozen=True)
class VerificationKey:
    kid: str | None
    key: PublicKey


# Kafka's RefreshingHttpsJwks: a kid not in the key set asks for the set to be read again
# (the issuer may have rotated its keys), once a minute at most per kid, for 16 kids at most.
MISSING_KID_RETRY_MS = 60_000
MISSING_KIDS_KEPT = 16
MISSING_KID_MAX_LENGTH = 1000


@dataclass
class KeySet:
    """The keys of a JWKS, replaced whole at each refresh, and the kids tokens named that it
    lacks: `refresh_wanted` tells the code that reads the set to read it again now."""

    keys: list[VerificationKey] = field(default_factory=list)
    refresh_wanted: Callable[[], None] = lambda: None
    _missing_kids: dict[str, int] = field(default_factory=dict)  # kid -> when a refresh was last asked for it

    def note_missing_kid(self, kid: str, now_ms: int) -> None:
        if len(kid) > MISSING_KID_MAX_LENGTH:
            return
        last = self._missing_kids.get(kid)
        if last is not None and now_ms - last < MISSING_KID_RETRY_MS:
            return
        if last is None and len(self._missing_kids) >= MISSING_KIDS_KEPT:
            oldest = min(self._missing_kids, key=self._missing_kids.__getitem__)
            if now_ms - self._missing_kids[oldest] < MISSING_KID_RETRY_MS:
                return
            del self._missing_kids[oldest]
        self._missing_kids[kid] = now_ms
        self.refresh_wanted()

    def candidates(self, kid: str | None, key_type: type) -> list[PublicKey]:
        """The keys that may have signed a token: the one with its `kid`, or without a kid in
        the token, those of the algorithm's key type."""
        return [k.key for k in self.keys if isinstance(k.key, key_type) and (kid is None or k.kid == kid)]


def _b64_int(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError("a key parameter is not a string")
    try:
        return int.from_bytes(base64url_decode(value), "big")
    except binascii.Error:
        raise ValueError("a key parameter is not base64url") from None


def parse_jwks(text: str | bytes) -> list[VerificationKey]:
    """The signature keys of a JSON Web Key Set (RFC 7517): RSA and EC public keys; keys
    marked for encryption or of other types are left out. ValueError if it is no JWKS."""
    try:
        document = json.loads(text)
    except ValueError as e:
        raise ValueError(f"the JWKS is not JSON: {e}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS has no 'keys' list")
    out = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid") if isinstance(jwk.get("kid"), str) else None
        key: PublicKey
        if jwk.get("kty") == "RSA":
            key = rsa.RSAPublicNumbers(_b64_int(jwk.get("e")), _b64_int(jwk.get("n"))).public_key()
        elif jwk.get("kty") == "EC" and jwk.get("crv") in _CURVES:
            curve = _CURVES[str(jwk["crv"])]()
            key = ec.EllipticCurvePublicNumbers(_b64_int(jwk.get("x")), _b64_int(jwk.get("y")), curve).public_key()
        else:
            continue
        out.append(VerificationKey(kid, key))
    return out


@dataclass(frozen=True)
class SignedTokenRules:
    sub_claim: str = "sub"
    scope_claim: str = "scope"
    clock_skew_s: int = 30
    expected_audience: Sequence[str] = ()
    expected_issuer: str | None = None


class SignedValidator:
    def __init__(self, keys: Callable[[], KeySet], rules: SignedTokenRules) -> None:
        self._keys = keys
        self.rules = rules

    def __call__(self, token: str, now_ms: int) -> BearerToken:
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("Could not validate the access token: not a JWS compact serialization")
        header, claims = decode_segment(parts[0]), decode_segment(parts[1])
        self._verify_signature(header, parts, now_ms)
        rules = self.rules
        skew_ms = rules.clock_skew_s * 1000
        expiry, issued_at, not_before = (number_claim(claims, name) for name in ("exp", "iat", "nbf"))
        if expiry is None:
            raise InvalidToken("Could not validate the access token: No Expiration Time (exp) claim present.")
        if issued_at is None:
            raise InvalidToken("Could not validate the access token: No Issued At (iat) claim present.")
        if now_ms >= expiry * 1000 + skew_ms:
            raise InvalidToken("Could not validate the access token: The JWT is no longer valid")
        if not_before is not None and now_ms + skew_ms < not_before * 1000:
            raise InvalidToken("Could not validate the access token: The JWT is not yet valid")
        if rules.expected_issuer is not None and claims.get("iss") != rules.expected_issuer:
            raise InvalidToken("Could not validate the access token: Issuer (iss) claim value does not match")
        self._check_audience(claims.get("aud"))
        subject = claims.get(rules.sub_claim)
        if not isinstance(subject, str) or not subject.strip():
            raise InvalidToken(f"Could not extract the '{rules.sub_claim}' claim from the access token")
        return BearerToken(subject.strip(), scope_claim(claims, rules.scope_claim), round(expiry * 1000), round(issued_at * 1000))

    def _check_audience(self, audience: object) -> None:
        """As jose4j by default: with expected audiences, the token names one of them; without,
        a token that names an audience is refused (nobody said it is for this broker)."""
        present = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else None
        if not self.rules.expected_audience:
            if present is not None:
                raise InvalidToken("Could not validate the access token: Audience (aud) claim present but no expected audience")
            return
        if present is None or not set(map(str, present)) & set(self.rules.expected_audience):
            raise InvalidToken("Could not validate the access token: Audience (aud) claim does not contain an expected audience")

    def _verify_signature(self, header: dict[str, object], parts: list[str], now_ms: int) -> None:
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm[:2] not in ("RS", "ES") or algorithm[2:] not in _HASHES:
            raise InvalidToken(f"Could not validate the access token: the algorithm {algorithm!r} is not allowed")
        digest = _HASHES[algorithm[2:]]()
        named = header.get("kid")
        kid = named if isinstance(named, str) else None
        rsa_signed = algorithm.startswith("RS")
        key_set = self._keys()
        candidates = key_set.candidates(kid, rsa.RSAPublicKey if rsa_signed else ec.EllipticCurvePublicKey)
        if not candidates:
            if kid is not None:
                key_set.note_missing_kid(kid, now_ms)
            raise InvalidToken(f"Could not validate the access token: no key in the JWKS for kid {kid}")
        signed = f"{parts[0]}.{parts[1]}".encode("ascii", errors="replace")
        try:
            signature = base64url_decode(parts[2])
        except (binascii.Error, ValueError):
            raise InvalidToken("Could not validate the access token: malformed signature") from None
        for key in candidates:
            try:
                if isinstance(key, rsa.RSAPublicKey):
                    key.verify(signature, signed, padding.PKCS1v15(), digest)
                else:
                    half = len(signature) // 2
                    if half == 0 or len(signature) % 2:
                        continue
                    der = encode_dss_signature(int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"))
                    key.verify(der, signed, ec.ECDSA(digest))
                return
            except InvalidSignature:
                continue
        raise InvalidToken("Could not validate the access token: JWS signature is invalid")
