"""Topics, their configs, the metadata quorum, a broker's API versions and log dirs, ACLs
and SCRAM users (the console tools' admin requests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..config import ConfigSource
from ..metadata.acls import Acl, AclFilter
from ..metadata.scram import SCRAM_MECHANISMS
from .cluster import ClusterClient
from .connection import API_KEYS, KafkaError, check

_API_NAMES = {key: name for name, key in API_KEYS.items()}

# Kafka's ConfigResource types of a topic and a broker, and the ConfigSource of a topic's own setting.
TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4
TOPIC_CONFIG_SOURCE = 1


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: int
    read_only: bool
    sensitive: bool

    synonyms: tuple[ConfigSynonym, ...] = ()
    """Where else its value may come from, most specific first (when asked for)."""

    @property
    def source_name(self) -> str:
        """Kafka's name of the source (DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG, ...)."""
        return source_name(self.source)

    @property
    def inherited(self) -> ConfigSynonym | None:
        """The value a topic's config has without its own override: from the broker's
        configs, or Kafka's default (None when the broker did not say)."""
        return next((s for s in self.synonyms if s.source != TOPIC_CONFIG_SOURCE), None)


@dataclass(frozen=True)
class ConfigSynonym:
    name: str
    value: str | None
    source: int

    @property
    def source_name(self) -> str:
        return source_name(self.source)


def source_name(source: int) -> str:
    try:
        return ConfigSource(source).name
    except ValueError:
        return f"SOURCE_{source}"


@dataclass(frozen=True)
class QuorumReplica:
    replica_id: int
    directory_id: uuid.UUID
    log_end_offset: int
    last_fetch_timestamp: int
    """Wall-clock milliseconds; -1 when unknown."""
    last_caught_up_timestamp: int


@dataclass(frozen=True)
class QuorumInfo:
    """The KRaft metadata quorum, as its leader describes it (Kafka's QuorumInfo)."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: list[QuorumReplica]
    observers: list[QuorumReplica]
    endpoints: Mapping[int, list[str]]
    """Each voter's controller endpoints, as NAME://host:port."""


@dataclass(frozen=True)
class ApiVersionRange:
    api_key: int
    name: str
    """kio's name of the API (produce, fetch, ...); "api_<key>" for one this client does not know."""
    min_version: int
    max_version: int


@dataclass(frozen=True)
class BrokerVersions:
    """What one broker answers to ApiVersions: the APIs and features it supports, and the
    features finalized in the cluster (name: (min, max) version levels)."""

    apis: list[ApiVersionRange]
    supported_features: dict[str, tuple[int, int]]
    finalized_features: dict[str, tuple[int, int]]
    finalized_features_epoch: int


@dataclass(frozen=True)
class LogDirInfo:
    """One log directory of a broker, as DescribeLogDirs tells it (-1: a size not known)."""

    path: str
    error_code: int
    total_bytes: int
    usable_bytes: int
    partition_sizes: dict[tuple[str, int], int]

    @property
    def size(self) -> int:
        return sum(self.partition_sizes.values())


@dataclass(frozen=True)
class PartitionReassignment:
    """A reassignment in progress (Kafka's admin PartitionReassignment)."""

    replicas: list[int]
    adding_replicas: list[int]
    removing_replicas: list[int]


class AdminClient(ClusterClient):
    """Topics, their configs, and the metadata quorum."""

    def create_topic(self, name: str, partitions: int = -1, replication_factor: int = -1,
                     configs: Mapping[str, str] | None = None, assignments: Sequence[Sequence[int]] = ()) -> int:
        """Creates a topic (-1: the broker's default), or with the replicas of each partition
        given (`assignments`, partitions and replication factor then -1); returns its number
        of partitions, or -1 when the broker's response does not say."""
        response = self.controller().request("create_topics", {
            "topics": [{
                "name": name, "num_partitions": partitions, "replication_factor": replication_factor,
                "assignments": [{"partition_index": i, "broker_ids": list(replicas)} for i, replicas in enumerate(assignments)],
                "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
            }],
            "timeout": int(self.timeout * 1000), "validate_only": False,
        })
        [result] = response.topics
        check(result.error_code, f"creating topic {name!r}", result.error_message)
        return getattr(result, "num_partitions", partitions)

    def delete_topic(self, name: str) -> None:
        response = self.controller().request("delete_topics", {
            "topic_names": [name], "topics": [{"name": name, "topic_id": None}], "timeout": int(self.timeout * 1000),
        })
        [result] = response.responses
        check(result.error_code, f"deleting topic {name!r}", getattr(result, "error_message", None))

    def create_partitions(self, name: str, count: int) -> None:
        """Grows a topic to `count` partitions."""
        response = self.controller().request("create_partitions", {
            "topics": [{"name": name, "count": count, "assignments": None}],
            "timeout": int(self.timeout * 1000), "validate_only": False,
        })
        [result] = response.results
        check(result.error_code, f"adding partitions to topic {name!r}", result.error_message)

    def alter_partition_reassignments(
        self, targets: Mapping[tuple[str, int], Sequence[int] | None], allow_replication_factor_change: bool = True,
    ) -> dict[tuple[str, int], KafkaError | None]:
        """Moves each (topic, partition) to its target replicas, or cancels its reassignment
        in progress (None); what each partition's request met, None for success."""
        topics: dict[str, list[dict[str, Any]]] = {}
        for (topic, partition), replicas in targets.items():
            topics.setdefault(topic, []).append(
                {"partition_index": partition, "replicas": None if replicas is None else list(replicas)})
        response = self.controller().request("alter_partition_reassignments", {
            "timeout": int(self.timeout * 1000), "allow_replication_factor_change": allow_replication_factor_change,
            "topics": [{"name": name, "partitions": partitions} for name, partitions in topics.items()],
        })
        check(response.error_code, "altering partition reassignments", response.error_message)
        return {(t.name, p.partition_index): None if p.error_code == 0 else KafkaError(
                    p.error_code, f"reassigning {t.name}-{p.partition_index}", p.error_message)
                for t in response.responses for p in t.partitions}

    def list_partition_reassignments(
        self, partitions: Iterable[tuple[str, int]] | None = None,
    ) -> dict[tuple[str, int], PartitionReassignment]:
        """The reassignments in progress among `partitions`, or all of them."""
        topics = None
        if partitions is not None:
            by_topic: dict[str, list[int]] = {}
            for topic, partition in partitions:
                by_topic.setdefault(topic, []).append(partition)
            topics = [{"name": name, "partition_indexes": indexes} for name, indexes in by_topic.items()]
        response = self.controller().request("list_partition_reassignments", {
            "timeout": int(self.timeout * 1000), "topics": topics})
        check(response.error_code, "listing partition reassignments", response.error_message)
        return {(t.name, p.partition_index): PartitionReassignment(
                    list(p.replicas), list(p.adding_replicas), list(p.removing_replicas))
                for t in response.topics for p in t.partitions}

    def describe_configs(self, resource_type: int, name: str, synonyms: bool = False) -> list[ConfigEntry]:
        """A resource's configs; a broker's from that broker itself, which alone knows its static ones."""
        connection = self.broker(int(name)) if resource_type == BROKER_RESOURCE else self.any_broker()
        response = connection.request("describe_configs", {
            "resources": [{"resource_type": resource_type, "resource_name": name, "configuration_keys": None}],
            "include_synonyms": synonyms, "include_documentation": False,
        })
        [result] = response.results
        check(result.error_code, f"describing the configs of {name!r}", result.error_message)
        return [ConfigEntry(c.name, c.value, c.config_source, c.read_only, c.is_sensitive,
                            tuple(ConfigSynonym(s.name, s.value, s.source) for s in getattr(c, "synonyms", ())))
                for c in result.configs]

    def alter_configs(self, resource_type: int, name: str, set_values: Mapping[str, str],
                      delete: Iterable[str] = ()) -> None:
        """Sets and deletes (back to the default) some configs, leaving the others as they are."""
        changes = [{"name": k, "config_operation": 0, "value": v} for k, v in set_values.items()]
        changes += [{"name": k, "config_operation": 1, "value": None} for k in delete]
        response = self.any_broker().request("incremental_alter_configs", {
            "resources": [{"resource_type": resource_type, "resource_name": name, "configs": changes}],
            "validate_only": False,
        })
        [result] = response.responses
        check(result.error_code, f"altering the configs of {name!r}", result.error_message)

    def describe_quorum(self) -> QuorumInfo:
        """The metadata quorum (DescribeQuorum, which any broker forwards to the active controller)."""

        def describe() -> QuorumInfo:
            response = self.any_broker().request("describe_quorum", {
                "topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}],
            })
            check(response.error_code, "describing the metadata quorum", getattr(response, "error_message", None))
            [partition] = response.topics[0].partitions
            check(partition.error_code, "describing the metadata quorum", getattr(partition, "error_message", None))

            def replicas(states: Iterable[Any]) -> list[QuorumReplica]:
                return [QuorumReplica(r.replica_id, getattr(r, "replica_directory_id", None) or uuid.UUID(int=0),
                                      r.log_end_offset, r.last_fetch_timestamp, r.last_caught_up_timestamp)
                        for r in states]

            endpoints = {n.node_id: [f"{lst.name}://{f'[{lst.host}]' if ':' in lst.host else lst.host}:{lst.port}"
                                     for lst in n.listeners] for n in getattr(response, "nodes", ())}
            return QuorumInfo(partition.leader_id, partition.leader_epoch, partition.high_watermark,
                              replicas(partition.current_voters), replicas(partition.observers), endpoints)

        return self._retrying(describe)

    def broker_versions(self, node_id: int) -> BrokerVersions:
        """The broker's answer to ApiVersions, asked anew on its connection."""
        response = self.broker(node_id).request("api_versions", {
            "client_software_name": "kafkapy", "client_software_version": __version__,
        })
        check(response.error_code, f"ApiVersions with broker {node_id}")
        return BrokerVersions(
            [ApiVersionRange(a.api_key, _API_NAMES.get(a.api_key, f"api_{a.api_key}"), a.min_version, a.max_version)
             for a in sorted(response.api_keys, key=lambda a: a.api_key)],
            {f.name: (f.min_version, f.max_version) for f in getattr(response, "supported_features", ())},
            {f.name: (f.min_version_level, f.max_version_level) for f in getattr(response, "finalized_features", ())},
            getattr(response, "finalized_features_epoch", -1))

    def describe_log_dirs(self, node_id: int) -> list[LogDirInfo]:
        """Every log directory of the broker, with the size of each partition it holds."""
        response = self.broker(node_id).request("describe_log_dirs", {"topics": None})
        check(getattr(response, "error_code", 0), f"describing the log dirs of broker {node_id}")
        return [LogDirInfo(d.log_dir, d.error_code, getattr(d, "total_bytes", -1), getattr(d, "usable_bytes", -1),
                           {(t.name, p.partition_index): p.partition_size
                            for t in d.topics for p in t.partitions if not p.is_future_key})
                for d in response.results]

    def create_acls(self, acls: Sequence[Acl]) -> None:
        """Creates ACLs (an existing one is left as it is); the first refusal is raised."""
        response = self.any_broker().request("create_acls", {"creations": [
            {"resource_type": a.resource_type, "resource_name": a.resource_name, "resource_pattern_type": a.pattern_type,
             "principal": a.principal, "host": a.host, "operation": a.operation, "permission_type": a.permission}
            for a in acls]})
        for acl, result in zip(acls, response.results, strict=True):
            check(result.error_code, f"creating an ACL of {acl.principal} on {acl.resource_type.name} {acl.resource_name!r}",
                  result.error_message)

    def describe_acls(self, acl_filter: AclFilter) -> list[Acl]:
        """The ACLs the filter matches."""
        response = self.any_broker().request("describe_acls", _filter_fields(acl_filter))
        check(response.error_code, "describing ACLs", response.error_message)
        return [Acl.from_codes(r.resource_type, r.resource_name, getattr(r, "pattern_type", _LITERAL), a.principal, a.host,
                               a.operation, a.permission_type)
                for r in response.resources for a in r.acls]

    def delete_acls(self, filters: Sequence[AclFilter]) -> list[Acl]:
        """Deletes the ACLs each filter matches; returns those deleted."""
        response = self.any_broker().request("delete_acls", {"filters": [_filter_fields(f) for f in filters]})
        deleted: list[Acl] = []
        for result in response.filter_results:
            check(result.error_code, "deleting ACLs", result.error_message)
            for m in result.matching_acls:
                check(m.error_code, "deleting an ACL", m.error_message)
                deleted.append(Acl.from_codes(m.resource_type, m.resource_name, getattr(m, "pattern_type", _LITERAL),
                                              m.principal, m.host, m.operation, m.permission_type))
        return deleted


    def describe_scram_users(self, users: Sequence[str] | None = None) -> dict[str, list[tuple[str, int]]]:
        """Each user's SCRAM credentials as (mechanism name, iterations), the salts and keys
        never being sent: every user's, or those named (one without credentials raises
        RESOURCE_NOT_FOUND)."""
        response = self.any_broker().request("describe_user_scram_credentials", {
            "users": None if users is None else [{"name": u} for u in users]})
        check(response.error_code, "describing SCRAM users", response.error_message)
        out: dict[str, list[tuple[str, int]]] = {}
        for result in response.results:
            check(result.error_code, f"describing the SCRAM credentials of {result.user!r}", result.error_message)
            out[result.user] = [(SCRAM_MECHANISMS.get(c.mechanism, f"UNKNOWN({c.mechanism})"), c.iterations)
                                for c in result.credential_infos]
        return dict(sorted(out.items()))

    def alter_scram_users(self, upsertions: Sequence[tuple[str, int, int, bytes, bytes]],
                          deletions: Sequence[tuple[str, int]]) -> None:
        """Sets credentials, (user, mechanism code, iterations, salt, salted password) each,
        and deletes (user, mechanism code) ones; the first refusal is raised."""
        response = self.any_broker().request("alter_user_scram_credentials", {
            "deletions": [{"name": user, "mechanism": mechanism} for user, mechanism in deletions],
            "upsertions": [{"name": user, "mechanism": mechanism, "iterations": iterations, "salt": salt,
                            "salted_password": salted} for user, mechanism, iterations, salt, salted in upsertions]})
        for result in response.results:
            check(result.error_code, f"altering the SCRAM credentials of {result.user!r}", result.error_message)


_LITERAL = 3  # the pattern type of every ACL to a broker whose responses name none (v0)


def _filter_fields(f: AclFilter) -> dict[str, Any]:
    return {"resource_type_filter": f.resource_type, "resource_name_filter": f.resource_name,
            "pattern_type_filter": f.pattern_type, "principal_filter": f.principal, "host_filter": f.host,
            "operation": f.operation, "permission_type": f.permission}
