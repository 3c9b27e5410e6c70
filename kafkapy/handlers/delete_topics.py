"""DeleteTopics (20): by name, or by topic id from v6."""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from .context import Broker, RequestContext
from .registry import api

_ZERO = uuid.UUID(int=0)


@api(20, 1, 6)
async def handle_delete_topics(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if ctx.api_version >= 6:
        names, ids, invalid = [], [], []
        for t in request.topics:
            if t.name is not None and t.topic_id not in (None, _ZERO):
                invalid.append({"name": t.name, "topic_id": t.topic_id, "error_code": ErrorCode.invalid_request,
                                "error_message": "You may not specify both topic name and topic id."})
            elif t.name is not None:
                names.append(t.name)
            elif t.topic_id not in (None, _ZERO):
                ids.append(t.topic_id)
            else:
                invalid.append({"name": None, "topic_id": _ZERO, "error_code": ErrorCode.invalid_request,
                                "error_message": "Neither topic name nor id were specified."})
    else:
        names, ids, invalid = list(request.topic_names), [], []
    results, records = broker.controller.delete_topics(broker.image, names, ids)
    broker.metadata.commit(records)
    responses = invalid + [
        {"name": r.name, "topic_id": r.topic_id, "error_code": r.error, "error_message": r.message} for r in results
    ]
    return {"throttle_time": 0, "responses": responses}
