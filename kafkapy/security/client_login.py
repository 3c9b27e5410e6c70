"""The client's side of a SASL exchange, by mechanism: PLAIN (one token) and SCRAM (two,
and a check of the server's proof). Sans-IO: the tokens to send, each made from the
server's answer to the one before."""

from __future__ import annotations

from .scram import HASHES
from .scram_client import ScramClient

MECHANISMS = ("PLAIN", *HASHES)


class ClientLogin:
    def __init__(self, mechanism: str, username: str, password: str) -> None:
        if mechanism not in MECHANISMS:
            raise ValueError(f"SASL mechanism {mechanism} is not one of {', '.join(MECHANISMS)}")
        self.mechanism = mechanism
        self._plain = f"\0{username}\0{password}".encode() if mechanism == "PLAIN" else None
        self._scram = None if mechanism == "PLAIN" else ScramClient(mechanism, username, password)
        self._answers = 0

    def first_token(self) -> bytes:
        if self._scram is None:
            assert self._plain is not None
            return self._plain
        return self._scram.first_message()

    def next_token(self, answer: bytes) -> bytes | None:
        """The token that answers the server's; None once the exchange is complete.
        Raises ScramClientError when the server's answer is not a valid one."""
        self._answers += 1
        if self._scram is None:
            return None
        if self._answers == 1:
            return self._scram.final_message(answer)
        self._scram.check_server_final(answer)
        return None
