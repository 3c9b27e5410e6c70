"""InitProducerId (22): a producer id and epoch for an idempotent producer."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from .context import Broker, RequestContext
from .registry import api


@api(22, 0, 5)
async def handle_init_producer_id(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if request.transactional_id is not None:
        # Transactions need the transaction coordinator, which this broker does not run yet.
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_not_available, "producer_id": -1, "producer_epoch": -1}
    # Without a transactional id Kafka always hands out a fresh id at epoch 0.
    return {"throttle_time": 0, "error_code": ErrorCode.none, "producer_id": broker.producer_ids.generate(), "producer_epoch": 0}
