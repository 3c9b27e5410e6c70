"""DescribeLogDirs (35): the size of each partition in each log directory."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from kio.schema.errors import ErrorCode

from ..log.manager import METADATA_PARTITION, TopicPartition
from .context import Broker, RequestContext
from .registry import api


@api(35, 1, 5)
async def handle_describe_log_dirs(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    logs = broker.replicas.logs
    wanted: set[TopicPartition] | None = None
    if request.topics is not None:
        wanted = {TopicPartition(t.topic, p) for t in request.topics for p in t.partitions}
    per_dir: dict[Any, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for tp, log in sorted(logs.logs.items()):
        if tp == TopicPartition(*METADATA_PARTITION) or (wanted is not None and tp not in wanted):
            continue
        per_dir[logs.dir_of(tp)][tp.topic].append(
            {"partition_index": tp.partition, "partition_size": log.size, "offset_lag": 0, "is_future_key": False}
        )
    results = []
    for d in logs.dirs:
        stats = os.statvfs(d)
        results.append({
            "error_code": ErrorCode.none,
            "log_dir": str(d.resolve()),
            "topics": [{"name": name, "partitions": parts} for name, parts in per_dir[d].items()],
            "total_bytes": stats.f_blocks * stats.f_frsize,
            "usable_bytes": stats.f_bavail * stats.f_frsize,
        })
    return {"throttle_time": 0, "error_code": ErrorCode.none, "results": results}
