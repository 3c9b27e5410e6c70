"""CreateTopics (19)."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..config import TOPIC_CONFIGS, ConfigSource
from ..metadata.controller import NewTopic, TopicResult
from .context import Broker, RequestContext
from .registry import api


def config_entries(broker: Broker, result: TopicResult) -> list[dict[str, Any]]:
    entries = []
    for name, d in TOPIC_CONFIGS.items():
        if name in result.configs:
            value, source = result.configs[name], ConfigSource.DYNAMIC_TOPIC_CONFIG
        else:
            value, source, _ = broker.config.topic_default(name)
        entries.append({"name": name, "value": d.render(value), "read_only": False, "config_source": int(source), "is_sensitive": False})
    return entries


@api(19, 2, 7)
async def handle_create_topics(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    new_topics = [
        NewTopic(
            name=t.name,
            num_partitions=t.num_partitions,
            replication_factor=t.replication_factor,
            assignments={a.partition_index: list(a.broker_ids) for a in t.assignments},
            configs={c.name: c.value for c in t.configs},
        )
        for t in request.topics
    ]
    results, records = broker.controller.create_topics(broker.image, new_topics, request.validate_only)
    broker.metadata.commit(records)
    topics = []
    for r in results:
        ok = r.error == ErrorCode.none
        topics.append({
            "name": r.name,
            "topic_id": r.topic_id,
            "error_code": r.error,
            "error_message": r.message,
            "topic_config_error_code": ErrorCode.none,
            "num_partitions": r.num_partitions if ok else -1,
            "replication_factor": r.replication_factor if ok else -1,
            "configs": config_entries(broker, r) if ok else None,
        })
    return {"throttle_time": 0, "topics": topics}
