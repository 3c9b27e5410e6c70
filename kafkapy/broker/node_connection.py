"""How one node sends typed requests to another: a connection to one listener of one
node, one request at a time, reconnected on the next request after any failure, over TLS
and authenticated with SASL when the listener wants it. The controller channel, the
replica fetchers and the inter-broker channels (transaction markers, transaction
verification) share it."""

from __future__ import annotations

import ssl
from typing import Any

import anyio
import anyio.abc
from kio.schema.errors import ErrorCode
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from ..security.client_login import ClientLogin
from ..security.scram_client import ScramClientError
from ..wire.framing import FrameReader
from ..wire.protocol import decode_response, encode_request

_MAX_FRAME = 64 * 1024 * 1024
BROKER_CLIENT_ID = "kafkapy-broker"

UNREACHABLE = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, TimeoutError)
"""What a request to a node that is down, unreachable or too slow raises (a failed
authentication too: a ConnectionError, which tells why)."""

Login = tuple[str, str, str]
"""(SASL mechanism, username, password) a node authenticates with."""


class NodeConnection:
    """One connection to a node's listener, one request at a time; over TLS when given the
    listener's client context (the host name checked is the address's), and authenticated
    with SASL first when given a login (a session the node ends is opened again, and
    authenticated again, on the next request)."""

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext | None = None, login: Login | None = None) -> None:
        self.address = address
        self.tls = tls
        self.login = login
        self._stream: anyio.abc.ByteStream | None = None
        self._reader = FrameReader(_MAX_FRAME)
        self._lock = anyio.Lock()
        self._correlation = 0

    async def request(self, entity: Any, timeout_s: float) -> Any:
        """The response to the kio request `entity`; raises one of UNREACHABLE."""
        async with self._lock:
            try:
                with anyio.fail_after(timeout_s):
                    if self._stream is None:
                        # Kafka's framing says where each message ends: no need to wait for TLS close_notify.
                        self._stream = await anyio.connect_tcp(*self.address, ssl_context=self.tls, tls_hostname=self.address[0],
                                                               tls_standard_compatible=False) if self.tls else \
                            await anyio.connect_tcp(*self.address)
                        self._reader = FrameReader(_MAX_FRAME)
                        if self.login is not None:
                            await self._authenticate(ClientLogin(*self.login))
                    return await self._exchange(entity)
            except BaseException:
                await self.close()
                raise

    async def _exchange(self, entity: Any) -> Any:
        assert self._stream is not None
        self._correlation += 1
        await self._stream.send(encode_request(entity, self._correlation, BROKER_CLIENT_ID))
        while True:
            frames = self._reader.feed(await self._stream.receive())
            if frames:
                _, response = decode_response(bytes(frames[0]), entity.__api_key__, entity.__version__)
                return response

    async def _authenticate(self, login: ClientLogin) -> None:
        where = f"{self.address[0]}:{self.address[1]}"
        handshake = await self._exchange(SaslHandshakeRequest(mechanism=login.mechanism))
        if handshake.error_code != ErrorCode.none:
            raise ConnectionError(f"SASL handshake with {where} for {login.mechanism}: {handshake.error_code.name} "
                                  f"(enabled there: {', '.join(handshake.mechanisms)})")
        token: bytes | None = login.first_token()
        while token is not None:
            answer = await self._exchange(SaslAuthenticateRequest(auth_bytes=token))
            if answer.error_code != ErrorCode.none:
                raise ConnectionError(f"SASL authentication to {where}: {answer.error_code.name}: {answer.error_message}")
            try:
                token = login.next_token(bytes(answer.auth_bytes))
            except ScramClientError as e:
                raise ConnectionError(f"SASL authentication to {where}: {e}") from None

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with anyio.CancelScope(shield=True):
                await stream.aclose()
