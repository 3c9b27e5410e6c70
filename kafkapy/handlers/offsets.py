"""Committed offsets: OffsetCommit (8), OffsetFetch (9), TxnOffsetCommit (28),
OffsetDelete (47).

Partitions of topics that do not exist are answered here with
UNKNOWN_TOPIC_OR_PARTITION, as Kafka's request handler does; the rest goes to the
group coordinator."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from ..coordinator.offsets_manager import offset_commit_errors
from .context import Broker, RequestContext
from .registry import api


def _split_unknown(broker: Broker, topics: Any, name_of: str, partitions_of: str) -> tuple[list[Any], dict[str, list[int]]]:
    """(request topics keeping only existing partitions, {topic: unknown partition indexes})."""
    image = broker.image
    known, unknown = [], {}
    for topic in topics:
        name = getattr(topic, name_of)
        existing = image.topics.get(name)
        parts = getattr(topic, partitions_of)
        good = [p for p in parts if existing is not None and p.partition_index in existing.partitions]
        bad = [p.partition_index for p in parts if existing is None or p.partition_index not in existing.partitions]
        if good:
            known.append(dataclasses.replace(topic, **{partitions_of: tuple(good)}))
        if bad:
            unknown[name] = bad
    return known, unknown


def _merge(response_topics: list[dict[str, Any]], unknown: dict[str, list[int]]) -> list[dict[str, Any]]:
    merged = {t["name"]: t for t in response_topics}
    for name, partitions in unknown.items():
        entry = merged.setdefault(name, {"name": name, "partitions": []})
        entry["partitions"] = list(entry["partitions"]) + [
            {"partition_index": p, "error_code": ErrorCode.unknown_topic_or_partition} for p in partitions
        ]
    return list(merged.values())


async def _commit(broker: Broker, request: Any, commit: Callable[[Any, Any], Any]) -> dict[str, Any]:
    """An offset commit, plain or transactional: partitions of unknown topics answered
    here, the others by the coordinator through `commit(request, token)`."""
    error = await broker.groups.coordinator_error(request.group_id)
    if error:
        return {"throttle_time": 0, "topics": offset_commit_errors(request.topics, error)}
    known, unknown = _split_unknown(broker, request.topics, "name", "partitions")
    response: dict[str, Any] = {"throttle_time": 0, "topics": []}
    if known:
        filtered = dataclasses.replace(request, topics=tuple(known))
        # A failed write, or a transactional batch the log refused (the producer's epoch
        # is fenced there), is answered for every partition.
        response = await broker.groups.call(
            request.group_id, lambda token: commit(filtered, token),
            lambda error: {"throttle_time": 0, "topics": offset_commit_errors(filtered.topics, error)},
        )
    response["topics"] = _merge(list(response["topics"]), unknown)
    return response


@api(8, 2, 9)
async def handle_offset_commit(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = broker.groups.coordinator
    return await _commit(broker, request, lambda r, token: coordinator.commit_offsets(ctx.api_version, r, token))


@api(9, 1, 9)
async def handle_offset_fetch(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = broker.groups.coordinator
    if ctx.api_version < 8:
        error = await broker.groups.coordinator_error(request.group_id)
        if error:
            return {"throttle_time": 0, "error_code": error, "topics": []}
        return coordinator.fetch_offsets(ctx.api_version, request)
    errors = {g.group_id: await broker.groups.coordinator_error(g.group_id) for g in request.groups}
    served = tuple(g for g in request.groups if not errors[g.group_id])
    response = coordinator.fetch_offsets(ctx.api_version, dataclasses.replace(request, groups=served))
    response["groups"] = list(response["groups"]) + [
        {"group_id": g, "topics": [], "error_code": error} for g, error in errors.items() if error
    ]
    return response


@api(28, 0, 4)
async def handle_txn_offset_commit(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = broker.groups.coordinator
    return await _commit(broker, request, lambda r, token: coordinator.txn_commit_offsets(ctx.api_version, r, token))


@api(47, 0, 0)
async def handle_offset_delete(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    error = await broker.groups.coordinator_error(request.group_id)
    if error:
        return {"error_code": error, "throttle_time": 0, "topics": []}
    known, unknown = _split_unknown(broker, request.topics, "name", "partitions")
    coordinator = broker.groups.coordinator
    filtered = dataclasses.replace(request, topics=tuple(known))
    response = await broker.groups.call(
        request.group_id, lambda token: coordinator.delete_offsets(ctx.api_version, filtered, token),
        lambda error: {"error_code": error, "throttle_time": 0, "topics": []},
    )
    if response["error_code"] == ErrorCode.none:
        response["topics"] = _merge(list(response["topics"]), unknown)
    return response
