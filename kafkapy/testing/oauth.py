"""Bearer tokens for tests of OAUTHBEARER listeners: unsecured JWS tokens, signing keys
(RSA or EC, made with the cryptography package) with their JSON Web Key Set, and the
settings that make confluent-kafka and kafka-python present a token."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..compat.security import TokenSource, confluent_token_settings, kafka_python_token_provider
from ..security.oauthbearer import unsecured_token

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
# Each ES algorithm's curve, its JWK name, and the byte length of its coordinates.
_CURVES: dict[str, tuple[Callable[[], ec.EllipticCurve], str, int]] = {
    "ES256": (ec.SECP256R1, "P-256", 32), "ES384": (ec.SECP384R1, "P-384", 48), "ES512": (ec.SECP521R1, "P-521", 66)}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_int(value: int, length: int | None = None) -> str:
    return _b64(value.to_bytes(length or (value.bit_length() + 7) // 8, "big"))


def user_token(user: str, lifetime_s: float = 3600, **claims: object) -> str:
    """An unsecured token for a user, issued now, as librdkafka's unsecured JWT login makes one."""
    now = time.time()
    return unsecured_token({"sub": user, "iat": int(now), "exp": int(now + lifetime_s), **claims})


@dataclass
class SigningKey:
    """A private key that signs tokens (RS256/384/512 or ES256/384/512), and its public JWK."""

    algorithm: str = "RS256"
    kid: str = "kafkapy-test"
    _key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(init=False)

    def __post_init__(self) -> None:
        if self.algorithm in ("RS256", "RS384", "RS512"):
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif self.algorithm in _CURVES:
            self._key = ec.generate_private_key(_CURVES[self.algorithm][0]())
        else:
            raise ValueError(f"algorithm={self.algorithm!r}: RS256, RS384, RS512, ES256, ES384 or ES512")

    def jwk(self) -> dict[str, str]:
        if isinstance(self._key, rsa.RSAPrivateKey):
            numbers = self._key.public_key().public_numbers()
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": self.algorithm,
                    "n": _b64_int(numbers.n), "e": _b64_int(numbers.e)}
        _, curve, size = _CURVES[self.algorithm]
        point = self._key.public_key().public_numbers()
        return {"kty": "EC", "kid": self.kid, "use": "sig", "crv": curve, "x": _b64_int(point.x, size), "y": _b64_int(point.y, size)}

    def sign(self, claims: Mapping[str, object]) -> str:
        header = _b64(json.dumps({"alg": self.algorithm, "typ": "JWT", "kid": self.kid}).encode())
        payload = _b64(json.dumps(dict(claims)).encode())
        signed = f"{header}.{payload}".encode()
        digest = _HASHES[self.algorithm[2:]]()
        if isinstance(self._key, rsa.RSAPrivateKey):
            signature = self._key.sign(signed, padding.PKCS1v15(), digest)
        else:
            size = _CURVES[self.algorithm][2]
            r, s = decode_dss_signature(self._key.sign(signed, ec.ECDSA(digest)))
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return f"{header}.{payload}.{_b64(signature)}"

    def user_token(self, user: str, lifetime_s: float = 3600, **claims: object) -> str:
        now = time.time()
        return self.sign({"sub": user, "iat": int(now), "exp": int(now + lifetime_s), **claims})


def write_jwks(path: Path, keys: list[SigningKey]) -> str:
    """Writes the keys' JWKS to a file; its file: URL."""
    path.write_text(json.dumps({"keys": [k.jwk() for k in keys]}))
    return path.resolve().as_uri()


__all__ = ["SigningKey", "TokenSource", "confluent_token_settings", "kafka_python_token_provider", "user_token", "write_jwks"]
