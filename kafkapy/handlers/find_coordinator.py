"""FindCoordinator (10): this broker coordinates every group it leads the offsets partition of."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..metadata.acls import AclOperation, ResourceType
from .context import Broker, RequestContext
from .metadata import alive_endpoint
from .registry import handles

GROUP = 0
TRANSACTION = 1


# What a principal must be allowed to DESCRIBE to find a key's coordinator, and the error if not.
_DESCRIBED = {
    GROUP: (ResourceType.GROUP, ErrorCode.group_authorization_failed),
    TRANSACTION: (ResourceType.TRANSACTIONAL_ID, ErrorCode.transactional_id_authorization_failed),
}


async def find(broker: Broker, ctx: RequestContext, key_type: int, key: str) -> dict[str, Any]:
    """The broker leading the key's partition of the coordinator's topic, wherever it is."""
    runtime = {GROUP: broker.groups, TRANSACTION: broker.transactions}.get(key_type)
    if runtime is None:
        return _not_found(key, ErrorCode.invalid_request)
    resource_type, refused = _DESCRIBED[key_type]
    if not broker.authorized(ctx, AclOperation.DESCRIBE, resource_type, key):
        return _not_found(key, refused)
    node_id = await runtime.coordinator_of(key)
    # At its endpoint for the listener the request came on, as Kafka; none there is no coordinator for this client.
    endpoint = alive_endpoint(broker.image, node_id, ctx.listener) if node_id is not None else None
    if node_id is None or endpoint is None:
        return _not_found(key, ErrorCode.coordinator_not_available)
    return {"key": key, "node_id": node_id, "host": endpoint.host, "port": endpoint.port,
            "error_code": ErrorCode.none, "error_message": None}


def _not_found(key: str, error: ErrorCode) -> dict[str, Any]:
    return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": error, "error_message": None}


@handles(10)
async def handle_find_coordinator(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    key_type = getattr(request, "key_type", GROUP)
    if ctx.api_version >= 4:
        return {"throttle_time": 0, "coordinators": [await find(broker, ctx, key_type, key) for key in request.coordinator_keys]}
    return {"throttle_time": 0, **(await find(broker, ctx, key_type, request.key))}
