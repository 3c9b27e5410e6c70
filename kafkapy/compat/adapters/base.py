"""The interface between scenarios and a client library.

A scenario is written once against `Client`; an adapter subclass implements each call
with its library. A call the library cannot make keeps the default here, which raises
`Unsupported`: the scenario is then reported as not supported by that client rather than
failed. Errors the broker answers with are raised as `BrokerError`, named as Kafka names
them, whichever library reported them.

Every call is bounded by TIMEOUT_S; the runner's deadline bounds the whole scenario.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

TIMEOUT_S = 30.0
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
# Producers are allowed requests this large so that the broker, not the client, decides
# what is too large (Kafka's default socket.request.max.bytes).
CLIENT_MAX_REQUEST_BYTES = 104_857_600

TOPIC = "topic"
BROKER = "broker"
# Operations of IncrementalAlterConfigs, as Kafka names them.
SET, DELETE, APPEND, SUBTRACT = "SET", "DELETE", "APPEND", "SUBTRACT"


class Unsupported(Exception):
    """The client library has no way to do what the scenario asks."""


class BrokerError(Exception):
    """A Kafka error code from the broker; `name` is Kafka's, e.g. MESSAGE_TOO_LARGE."""

    def __init__(self, code: int, message: str | None = None) -> None:
        # Imported here: kio takes a quarter of a second to import, which workers that meet
        # no error are spared.
        from kio.schema.errors import ErrorCode

        try:
            self.name = ErrorCode(code).name.upper()
        except ValueError:
            self.name = f"ERROR_{code}"
        self.code = code
        super().__init__(f"{self.name}: {message}" if message else self.name)


@dataclass(frozen=True)
class Record:
    """A record as produced (partition None: the client's partitioner picks one; timestamp
    None: the client stamps it) or as acknowledged or consumed."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: int | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class Partition:
    index: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class Cluster:
    cluster_id: str | None
    controller_id: int | None
    brokers: Mapping[int, tuple[str, int]]  # node id -> (host, port)


@dataclass(frozen=True)
class ConfigValue:
    value: str | None
    source: str  # Kafka's ConfigSource name, e.g. DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG
    read_only: bool


class Client:
    """One client library. An instance may keep an admin client open between calls (as
    applications do); `close` releases it. Producers and consumers last one call, so that
    each starts from the broker's current metadata."""

    name: ClassVar[str]

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def close(self) -> None:
        """Releases whatever the adapter keeps open."""

    def _lacks(self, feature: str) -> Unsupported:
        return Unsupported(f"{self.name} has no {feature}")

    # Metadata

    def api_versions(self) -> dict[int, tuple[int, int]]:
        """The broker's ApiVersions answer: api key -> (min version, max version)."""
        raise self._lacks("call that returns the broker's ApiVersions")

    def cluster(self) -> Cluster:
        raise self._lacks("call that describes the cluster")

    def topic_names(self) -> set[str]:
        raise self._lacks("call that lists topics")

    def partitions(self, topic: str) -> list[Partition]:
        """The topic's partitions from Metadata, in index order; BrokerError if it is unknown."""
        raise self._lacks("call that describes a topic's partitions")

    # Topics

    def create_topic(self, topic: str, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        raise self._lacks("CreateTopics call")

    def delete_topic(self, topic: str) -> None:
        raise self._lacks("DeleteTopics call")

    def create_partitions(self, topic: str, total: int) -> None:
        """Grows the topic to `total` partitions."""
        raise self._lacks("CreatePartitions call")

    # Produce and consume

    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        """Sends records with acks=all; returns them as acknowledged (with the timestamp,
        partition and offset they were stored with), in the order given. Raises BrokerError
        with the first error a record was refused with."""
        raise self._lacks("producer")

    def consume(self, topic: str, ends: Mapping[int, int], starts: Mapping[int, int] | None = None) -> list[Record]:
        """Every record from starts[partition] (default 0; below the log start the consumer
        resets to the earliest offset) up to ends[partition], in the order fetched."""
        raise self._lacks("consumer")

    # ListOffsets

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(earliest, latest) offsets."""
        raise self._lacks("call that lists earliest and latest offsets")

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        """The first offset whose record's timestamp is at or after timestamp, or None."""
        raise self._lacks("call that looks offsets up by time")

    # Configs: a resource is (TOPIC, topic name) or (BROKER, node id as a string).

    def describe_configs(self, resource: tuple[str, str]) -> dict[str, ConfigValue]:
        """Every config of the resource, defaults included."""
        raise self._lacks("DescribeConfigs call")

    def incremental_alter_configs(self, resource: tuple[str, str], ops: Sequence[tuple[str, str, str | None]]) -> None:
        """Applies (name, SET | DELETE | APPEND | SUBTRACT, value) operations at once."""
        raise self._lacks("IncrementalAlterConfigs call")

    def alter_configs(self, resource: tuple[str, str], configs: Mapping[str, str]) -> None:
        """The legacy AlterConfigs request, which sets the resource's dynamic configs."""
        raise self._lacks("legacy AlterConfigs call")

    # DeleteRecords

    def delete_records(self, topic: str, partition: int, before: int) -> int:
        """Deletes the records before offset `before` (-1: all); returns the new log start."""
        raise self._lacks("DeleteRecords call")
