"""Records: producing (with Kafka's default partitioner), listing offsets, fetching."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from ..wire.compression import Codec, CompressionError
from ..wire.records import InvalidRecords, Record, decode_records, encode_batch, iter_headers
from .cluster import ClusterClient, TopicInfo
from .connection import ClientError, KafkaError, check
from .security import ClientSecurity

# ListOffsets' timestamps that ask for the log start and the log end offset.
EARLIEST, LATEST = -2, -1


@dataclass(frozen=True)
class FetchedPartition:
    error: int
    high_watermark: int
    records: list[Record]


class RecordsClient(ClusterClient):
    """Records, from and to the leaders of their partitions."""

    def __init__(self, bootstrap: str, client_id: str = "kafkapy", timeout: float = 30.0,
                 security: ClientSecurity | None = None) -> None:
        super().__init__(bootstrap, client_id, timeout, security)
        self._round_robin: dict[str, Iterator[int]] = {}

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
                codec: int = Codec.NONE, headers: Sequence[tuple[str, bytes | None]] = ()) -> dict[int, int]:
        """Appends (key, value) records, each with `headers`, each to `partition` or the one
        Kafka's default partitioner picks, as one batch per partition acknowledged by all
        in-sync replicas; returns how many records went to each partition."""
        info = self.topic(topic)
        now = time.time_ns() // 1_000_000
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for key, value in records:
            chosen = self.partition_for(info, key) if partition is None else partition
            batch = by_partition[chosen]
            batch.append(Record(len(batch), now, key, value, tuple(headers)))
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

    def delete_records(self, topic: str, before: Mapping[int, int]) -> dict[int, int]:
        """Deletes each partition's records before an offset (-1: its high watermark), as
        DeleteRecords does; returns each partition's log start offset after."""
        info = self.topic(topic)
        starts = {}
        for leader, group in self._by_leader(info, before).items():
            response = self.broker(leader).request("delete_records", {
                "timeout": int(self.timeout * 1000),
                "topics": [{"name": topic, "partitions": [{"partition_index": p, "offset": before[p]} for p in group]}],
            })
            for result in response.topics[0].partitions:
                check(result.error_code, f"deleting the records of {topic}-{result.partition_index} "
                                         f"before offset {before[result.partition_index]}")
                starts[result.partition_index] = result.low_watermark
        return starts

    def log_end_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The log end offset of each (topic, partition); none for those of a topic deleted since."""
        by_topic: dict[str, list[int]] = defaultdict(list)
        for topic, partition in partitions:
            by_topic[topic].append(partition)
        ends = {}
        for topic, numbers in by_topic.items():
            try:
                offsets = self.list_offsets(topic, numbers, LATEST)
            except KafkaError as e:
                if e.code != ErrorCode.unknown_topic_or_partition:
                    raise
                continue
            ends.update({(topic, p): offset for p, offset in offsets.items()})
        return ends

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
