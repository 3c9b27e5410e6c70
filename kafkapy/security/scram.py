"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the server, as Kafka's
ScramSaslServer: the client's first message names the user, the server answers its salt,
iterations and nonce, the client's final message proves it knows the password, and the
server proves it knew the credential. Only the derived keys are ever stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..metadata.records import UserScramCredentialRecord
from ..metadata.scram import MECHANISM_CODES, MIN_ITERATIONS, ScramCredentials
from .sasl import SaslAuthenticationFailed, SaslRejected

HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
# RFC 5802's messages, as Kafka's ScramMessages reads them (channel binding refused: 'n' only).
_VALUE = r"[\x01-\x2b\x2d-\x7f]+"  # printable, no comma
_SASL_NAME = r"(?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|=2C|=3D)+"
_CLIENT_FIRST = re.compile(rf"n,(?:a=(?P<authzid>{_SASL_NAME}))?,(?P<bare>n=(?P<name>{_SASL_NAME}),r=(?P<nonce>[\x21-\x2b\x2d-\x7e]+)"
                           rf"(?P<extensions>(?:,[A-Za-z]+=(?:{_VALUE})?)*))")
_CLIENT_FINAL = re.compile(rf"(?P<without_proof>c=(?P<binding>[A-Za-z0-9+/=]+),r=(?P<nonce>[\x21-\x2b\x2d-\x7e]+)"
                           rf"(?:,[A-Za-z]+=(?:{_VALUE})?)*),p=(?P<proof>[A-Za-z0-9+/=]+)")


@dataclass(frozen=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


def _hmac(algorithm: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, algorithm).digest()


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(HASHES[mechanism], password.encode(), salt, iterations)


def credential_from_salted_password(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
    algorithm = HASHES[mechanism]
    client_key = _hmac(algorithm, salted, b"Client Key")
    return ScramCredential(salt, hashlib.new(algorithm, client_key).digest(), _hmac(algorithm, salted, b"Server Key"), iterations)


def derive_keys(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(stored key, server key) of a salted password: what the controller stores."""
    credential = credential_from_salted_password(mechanism, salted, salt, iterations)
    return credential.stored_key, credential.server_key


def credential_from_record(record: UserScramCredentialRecord) -> ScramCredential:
    return ScramCredential(record.salt, record.stored_key, record.server_key, record.iterations)


def image_credential(credentials: ScramCredentials, user: str, mechanism: str) -> ScramCredential | None:
    """A user's credential for a mechanism in the metadata image's credentials, if any."""
    record = credentials.get((user, MECHANISM_CODES[mechanism]))
    return None if record is None else credential_from_record(record)


def new_credential(mechanism: str, password: str, iterations: int = MIN_ITERATIONS, salt: bytes | None = None) -> ScramCredential:
    """A credential for a password, with a random salt unless one is given."""
    salt = secrets.token_bytes(32) if salt is None else salt
    return credential_from_salted_password(mechanism, salted_password(mechanism, password, salt, iterations), salt, iterations)


def sasl_name_to_user(name: str) -> str:
    return name.replace("=2C", ",").replace("=3D", "=")


CredentialLookup = Callable[[str, str], "ScramCredential | None"]  # (user, mechanism)


class ScramServer:
    def __init__(self, mechanism: str, credentials: CredentialLookup,
                 server_nonce: Callable[[], str] = lambda: secrets.token_urlsafe(24)) -> None:
        self.mechanism = mechanism
        self._algorithm = HASHES[mechanism]
        self._credentials = credentials
        self._server_nonce = server_nonce
        self._credential: ScramCredential | None = None
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self.complete = False
        self.authorization_id = ""
        self.credential_expiry_ms: int | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise SaslRejected("SCRAM message is not UTF-8") from None
        return self._client_final(text) if self._credential is not None else self._client_first(text)

    def _client_first(self, text: str) -> bytes:
        match = _CLIENT_FIRST.fullmatch(text)
        if match is None:
            raise SaslRejected(f"Invalid SCRAM client first message {text!r}")
        if match["extensions"]:
            raise SaslRejected("Some extensions are not supported")
        user = sasl_name_to_user(match["name"])
        authzid = match["authzid"]
        if authzid is not None and sasl_name_to_user(authzid) != user:
            raise SaslAuthenticationFailed("Authentication failed: Client requested an authorization id that is different from username")
        credential = self._credentials(user, self.mechanism)
        if credential is None:
            raise SaslRejected("Authentication failed: Invalid user credentials")
        if credential.iterations < MIN_ITERATIONS:
            raise SaslRejected(f"Iterations {credential.iterations} is less than the minimum {MIN_ITERATIONS} for {self.mechanism}")
        self.authorization_id = user
        self._credential = credential
        self._client_first_bare = match["bare"]
        self._nonce = match["nonce"] + self._server_nonce()
        self._server_first = f"r={self._nonce},s={base64.b64encode(credential.salt).decode()},i={credential.iterations}"
        return self._server_first.encode()

    def _client_final(self, text: str) -> bytes:
        assert self._credential is not None
        if self.complete:
            raise SaslRejected("SCRAM exchange already complete")
        match = _CLIENT_FINAL.fullmatch(text)
        if match is None:
            raise SaslRejected("Invalid SCRAM client final message")
        if match["nonce"] != self._nonce:
            raise SaslRejected("Invalid client nonce in the final client message.")
        auth_message = f"{self._client_first_bare},{self._server_first},{match['without_proof']}".encode()
        try:
            proof = base64.b64decode(match["proof"], validate=True)
        except ValueError:
            raise SaslRejected("Invalid client proof") from None
        signature = _hmac(self._algorithm, self._credential.stored_key, auth_message)
        if len(proof) != len(signature):
            raise SaslRejected("Invalid client credentials")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self._algorithm, client_key).digest(), self._credential.stored_key):
            raise SaslRejected("Invalid client credentials")
        self.complete = True
        server_signature = _hmac(self._algorithm, self._credential.server_key, auth_message)
        return b"v=" + base64.b64encode(server_signature)
