"""Typed requests from this broker to another, at the endpoint the other registered in
the metadata image (the inter-broker channel of transaction markers and transaction
verification)."""

from __future__ import annotations

from typing import Any

from ..metadata.manager import MetadataManager
from .node_connection import UNREACHABLE, NodeConnection


class PeerUnavailable(Exception):
    """The broker is unknown, did not answer in time, or could not be reached."""


class BrokerPeers:
    def __init__(self, metadata: MetadataManager, request_timeout_ms: int) -> None:
        self.metadata = metadata
        self.timeout_s = request_timeout_ms / 1000
        self._connections: dict[int, NodeConnection] = {}

    async def request(self, node_id: int, entity: Any) -> Any:
        """The response of broker `node_id` to the kio request `entity`."""
        broker = self.metadata.image.brokers.get(node_id)
        if broker is None:
            raise PeerUnavailable(f"broker {node_id} is not registered")
        address = (broker.host, broker.port)
        connection = self._connections.get(node_id)
        if connection is None or connection.address != address:
            # A broker that registered again may listen elsewhere.
            if connection is not None:
                await connection.close()
            connection = self._connections[node_id] = NodeConnection(address)
        try:
            return await connection.request(entity, self.timeout_s)
        except UNREACHABLE as e:
            raise PeerUnavailable(f"broker {node_id} at {address[0]}:{address[1]}: {e!r}") from e

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
