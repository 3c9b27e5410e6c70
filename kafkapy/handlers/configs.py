"""Configs: DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44).

Topic and broker configs live in the metadata image (ConfigRecords), so changes apply
live and survive restarts. Broker logger levels are this process's logging levels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kio.schema.errors import ErrorCode

from ..config import BROKER_CONFIGS, TOPIC_CONFIGS, BrokerConfig, ConfigDef, ConfigSource
from ..metadata.acls import AclOperation, ResourceType
from ..metadata.controller import DELETE, SET, ConfigChange, ConfigOp, alter_configs_records
from ..metadata.records import RESOURCE_BROKER, RESOURCE_TOPIC
from .context import Broker, Node, RequestContext
from .controller import on_active_controller
from .registry import handles

RESOURCE_BROKER_LOGGER = 8
_LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
           "ERROR": logging.ERROR, "FATAL": logging.CRITICAL, "OFF": logging.CRITICAL + 10}


def _entry(d: ConfigDef, value: object, source: ConfigSource, read_only: bool,
           synonyms: list[tuple[str, object, ConfigSource]], request: Any) -> dict[str, Any]:
    return {
        "name": d.name,
        "value": d.render(value),
        "read_only": read_only,
        "config_source": int(source),
        "is_default": source == ConfigSource.DEFAULT_CONFIG,
        "is_sensitive": d.sensitive,
        "synonyms": [
            {"name": n, "value": (BROKER_CONFIGS.get(n) or d).render(v), "source": int(s)} for n, v, s in synonyms
        ] if getattr(request, "include_synonyms", False) else [],
        "config_type": int(d.type),
        "documentation": d.doc if getattr(request, "include_documentation", False) else None,
    }


def describe_topic(config: BrokerConfig, overrides: Mapping[str, str | None], keys: set[str] | None, request: Any) -> list[dict[str, Any]]:
    """Every topic config (or those named in keys) of a topic with these overrides."""
    entries = []
    for key, d in TOPIC_CONFIGS.items():
        if keys is not None and key not in keys:
            continue
        synonyms = config.broker_synonyms(d.synonyms)
        if key in overrides:
            value, source = d.parse(overrides[key]), ConfigSource.DYNAMIC_TOPIC_CONFIG
            synonyms.insert(0, (key, value, source))
        else:
            value, source, _ = config.topic_default(key)
        entries.append(_entry(d, value, source, False, synonyms, request))
    return entries


def _synonym_chain(key: str) -> tuple[str, ...]:
    """The broker keys that stand for the same setting, from key to its most general."""
    for d in TOPIC_CONFIGS.values():
        if key in d.synonyms:
            return d.synonyms[d.synonyms.index(key):]
    return (key,)


def describe_broker(config: BrokerConfig, name: str, keys: set[str] | None, request: Any) -> list[dict[str, Any]]:
    entries = []
    for key, d in BROKER_CONFIGS.items():
        if keys is not None and key not in keys:
            continue
        found = config.lookup(key)
        if name == "":  # the cluster-wide defaults only
            if key not in config.dynamic_default:
                continue
            value, source = config.dynamic_default[key], ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        elif found is not None:
            value, source = found
        else:
            value, source = d.default, ConfigSource.DEFAULT_CONFIG
        entries.append(_entry(d, value, source, d.read_only, config.broker_synonyms(_synonym_chain(key)), request))
    return entries


def describe_loggers(keys: set[str] | None) -> list[dict[str, Any]]:
    names = ["root"] + sorted(n for n in logging.root.manager.loggerDict if n.startswith("kafkapy"))
    entries = []
    for name in names:
        if keys is not None and name not in keys:
            continue
        logger = logging.getLogger() if name == "root" else logging.getLogger(name)
        level = logging.getLevelName(logger.getEffectiveLevel()).replace("WARNING", "WARN").replace("CRITICAL", "FATAL")
        entries.append({"name": name, "value": level, "read_only": False,
                        "config_source": int(ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG), "is_default": False,
                        "is_sensitive": False, "synonyms": [], "config_type": 2, "documentation": None})
    return entries


def authorization_error(node: Node, ctx: RequestContext, kind: int, name: str, operation: AclOperation) -> ErrorCode | None:
    """As Kafka: a topic's configs need the operation on the topic, a broker's (and its
    loggers') on the cluster."""
    if node.authorizer is None:
        return None
    if kind == RESOURCE_TOPIC:
        return None if node.authorized(ctx, operation, ResourceType.TOPIC, name) else ErrorCode.topic_authorization_failed
    if kind in (RESOURCE_BROKER, RESOURCE_BROKER_LOGGER):
        return None if node.authorized_on_cluster(ctx, operation) else ErrorCode.cluster_authorization_failed
    return None


@handles(32)
async def handle_describe_configs(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    config = broker.replicas.broker_config(broker.image)
    results = []
    for resource in request.resources:
        keys = set(resource.configuration_keys) if resource.configuration_keys is not None else None
        kind, name = resource.resource_type, resource.resource_name
        error, message, configs = ErrorCode.none, None, []
        if (refused := authorization_error(broker, ctx, kind, name, AclOperation.DESCRIBE_CONFIGS)) is not None:
            error = refused
        elif kind == RESOURCE_TOPIC:
            if name in broker.image.topics:
                configs = describe_topic(config, broker.image.topic_configs(name), keys, request)
            else:
                error, message = ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist."
        elif kind in (RESOURCE_BROKER, RESOURCE_BROKER_LOGGER):
            if name not in ("", str(broker.node_id)) or (kind == RESOURCE_BROKER_LOGGER and name == ""):
                error = ErrorCode.invalid_request
                message = f"Unexpected broker id, expected {broker.node_id} or empty string, but received {name}"
            elif kind == RESOURCE_BROKER:
                configs = describe_broker(config, name, keys, request)
            else:
                configs = describe_loggers(keys)
        else:
            error, message = ErrorCode.invalid_request, f"Unsupported resource type {kind}"
        results.append({"error_code": error, "error_message": message, "resource_type": kind,
                        "resource_name": name, "configs": configs})
    return {"throttle_time": 0, "results": results}


def _alter_loggers(name: str, ops: list[ConfigOp], node: Node) -> tuple[ErrorCode, str | None]:
    if name != str(node.node_id):
        return ErrorCode.invalid_request, f"Unexpected broker id, expected {node.node_id}, but received {name}"
    for op in ops:
        if op.op not in (SET, DELETE) or (op.op == SET and (op.value or "").upper() not in _LEVELS):
            return ErrorCode.invalid_config, f"Cannot set logger {op.name} to {op.value}"
    for op in ops:
        logger = logging.getLogger() if op.name == "root" else logging.getLogger(op.name)
        logger.setLevel(_LEVELS[(op.value or "").upper()] if op.op == SET else logging.NOTSET)
    return ErrorCode.none, None


async def alter(node: Node, ctx: RequestContext, changes: list[ConfigChange], validate_only: bool) -> dict[str, Any]:
    responses: list[dict[str, Any] | None] = [None] * len(changes)
    metadata_changes = []
    for i, change in enumerate(changes):
        refused = authorization_error(node, ctx, change.resource_type, change.resource_name, AclOperation.ALTER_CONFIGS)
        if refused is not None:
            responses[i] = {"error_code": refused, "error_message": None, "resource_type": change.resource_type,
                            "resource_name": change.resource_name}
        elif change.resource_type == RESOURCE_BROKER_LOGGER:
            error, message = ErrorCode.none, None
            if not validate_only:
                error, message = _alter_loggers(change.resource_name, change.ops, node)
            responses[i] = {"error_code": error, "error_message": message, "resource_type": change.resource_type,
                            "resource_name": change.resource_name}
        else:
            metadata_changes.append((i, change))
    to_metadata = [c for _, c in metadata_changes]
    results = await node.controller_service.write(lambda image: alter_configs_records(image, to_metadata, validate_only))
    for (i, _), r in zip(metadata_changes, results, strict=True):
        responses[i] = {"error_code": r.error, "error_message": r.message, "resource_type": r.resource_type,
                        "resource_name": r.resource_name}
    return {"throttle_time": 0, "responses": responses}


@handles(33)
async def handle_alter_configs(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _alter_configs(node, ctx, request))


async def _alter_configs(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Replaces a resource's whole set of dynamic configs: what is not named is removed."""
    changes = []
    for resource in request.resources:
        given = {c.name for c in resource.configs}
        current = node.image.configs.get((resource.resource_type, resource.resource_name), {})
        ops = [ConfigOp(c.name, SET, c.value) for c in resource.configs]
        ops += [ConfigOp(name, DELETE, None) for name in current if name not in given]
        changes.append(ConfigChange(resource.resource_type, resource.resource_name, ops))
    return await alter(node, ctx, changes, request.validate_only)


@handles(44)
async def handle_incremental_alter_configs(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _incremental_alter_configs(node, ctx, request))


async def _incremental_alter_configs(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    changes = [
        ConfigChange(r.resource_type, r.resource_name, [ConfigOp(c.name, c.config_operation, c.value) for c in r.configs])
        for r in request.resources
    ]
    return await alter(node, ctx, changes, request.validate_only)
