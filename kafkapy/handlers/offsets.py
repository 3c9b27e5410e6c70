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

from ..coordinator.group_refusals import offset_commit_errors
from ..metadata.acls import AclOperation, ResourceType
from .context import Broker, RequestContext
from .registry import handles


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


def _merge(response_topics: list[dict[str, Any]], failed: dict[str, list[int]],
           error: ErrorCode = ErrorCode.unknown_topic_or_partition) -> list[dict[str, Any]]:
    merged = {t["name"]: t for t in response_topics}
    for name, partitions in failed.items():
        entry = merged.setdefault(name, {"name": name, "partitions": []})
        entry["partitions"] = list(entry["partitions"]) + [
            {"partition_index": p, "error_code": error} for p in partitions
        ]
    return list(merged.values())


def _commit_refusal(broker: Broker, ctx: RequestContext, request: Any) -> ErrorCode | None:
    """As Kafka: a transactional commit needs WRITE on its transactional id, any commit READ on the group."""
    transactional_id = getattr(request, "transactional_id", None)
    if transactional_id is not None and not broker.authorized(
            ctx, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
        return ErrorCode.transactional_id_authorization_failed
    if not broker.authorized(ctx, AclOperation.READ, ResourceType.GROUP, request.group_id):
        return ErrorCode.group_authorization_failed
    return None


def _unreadable(broker: Broker, ctx: RequestContext, topics: Any) -> tuple[list[Any], dict[str, list[int]]]:
    """(the request topics the principal may READ, {other topic: its partition indexes})."""
    readable = broker.authorized_names(ctx, AclOperation.READ, ResourceType.TOPIC, (t.name for t in topics))
    return ([t for t in topics if t.name in readable],
            {t.name: [p.partition_index for p in t.partitions] for t in topics if t.name not in readable})


async def _commit(broker: Broker, ctx: RequestContext, request: Any, commit: Callable[[Any, Any], Any]) -> dict[str, Any]:
    """An offset commit, plain or transactional: partitions of unknown topics and of topics
    the principal may not read answered here, the others by the coordinator through
    `commit(request, token)`."""
    error = (_commit_refusal(broker, ctx, request) if broker.authorizer is not None else None) \
        or await broker.groups.coordinator_error(request.group_id)
    if error:
        return {"throttle_time": 0, "topics": offset_commit_errors(request.topics, error)}
    denied: dict[str, list[int]] = {}
    topics = request.topics
    if broker.authorizer is not None:
        topics, denied = _unreadable(broker, ctx, topics)
    known, unknown = _split_unknown(broker, topics, "name", "partitions")
    response: dict[str, Any] = {"throttle_time": 0, "topics": []}
    if known:
        filtered = dataclasses.replace(request, topics=tuple(known))
        # A failed write, or a transactional batch the log refused (the producer's epoch
        # is fenced there), is answered for every partition.
        response = await broker.groups.call(
            request.group_id, lambda token: commit(filtered, token),
            lambda error: {"throttle_time": 0, "topics": offset_commit_errors(filtered.topics, error)},
        )
    response["topics"] = _merge(_merge(list(response["topics"]), unknown), denied, ErrorCode.topic_authorization_failed)
    return response


@handles(8)
async def handle_offset_commit(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = broker.groups.coordinator
    return await _commit(broker, ctx, request, lambda r, token: coordinator.commit_offsets(ctx.api_version, r, token))


def _describe_group_error(broker: Broker, ctx: RequestContext, group_id: str) -> ErrorCode | None:
    if broker.authorizer is None or broker.authorized(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id):
        return None
    return ErrorCode.group_authorization_failed


def _hide_undescribable(broker: Broker, ctx: RequestContext, topics: list[dict[str, Any]], all_topics: bool) -> list[dict[str, Any]]:
    """As Kafka: the committed offsets of topics the principal may not describe are left out
    of an answer for all topics, and refused with TOPIC_AUTHORIZATION_FAILED when named."""
    describable = broker.authorized_names(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, (t["name"] for t in topics))
    if all_topics:
        return [t for t in topics if t["name"] in describable]
    return [t if t["name"] in describable else {"name": t["name"], "partitions": [
        {"partition_index": p["partition_index"], "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "",
         "error_code": ErrorCode.topic_authorization_failed} for p in t["partitions"]]}
        for t in topics]


def _group_error_per_partition(request: Any, error: ErrorCode) -> dict[str, Any]:
    """Versions 0 and 1 have no group-level error: as Kafka, it is given to each partition asked for."""
    return {"topics": [{"name": t.name, "partitions": [
        {"partition_index": p, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "", "error_code": error}
        for p in t.partition_indexes]} for t in request.topics]}


@handles(9)
async def handle_offset_fetch(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = broker.groups.coordinator
    if ctx.api_version < 8:
        error = _describe_group_error(broker, ctx, request.group_id) or await broker.groups.coordinator_error(request.group_id)
        if error:
            if ctx.api_version < 2:
                return _group_error_per_partition(request, error)
            return {"throttle_time": 0, "error_code": error, "topics": []}
        response = coordinator.fetch_offsets(ctx.api_version, request)
        if ctx.api_version < 2 and response["error_code"] != ErrorCode.none:
            return _group_error_per_partition(request, response["error_code"])
        if broker.authorizer is not None:
            response["topics"] = _hide_undescribable(broker, ctx, response["topics"], request.topics is None)
        return response
    errors = {g.group_id: _describe_group_error(broker, ctx, g.group_id) or await broker.groups.coordinator_error(g.group_id)
              for g in request.groups}
    served = tuple(g for g in request.groups if not errors[g.group_id])
    response = coordinator.fetch_offsets(ctx.api_version, dataclasses.replace(request, groups=served))
    if broker.authorizer is not None:
        wants_all = {g.group_id: g.topics is None for g in served}
        for group in response["groups"]:
            group["topics"] = _hide_undescribable(broker, ctx, group["topics"], wants_all[group["group_id"]])
    response["groups"] = list(response["groups"]) + [
        {"group_id": g, "topics": [], "error_code": error} for g, error in errors.items() if error
    ]
    return response


@handles(28)
async def handle_txn_offset_commit(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    coordinator = broker.groups.coordinator
    return await _commit(broker, ctx, request, lambda r, token: coordinator.txn_commit_offsets(ctx.api_version, r, token))


@handles(47)
async def handle_offset_delete(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    refused = broker.authorizer is not None and not broker.authorized(ctx, AclOperation.DELETE, ResourceType.GROUP, request.group_id)
    error = ErrorCode.group_authorization_failed if refused else await broker.groups.coordinator_error(request.group_id)
    if error:
        return {"error_code": error, "throttle_time": 0, "topics": []}
    topics, denied = _unreadable(broker, ctx, request.topics) if broker.authorizer is not None else (request.topics, {})
    known, unknown = _split_unknown(broker, topics, "name", "partitions")
    coordinator = broker.groups.coordinator
    filtered = dataclasses.replace(request, topics=tuple(known))
    response = await broker.groups.call(
        request.group_id, lambda token: coordinator.delete_offsets(ctx.api_version, filtered, token),
        lambda error: {"error_code": error, "throttle_time": 0, "topics": []},
    )
    if response["error_code"] == ErrorCode.none:
        response["topics"] = _merge(_merge(list(response["topics"]), unknown), denied, ErrorCode.topic_authorization_failed)
    return response
