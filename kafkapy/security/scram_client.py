"""The client's side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka's
ScramSaslClient: its first message names the user, its final one proves the password, and
it checks the server's signature, so a server that does not know the credential is found
out. Sans-IO: messages in, messages out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from .scram import HASHES, salted_password

_SERVER_FIRST = re.compile(r"r=(?P<nonce>[\x21-\x2b\x2d-\x7e]+),s=(?P<salt>[A-Za-z0-9+/=]+),i=(?P<iterations>[0-9]+)(?:,.*)?")
_SERVER_FINAL = re.compile(r"v=(?P<signature>[A-Za-z0-9+/=]+)(?:,.*)?")


class ScramClientError(Exception):
    """The server's messages do not make a valid exchange: the authentication fails."""


def _sasl_name(user: str) -> str:
    return user.replace("=", "=3D").replace(",", "=2C")


class ScramClient:
    def __init__(self, mechanism: str, user: str, password: str, nonce: str | None = None) -> None:
        self._algorithm = HASHES[mechanism]
        self._mechanism = mechanism
        self._password = password
        self._nonce = nonce or secrets.token_urlsafe(24)
        self._client_first_bare = f"n={_sasl_name(user)},r={self._nonce}"
        self._server_signature = b""

    def first_message(self) -> bytes:
        return f"n,,{self._client_first_bare}".encode()

    def final_message(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", "replace")
        match = _SERVER_FIRST.fullmatch(text)
        if match is None:
            raise ScramClientError(f"invalid SCRAM server first message {text!r}")
        if not match["nonce"].startswith(self._nonce) or match["nonce"] == self._nonce:
            raise ScramClientError("the server's nonce does not extend the client's")
        salted = salted_password(self._mechanism, self._password, base64.b64decode(match["salt"]), int(match["iterations"]))
        without_proof = f"c=biws,r={match['nonce']}"
        auth_message = f"{self._client_first_bare},{text},{without_proof}".encode()
        client_key = hmac.new(salted, b"Client Key", self._algorithm).digest()
        signature = hmac.new(hashlib.new(self._algorithm, client_key).digest(), auth_message, self._algorithm).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.new(salted, b"Server Key", self._algorithm).digest()
        self._server_signature = hmac.new(server_key, auth_message, self._algorithm).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def check_server_final(self, server_final: bytes) -> None:
        """ScramClientError unless the server proved it knows the credential."""
        match = _SERVER_FINAL.fullmatch(server_final.decode("utf-8", "replace"))
        if match is None or not hmac.compare_digest(base64.b64decode(match["signature"]), self._server_signature):
            raise ScramClientError("the server's signature is not the credential's")
