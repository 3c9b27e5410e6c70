"""How one node sends typed requests to another: a connection to one listener of one
node, one request at a time, reconnected on the next request after any failure. The
controller channel and the inter-broker channels (transaction markers, transaction
verification) share it."""

from __future__ import annotations

import ssl
from typing import Any

import anyio
import anyio.abc

from ..wire.framing import FrameReader
from ..wire.protocol import decode_response, encode_request

_MAX_FRAME = 64 * 1024 * 1024
BROKER_CLIENT_ID = "kafkapy-broker"

UNREACHABLE = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, TimeoutError)
"""What a request to a node that is down, unreachable or too slow raises."""


class NodeConnection:
    """One connection to a node's listener, one request at a time; over TLS when given the
    listener's client context (the host name checked is the address's)."""

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.address = address
        self.tls = tls
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
                    self._correlation += 1
                    await self._stream.send(encode_request(entity, self._correlation, BROKER_CLIENT_ID))
                    while True:
                        frames = self._reader.feed(await self._stream.receive())
                        if frames:
                            _, response = decode_response(bytes(frames[0]), entity.__api_key__, entity.__version__)
                            return response
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with anyio.CancelScope(shield=True):
                await stream.aclose()
