"""Typed requests from this broker to another, at the endpoint the other registered in
the metadata image for the inter-broker listener (the inter-broker channel of transaction markers and transaction
verification), or where this node's peer routes say that broker is reached."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from ..metadata.image import MetadataImage
from ..metadata.manager import MetadataManager
from .node_connection import UNREACHABLE, Login, NodeConnection

PeerRoutes = Mapping[int, tuple[str, int]]
"""Per broker id, the address this node reaches it at instead of the endpoint it
registered: how the in-process test kit routes each link between two nodes through a
relay of its own, which it can cut (see testing/cluster.py). Empty in a real deployment."""


def peer_address(image: MetadataImage, node_id: int, listener: str, routes: PeerRoutes) -> tuple[str, int] | None:
    """Where this node reaches broker `node_id` on the inter-broker `listener`; None when
    that broker is not registered, or registered without that listener."""
    broker = image.brokers.get(node_id)
    endpoint = broker.endpoint(listener) if broker is not None else None
    if endpoint is None:
        return None
    return routes.get(node_id, (endpoint.host, endpoint.port))


class PeerUnavailable(Exception):
    """The broker is unknown, did not answer in time, or could not be reached."""


class BrokerPeers:
    def __init__(self, metadata: MetadataManager, request_timeout_ms: int, listener: str, routes: PeerRoutes | None = None,
                 tls: ssl.SSLContext | None = None, login: Login | None = None) -> None:
        self.metadata = metadata
        self.listener = listener  # the inter-broker listener's name
        self.routes = routes or {}
        self.tls = tls  # the inter-broker listener's client context, when it speaks TLS
        self.login = login  # this broker's SASL login, when the inter-broker listener wants one
        self.timeout_s = request_timeout_ms / 1000
        self._connections: dict[int, NodeConnection] = {}

    async def request(self, node_id: int, entity: Any) -> Any:
        """The response of broker `node_id` to the kio request `entity`."""
        address = peer_address(self.metadata.image, node_id, self.listener, self.routes)
        if address is None:
            raise PeerUnavailable(f"broker {node_id} is not registered with listener {self.listener}")
        connection = self._connections.get(node_id)
        if connection is None or connection.address != address:
            # A broker that registered again may listen elsewhere.
            if connection is not None:
                await connection.close()
            connection = self._connections[node_id] = NodeConnection(address, self.tls, self.login)
        try:
            return await connection.request(entity, self.timeout_s)
        except UNREACHABLE as e:
            raise PeerUnavailable(f"broker {node_id} at {address[0]}:{address[1]}: {e!r}") from e

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
