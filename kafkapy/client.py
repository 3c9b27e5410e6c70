"""A small synchronous Kafka client, for kafkapy's console tools.

It speaks the Kafka protocol to any broker: blocking sockets, one connection per broker,
one request at a time on each (a lock lets a group member's heartbeat thread share its
coordinator's). Requests are written once, as dicts naming the fields of every version
they may be sent at (`kafkapy.wire.build` keeps those of the version in use), and each
connection uses, per API, the highest version both the broker and kio know. It is not a
general-purpose client: no pipelining, no idempotence or transactions, v2 record batches
only, and retries only where a console tool would otherwise fail needlessly.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import itertools
import socket
import struct
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from kio.schema.errors import ErrorCode
from kio.schema.index import api_key_map
from kio.serial import entity_reader, entity_writer

from . import __version__
from .wire.build import build
from .wire.compression import Codec, CompressionError
from .wire.framing import recv_frame
from .wire.protocol import decode_response, encode_request, kio_versions, request_type
from .wire.records import InvalidRecords, Record, decode_records, encode_batch, iter_headers

API_KEYS = {name: key for key, name in api_key_map.items()}
# ListOffsets' timestamps that ask for the log start and the log end offset.
EARLIEST, LATEST = -2, -1
# Kafka's ConfigResource type of a topic, and the ConfigSource of a topic's own setting.
TOPIC_RESOURCE = 2
TOPIC_CONFIG_SOURCE = 1
# Oldest versions whose features the requests below rely on: null topics meaning "all"
# (Metadata, OffsetFetch), and -1 for the broker's default partitions (CreateTopics).
_OLDEST_USABLE = {API_KEYS["metadata"]: 1, API_KEYS["offset_fetch"]: 2, API_KEYS["create_topics"]: 4}
SESSION_TIMEOUT_MS = 10_000
REBALANCE_TIMEOUT_MS = 30_000
# Kafka's consumer heartbeats every 3 s; members learn of a rebalance from a heartbeat, so
# more often here lets a console consumer's group settle quickly.
HEARTBEAT_INTERVAL_S = 1.0
_RETRY_BACKOFF_S = 0.1
_SIZE = struct.Struct(">i")
_INT16 = struct.Struct(">h")
# Plainer words for codes whose description in Kafka is obscure at a console.
_PLAIN_EXPLANATIONS = {
    ErrorCode.unknown_topic_or_partition: "the topic or partition does not exist",
    ErrorCode.non_empty_group: "the group still has members",
    ErrorCode.group_id_not_found: "the group does not exist",
}

T = TypeVar("T")


class ClientError(Exception):
    """What a console tool reports and exits on: a broker's refusal, a broker it cannot
    reach, or a request the broker cannot serve."""


class BrokerUnreachable(ClientError):
    """No connection to a broker's address, or a connection that broke."""


class KafkaError(ClientError):
    """An error code in a broker's response, named as Kafka names it, with what it means:
    the broker's message, or else Kafka's description of the code."""

    def __init__(self, code: int, context: str, detail: str | None = None) -> None:
        try:
            self.code: int = ErrorCode(code)
            self.name = ErrorCode(code).name.upper()
        except ValueError:
            self.code, self.name = code, f"ERROR_CODE_{code}"
        # The broker's own message is the more specific; Kafka's general one stands in for it.
        explanation = detail or error_explanation(code)
        super().__init__(f"{context}: {self.name}" + (f" ({explanation})" if explanation else ""))

    @property
    def retriable(self) -> bool:
        # An unknown topic is retriable to Kafka's clients, waiting for metadata to spread;
        # at a console it is nearly always a typo, better reported at once.
        return getattr(self.code, "retriable", False) and self.code != ErrorCode.unknown_topic_or_partition


@cache
def _kafka_explanations() -> dict[str, str]:
    """Kafka's description of each error code: kio keeps them as docstrings of ErrorCode's members."""
    explanations: dict[str, str] = {}
    member = None
    for node in ast.parse(inspect.getsource(ErrorCode)).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            member = node.targets[0].id
        elif member and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            explanations[member] = str(node.value.value)
            member = None
    return explanations


def error_explanation(code: int) -> str:
    try:
        error = ErrorCode(code)
    except ValueError:
        return "an error code this client does not know"
    return _PLAIN_EXPLANATIONS.get(error) or _kafka_explanations().get(error.name, "")


def check(code: int, context: str, detail: str | None = None) -> None:
    if code != ErrorCode.none:
        raise KafkaError(code, context, detail)


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ClientError(f"{address!r} is not a broker address of the form HOST:PORT")
    return host.strip("[]"), int(port)


def _reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is a Kafka broker listening there?)"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, TimeoutError):
        return "timed out"
    return error.strerror or str(error) or type(error).__name__


class Connection:
    """One socket to one broker, with the API versions negotiated on it."""

    def __init__(self, host: str, port: int, description: str, client_id: str, timeout: float) -> None:
        self.address = f"{host}:{port}"
        self.timeout = timeout
        self.closed = False
        self._client_id = client_id
        self._lock = threading.Lock()
        self._correlation_ids = itertools.count(1)
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise BrokerUnreachable(f"cannot connect to {description} at {self.address}: {_reason(e)}") from None
        self.versions = {key: high for key, (_, high) in self._negotiate_versions().items()}

    def close(self) -> None:
        self.closed = True
        self._sock.close()

    def request(self, api: str, data: Mapping[str, Any], timeout: float | None = None) -> Any:
        """Sends the request `data` describes at the negotiated version; returns the response entity."""
        key = API_KEYS[api]
        version = self.versions.get(key)
        if version is None:
            raise ClientError(f"the broker at {self.address} does not support {api} in a version this client can use")
        frame = self._exchange(build(request_type(key, version), data), timeout)
        return decode_response(frame, key, version)[1]

    def _exchange(self, entity: Any, timeout: float | None = None) -> bytes:
        """The response frame (without its size) to a request entity."""
        with self._lock:
            if self.closed:
                raise BrokerUnreachable(f"the connection to the broker at {self.address} is closed")
            correlation_id = next(self._correlation_ids)
            try:
                self._sock.settimeout(timeout or self.timeout)
                self._sock.sendall(encode_request(entity, correlation_id, self._client_id))
                frame = recv_frame(self._sock)
            except OSError as e:
                self.close()
                raise BrokerUnreachable(f"lost the connection to the broker at {self.address}: {_reason(e)}") from None
            except BaseException:
                self.close()  # interrupted mid-frame: the stream can no longer be read
                raise
        (answered,) = _SIZE.unpack_from(frame)  # every response header starts with it
        if answered != correlation_id:
            self.close()
            raise ClientError(f"the broker at {self.address} answered request {correlation_id} with {answered}")
        return frame

    def _negotiate_versions(self) -> dict[int, tuple[int, int]]:
        """For each API both sides know, the range of versions both support."""
        key = API_KEYS["api_versions"]
        version = kio_versions(key)[1]  # type: ignore[index]
        while True:
            request = build(request_type(key, version), {
                "client_software_name": "kafkapy", "client_software_version": __version__,
            })
            frame = self._exchange(request)
            # A broker that does not know this version answers in version 0, with the versions
            # it knows; the error code comes first in every version, after the correlation id.
            (code,) = _INT16.unpack_from(frame, 4)
            if code != ErrorCode.unsupported_version or version == 0:
                break
            _, response = decode_response(frame, key, 0)
            version = min([version - 1] + [api.max_version for api in response.api_keys if api.api_key == key])
        _, response = decode_response(frame, key, version)
        check(response.error_code, f"ApiVersions with the broker at {self.address}")
        ranges = {}
        for api in response.api_keys:
            known = kio_versions(api.api_key)
            if known is None:
                continue
            low = max(known[0], api.min_version, _OLDEST_USABLE.get(api.api_key, 0))
            high = min(known[1], api.max_version)
            if low <= high:
                ranges[api.api_key] = (low, high)
        return ranges


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    internal: bool
    partitions: Mapping[int, PartitionInfo]


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str | None
    controller: int
    brokers: Mapping[int, tuple[str, int]]
    topics: Mapping[str, TopicInfo]
    topic_errors: Mapping[str, int]
    """The error code of each requested topic the metadata does not describe."""


@dataclass(frozen=True)
class ConfigEntry:
    name: str
    value: str | None
    source: int
    read_only: bool
    sensitive: bool


@dataclass(frozen=True)
class FetchedPartition:
    error: int
    high_watermark: int
    records: list[Record]


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str | None


@dataclass(frozen=True)
class GroupMemberInfo:
    member_id: str
    client_id: str
    client_host: str
    assignment: Mapping[str, list[int]]


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[GroupMemberInfo]


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


class Client:
    """Connections to a cluster's brokers, found from a bootstrap address."""

    def __init__(self, bootstrap: str, client_id: str = "kafkapy", timeout: float = 30.0) -> None:
        self.bootstrap = [parse_address(address) for address in bootstrap.split(",")]
        self.client_id = client_id
        self.timeout = timeout
        self._connections: dict[tuple[str, int], Connection] = {}
        self._brokers: dict[int, tuple[str, int]] = {}
        self._topic_names: dict[uuid.UUID, str] = {}
        self._topic_ids: dict[str, uuid.UUID] = {}
        self._round_robin: dict[str, Iterator[int]] = {}

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Connections

    def _connect(self, address: tuple[str, int], description: str) -> Connection:
        connection = self._connections.get(address)
        if connection is None or connection.closed:
            connection = Connection(*address, description, self.client_id, self.timeout)
            self._connections[address] = connection
        return connection

    def any_broker(self) -> Connection:
        """A connection to the first bootstrap broker that accepts one."""
        failures = []
        for address in self.bootstrap:
            try:
                return self._connect(address, "the bootstrap broker")
            except BrokerUnreachable as e:
                failures.append(e)
        if len(failures) == 1:
            raise failures[0]
        raise BrokerUnreachable("; ".join(str(e) for e in failures))

    def broker(self, node_id: int) -> Connection:
        if node_id not in self._brokers:
            self.metadata([])
        address = self._brokers.get(node_id)
        if address is None:
            raise ClientError(f"broker {node_id} is not in the cluster's metadata")
        return self._connect(address, f"broker {node_id} (at the address it advertises)")

    def controller(self) -> Connection:
        """The broker topic changes go to (in a KRaft cluster any broker forwards them)."""
        controller = self.metadata([]).controller
        return self.broker(controller) if controller >= 0 else self.any_broker()

    def coordinator(self, group: str) -> Connection:
        """A connection to the group's coordinator."""

        def find() -> Connection:
            response = self.any_broker().request("find_coordinator", {
                "key": group, "key_type": 0, "coordinator_keys": [group],
            })
            found = response.coordinators[0] if hasattr(response, "coordinators") else response
            check(found.error_code, f"finding the coordinator of group {group!r}", getattr(found, "error_message", None))
            return self._connect((found.host, found.port), f"the coordinator of group {group!r} (broker {found.node_id})")

        return self._retrying(find)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """attempt() again while it fails with a retriable error, within the client's timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return attempt()
            except KafkaError as e:
                if not e.retriable or time.monotonic() > deadline:
                    raise
            time.sleep(_RETRY_BACKOFF_S)

    # Metadata and topics

    def metadata(self, topics: Sequence[str] | None = None) -> ClusterInfo:
        """The brokers and the given topics (None: every topic)."""
        response = self.any_broker().request("metadata", {
            "topics": None if topics is None else [{"name": name, "topic_id": None} for name in topics],
            "allow_auto_topic_creation": False,
            "include_cluster_authorized_operations": False,
            "include_topic_authorized_operations": False,
        })
        self._brokers = {b.node_id: (b.host, b.port) for b in response.brokers}
        found, errors = {}, {}
        for topic in response.topics:
            if topic.error_code != ErrorCode.none:
                errors[topic.name] = topic.error_code
                continue
            topic_id = getattr(topic, "topic_id", None) or uuid.UUID(int=0)
            partitions = {
                p.partition_index: PartitionInfo(p.partition_index, p.leader_id, tuple(p.replica_nodes), tuple(p.isr_nodes))
                for p in topic.partitions
            }
            found[topic.name] = TopicInfo(topic.name, topic_id, topic.is_internal, partitions)
            self._topic_names[topic_id] = topic.name
            self._topic_ids[topic.name] = topic_id
        return ClusterInfo(getattr(response, "cluster_id", None), getattr(response, "controller_id", -1),
                           dict(self._brokers), found, errors)

    def topic(self, name: str) -> TopicInfo:
        """A topic's metadata, once each of its partitions has a leader (a new topic's may not yet)."""

        def lookup() -> TopicInfo:
            cluster = self.metadata([name])
            check(cluster.topic_errors.get(name, ErrorCode.none), f"topic {name!r}")
            info = cluster.topics[name]
            if any(p.leader < 0 for p in info.partitions.values()):
                raise KafkaError(ErrorCode.leader_not_available, f"topic {name!r}")
            return info

        return self._retrying(lookup)

    def _topic_name(self, entry: Any) -> str:
        """The topic a response entry is about: newer versions name it by id only."""
        for attribute in ("name", "topic"):
            name = getattr(entry, attribute, None)
            if name is not None:
                return name
        if entry.topic_id not in self._topic_names:
            self.metadata()
        return self._topic_names.get(entry.topic_id, str(entry.topic_id))

    def _topic_id(self, name: str) -> uuid.UUID:
        if name not in self._topic_ids:
            self.metadata([name])
        return self._topic_ids.get(name, uuid.UUID(int=0))

    def create_topic(self, name: str, partitions: int = -1, replication_factor: int = -1,
                     configs: Mapping[str, str] | None = None) -> int:
        """Creates a topic (-1: the broker's default); returns its number of partitions, or -1
        when the broker's response does not say."""
        response = self.controller().request("create_topics", {
            "topics": [{
                "name": name, "num_partitions": partitions, "replication_factor": replication_factor,
                "assignments": [], "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
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

    def describe_configs(self, resource_type: int, name: str) -> list[ConfigEntry]:
        response = self.any_broker().request("describe_configs", {
            "resources": [{"resource_type": resource_type, "resource_name": name, "configuration_keys": None}],
            "include_synonyms": False, "include_documentation": False,
        })
        [result] = response.results
        check(result.error_code, f"describing the configs of {name!r}", result.error_message)
        return [ConfigEntry(c.name, c.value, c.config_source, c.read_only, c.is_sensitive) for c in result.configs]

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

    # Records

    def _by_leader(self, info: TopicInfo, partitions: Iterable[int]) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = defaultdict(list)
        for partition in sorted(partitions):
            if partition not in info.partitions:
                raise ClientError(f"topic {info.name!r} has no partition {partition} "
                                  f"(it has {len(info.partitions)}: 0 to {len(info.partitions) - 1})")
            groups[info.partitions[partition].leader].append(partition)
        return groups

    def partition_for(self, info: TopicInfo, key: bytes | None) -> int:
        """Kafka's choice: by the key's murmur2 hash when there is a key, else round robin."""
        if key is not None:
            return partition_for_key(key, len(info.partitions))
        counter = self._round_robin.setdefault(info.name, itertools.count())
        return next(counter) % len(info.partitions)

    def produce(self, topic: str, records: Sequence[tuple[bytes | None, bytes | None]], partition: int | None = None,
                codec: int = Codec.NONE) -> dict[int, int]:
        """Appends (key, value) records, each to `partition` or the one Kafka's default
        partitioner picks, as one batch per partition acknowledged by all in-sync
        replicas; returns how many records went to each partition."""
        info = self.topic(topic)
        now = time.time_ns() // 1_000_000
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for key, value in records:
            chosen = self.partition_for(info, key) if partition is None else partition
            batch = by_partition[chosen]
            batch.append(Record(len(batch), now, key, value))
        self._by_leader(info, by_partition)  # refuses a partition the topic does not have
        pending = {p: encode_batch(batch, codec=codec) for p, batch in by_partition.items()}

        def send() -> None:
            nonlocal info
            failure = None
            for leader, partitions in self._by_leader(info, pending).items():
                response = self.broker(leader).request("produce", {
                    "transactional_id": None, "acks": -1, "timeout": int(self.timeout * 1000),
                    "topic_data": [{"name": topic, "topic_id": info.topic_id, "partition_data": [
                        {"index": p, "records": pending[p]} for p in partitions]}],
                })
                for result in response.responses[0].partition_responses:
                    if result.error_code == ErrorCode.none:
                        del pending[result.index]
                    else:
                        failure = KafkaError(result.error_code, f"producing to {topic}-{result.index}",
                                             getattr(result, "error_message", None))
                        if not failure.retriable:
                            raise failure
            if failure is not None:
                info = self.topic(topic)  # the leader may have moved
                raise failure

        self._retrying(send)
        return {p: len(batch) for p, batch in by_partition.items()}

    def list_offsets(self, topic: str, partitions: Iterable[int], timestamp: int) -> dict[int, int]:
        """Each partition's offset at `timestamp`: EARLIEST for the log start, LATEST for the log end."""
        info = self.topic(topic)
        offsets = {}
        for leader, group in self._by_leader(info, partitions).items():
            response = self.broker(leader).request("list_offsets", {
                "replica_id": -1, "isolation_level": 0, "timeout": int(self.timeout * 1000),
                "topics": [{"name": topic, "partitions": [
                    {"partition_index": p, "timestamp": timestamp, "current_leader_epoch": -1} for p in group]}],
            })
            for result in response.topics[0].partitions:
                check(result.error_code, f"listing the offsets of {topic}-{result.partition_index}")
                offsets[result.partition_index] = result.offset
        return offsets

    def fetch(self, info: TopicInfo, positions: Mapping[int, int], max_wait_ms: int = 500) -> dict[int, FetchedPartition]:
        """The records of each partition from its position on, as much as its leader has
        within max_wait_ms (transaction markers left out; read uncommitted)."""
        fetched = {}
        for leader, partitions in self._by_leader(info, positions).items():
            response = self.broker(leader).request("fetch", {
                "replica_id": -1, "max_wait": max_wait_ms, "min_bytes": 1, "max_bytes": 16 << 20,
                "isolation_level": 0, "session_id": 0, "session_epoch": -1, "rack_id": "",
                "topics": [{"topic": info.name, "topic_id": info.topic_id, "partitions": [
                    {"partition": p, "fetch_offset": positions[p], "partition_max_bytes": 1 << 20,
                     "current_leader_epoch": -1, "log_start_offset": -1} for p in partitions]}],
                "forgotten_topics_data": [],
            }, timeout=self.timeout + max_wait_ms / 1000)
            check(getattr(response, "error_code", ErrorCode.none), f"fetching from {info.name}")
            for topic in response.responses:
                for result in topic.partitions:
                    position = positions[result.partition_index]
                    records = [r for r in _decode_batches(result.records or b"", info.name) if r.offset >= position]
                    fetched[result.partition_index] = FetchedPartition(result.error_code, result.high_watermark, records)
        return fetched

    # Consumer groups

    def committed_offsets(self, group: str, topics: Sequence[str] | None = None) -> dict[tuple[str, int], int]:
        """The group's committed offset of each partition of `topics` (None: of all it has committed)."""
        requested = None
        if topics is not None:
            infos = [self.topic(t) for t in topics]
            requested = [{"name": i.name, "topic_id": i.topic_id, "partition_indexes": sorted(i.partitions)} for i in infos]

        def fetch_offsets() -> Any:
            response = self.coordinator(group).request("offset_fetch", {
                "group_id": group, "topics": requested, "require_stable": False,
                "groups": [{"group_id": group, "member_id": None, "member_epoch": -1, "topics": requested}],
            })
            found = response.groups[0] if hasattr(response, "groups") else response
            check(getattr(found, "error_code", ErrorCode.none), f"fetching the offsets of group {group!r}")
            return found

        found = self._retrying(fetch_offsets)
        offsets = {}
        for topic in found.topics:
            name = self._topic_name(topic)
            for p in topic.partitions:
                check(p.error_code, f"fetching the offset of group {group!r} for {name}-{p.partition_index}")
                if p.committed_offset >= 0:
                    offsets[(name, p.partition_index)] = p.committed_offset
        return offsets

    def commit_offsets(self, group: str, offsets: Mapping[tuple[str, int], int], generation: int = -1,
                       member_id: str = "") -> None:
        """Commits offsets: as a member of a generation, or (-1, "") as an admin for a group without members."""
        by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (topic, partition), offset in sorted(offsets.items()):
            by_topic[topic].append({"partition_index": partition, "committed_offset": offset,
                                    "committed_leader_epoch": -1, "committed_metadata": ""})
        if not by_topic:
            return
        response = self.coordinator(group).request("offset_commit", {
            "group_id": group, "generation_id_or_member_epoch": generation, "member_id": member_id,
            "group_instance_id": None, "retention_time": -1,
            "topics": [{"name": t, "topic_id": self._topic_id(t), "partitions": ps} for t, ps in by_topic.items()],
        })
        for topic in response.topics:
            for p in topic.partitions:
                check(p.error_code, f"committing the offset of group {group!r} for "
                                    f"{self._topic_name(topic)}-{p.partition_index}")

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

    def list_groups(self) -> list[GroupListing]:
        """The groups of every broker's coordinators."""
        groups = {}
        for node in sorted(self.metadata([]).brokers):
            response = self.broker(node).request("list_groups", {"states_filter": [], "types_filter": []})
            check(response.error_code, f"listing the groups of broker {node}")
            for g in response.groups:
                groups[g.group_id] = GroupListing(g.group_id, g.protocol_type, getattr(g, "group_state", None))
        return [groups[name] for name in sorted(groups)]

    def describe_group(self, group: str) -> GroupInfo:
        """A group's state and members; a group that does not exist is "Dead", as Kafka says."""

        def describe() -> Any:
            response = self.coordinator(group).request("describe_groups", {
                "groups": [group], "include_authorized_operations": False,
            })
            [found] = response.groups
            if found.error_code != ErrorCode.group_id_not_found:
                check(found.error_code, f"describing group {group!r}", getattr(found, "error_message", None))
            return found

        found = self._retrying(describe)
        if found.error_code == ErrorCode.group_id_not_found:
            return GroupInfo(group, "Dead", "", "", [])
        consumer = found.protocol_type == "consumer"
        members = [
            GroupMemberInfo(m.member_id, m.client_id, m.client_host,
                            decode_assignment(m.member_assignment) if consumer else {})
            for m in found.members
        ]
        return GroupInfo(found.group_id, found.group_state, found.protocol_type, found.protocol_data, members)


def _decode_batches(data: bytes, topic: str) -> Iterator[Record]:
    """The records of the complete v2 batches in fetched bytes, without control batches."""
    view = memoryview(data)
    for position, header in iter_headers(view):
        if header.is_control:
            continue
        try:
            yield from decode_records(view[position : position + header.size], header)
        except (InvalidRecords, CompressionError) as e:
            raise ClientError(f"cannot read a batch fetched from {topic}: {e}") from None


class GroupMember:
    """A member of a classic consumer group, as Kafka's consumer is one: it joins with the
    "consumer" protocol type and the range assignor (the leader assigns the partitions),
    heartbeats from a background thread, and leaves the group when closed."""

    def __init__(self, client: Client, group: str, topics: Sequence[str]) -> None:
        self.client = client
        self.group = group
        self.topics = list(topics)
        self.member_id = ""
        self.generation = -1
        self.assignment: dict[str, list[int]] = {}
        self.rejoin_needed = threading.Event()
        self.rejoin_needed.set()
        self._coordinator: Connection | None = None
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    def join(self) -> dict[str, list[int]]:
        """Joins (or rejoins) the group; returns this member's partitions of the new generation."""
        self._end_heartbeat()
        deadline = time.monotonic() + REBALANCE_TIMEOUT_MS / 1000 + self.client.timeout
        while (assignment := self._join_round()) is None:
            if time.monotonic() > deadline:
                raise ClientError(f"could not join group {self.group!r}: it kept rebalancing")
        self.assignment = assignment
        self.rejoin_needed.clear()
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat, args=(self._coordinator, self.generation, self.member_id, self._stop_heartbeat),
            name=f"heartbeat {self.group}", daemon=True,
        )
        self._heartbeat_thread.start()
        return assignment

    def _join_round(self) -> dict[str, list[int]] | None:
        """A JoinGroup and SyncGroup: this member's assignment, or None if another round is needed."""
        coordinator = self._coordinator = self.client.coordinator(self.group)
        joined = coordinator.request("join_group", {
            "group_id": self.group, "session_timeout": SESSION_TIMEOUT_MS, "rebalance_timeout": REBALANCE_TIMEOUT_MS,
            "member_id": self.member_id, "group_instance_id": None, "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": encode_subscription(self.topics)}], "reason": None,
        }, timeout=REBALANCE_TIMEOUT_MS / 1000 + self.client.timeout)
        if joined.error_code in (ErrorCode.member_id_required, ErrorCode.unknown_member_id):
            # A new member gets its id in a first round (KIP-394); a forgotten one starts afresh.
            self.member_id = joined.member_id if joined.error_code == ErrorCode.member_id_required else ""
            return None
        if ErrorCode(joined.error_code).retriable:  # the coordinator is moving or loading
            time.sleep(_RETRY_BACKOFF_S)
            return None
        check(joined.error_code, f"joining group {self.group!r}")
        self.member_id, self.generation = joined.member_id, joined.generation_id
        assignments = self._assign(joined.members) if joined.leader == joined.member_id else {}
        synced = coordinator.request("sync_group", {
            "group_id": self.group, "generation_id": self.generation, "member_id": self.member_id,
            "group_instance_id": None, "protocol_type": "consumer", "protocol_name": joined.protocol_name,
            "assignments": [{"member_id": m, "assignment": encode_assignment(a)} for m, a in assignments.items()],
        })
        if synced.error_code in (ErrorCode.rebalance_in_progress, ErrorCode.illegal_generation):
            return None
        if synced.error_code == ErrorCode.unknown_member_id:
            self.member_id = ""
            return None
        check(synced.error_code, f"syncing with group {self.group!r}")
        return decode_assignment(synced.assignment)

    def _assign(self, members: Sequence[Any]) -> dict[str, dict[str, list[int]]]:
        subscriptions = {m.member_id: decode_subscription(m.metadata) for m in members}
        topics = sorted(set(itertools.chain.from_iterable(subscriptions.values())))
        cluster = self.client.metadata(topics)
        counts = {name: len(info.partitions) for name, info in cluster.topics.items()}
        return range_assign(subscriptions, counts)

    def _heartbeat(self, coordinator: Connection, generation: int, member_id: str, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_INTERVAL_S):
            try:
                response = coordinator.request("heartbeat", {
                    "group_id": self.group, "generation_id": generation, "member_id": member_id,
                    "group_instance_id": None,
                })
            except ClientError:
                response = None
            # A rebalance, a fenced member or a lost coordinator: the consumer rejoins.
            if response is None or response.error_code != ErrorCode.none:
                self.rejoin_needed.set()
                return

    def _end_heartbeat(self) -> None:
        self._stop_heartbeat.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join()
            self._heartbeat_thread = None

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.client.commit_offsets(self.group, offsets, self.generation, self.member_id)

    def close(self) -> None:
        """Leaves the group, so it rebalances now rather than after the session timeout."""
        self._end_heartbeat()
        if not self.member_id:
            return
        response = self.client.coordinator(self.group).request("leave_group", {
            "group_id": self.group, "member_id": self.member_id,
            "members": [{"member_id": self.member_id, "group_instance_id": None, "reason": "the consumer is closing"}],
        })
        self.member_id = ""
        check(response.error_code, f"leaving group {self.group!r}")


def range_assign(subscriptions: Mapping[str, Sequence[str]], partition_counts: Mapping[str, int]) -> dict[str, dict[str, list[int]]]:
    """Kafka's RangeAssignor: for each topic, its subscribers in member id order take
    consecutive ranges of its partitions, the first `count % subscribers` one more each."""
    assignment: dict[str, dict[str, list[int]]] = {member: {} for member in subscriptions}
    for topic, count in sorted(partition_counts.items()):
        members = sorted(m for m, topics in subscriptions.items() if topic in topics)
        if not members:
            continue
        share, extra = divmod(count, len(members))
        start = 0
        for index, member in enumerate(members):
            size = share + (index < extra)
            if size:
                assignment[member][topic] = list(range(start, start + size))
            start += size
    return assignment


# The consumer protocol's subscription and assignment bytes: a version, then the struct at
# that version. Later versions only append fields, so a newer one reads as the newest known.
_CONSUMER_PROTOCOL_VERSION = 3


@cache
def _consumer_protocol_type(kind: str, version: int) -> type:
    module = importlib.import_module(f"kio.schema.consumer_protocol_{kind}.v{version}.data")
    return getattr(module, f"ConsumerProtocol{kind.title()}")


def _encode_versioned(kind: str, data: Mapping[str, Any]) -> bytes:
    entity = build(_consumer_protocol_type(kind, _CONSUMER_PROTOCOL_VERSION), data)
    out = io.BytesIO()
    out.write(_INT16.pack(_CONSUMER_PROTOCOL_VERSION))
    entity_writer(type(entity))(out, entity)
    return out.getvalue()


def _decode_versioned(kind: str, data: bytes) -> Any:
    (version,) = _INT16.unpack_from(data)
    entity_type = _consumer_protocol_type(kind, min(version, _CONSUMER_PROTOCOL_VERSION))
    return entity_reader(entity_type)(data, _INT16.size)[0]


def encode_subscription(topics: Sequence[str]) -> bytes:
    return _encode_versioned("subscription", {"topics": sorted(topics), "owned_partitions": []})


def decode_subscription(data: bytes) -> list[str]:
    return list(_decode_versioned("subscription", data).topics)


def encode_assignment(assignment: Mapping[str, Sequence[int]]) -> bytes:
    return _encode_versioned("assignment", {
        "assigned_partitions": [{"topic": t, "partitions": sorted(ps)} for t, ps in sorted(assignment.items())],
    })


def decode_assignment(data: bytes | None) -> dict[str, list[int]]:
    """A member's partitions by topic; none for the empty bytes of a member without any."""
    if not data:
        return {}
    assignment = _decode_versioned("assignment", data)
    return {tp.topic: sorted(tp.partitions) for tp in assignment.assigned_partitions}


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2: a signed 32-bit MurmurHash2 with Kafka's seed."""
    mask = 0xFFFFFFFF
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[whole:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """Kafka's default partitioner for a keyed record: toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions
