"""FindCoordinator (10): this broker coordinates every group it leads the offsets partition of."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from .context import Broker, RequestContext
from .registry import api

GROUP = 0
TRANSACTION = 1


async def find(broker: Broker, key_type: int, key: str) -> dict[str, Any]:
    if key_type == GROUP:
        error = await broker.groups.coordinator_error(key)
    elif key_type == TRANSACTION:
        error = await broker.transactions.coordinator_error(key)
    else:
        error = ErrorCode.invalid_request
    if error:
        return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": error, "error_message": None}
    me = broker.image.brokers[broker.node_id]
    return {"key": key, "node_id": me.node_id, "host": me.host, "port": me.port, "error_code": ErrorCode.none, "error_message": None}


@api(10, 0, 6)
async def handle_find_coordinator(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    key_type = getattr(request, "key_type", GROUP)
    if ctx.api_version >= 4:
        return {"throttle_time": 0, "coordinators": [await find(broker, key_type, key) for key in request.coordinator_keys]}
    return {"throttle_time": 0, **(await find(broker, key_type, request.key))}
