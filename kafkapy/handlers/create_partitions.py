"""CreatePartitions (37): grows topics; never shrinks them."""

from __future__ import annotations

from typing import Any

from .context import Broker, RequestContext
from .registry import api


@api(37, 0, 3)
async def handle_create_partitions(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    requests = [
        (t.name, t.count, [list(a.broker_ids) for a in t.assignments] if t.assignments is not None else None)
        for t in request.topics
    ]
    results, records = broker.controller.create_partitions(broker.image, requests, request.validate_only)
    broker.metadata.commit(records)
    return {"throttle_time": 0, "results": [{"name": r.name, "error_code": r.error, "error_message": r.message} for r in results]}
