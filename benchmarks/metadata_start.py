"""How long the metadata layer takes to start, with and without a snapshot.

    python benchmarks/metadata_start.py [--records 100000] [--churn 0.5] [--repeats 5]

Builds a metadata log of --records records in a temporary directory: topics of 10
partitions and 5 configs each, committed one topic per batch as CreateTopics commits
them, and, for a --churn share of the records, changes to topics already there
(leader and ISR changes, config updates, in batches of 10), as a cluster's log
accumulates them. Then times a start: opening the metadata log's directory and
`MetadataManager.load()`, from the log alone and from a snapshot of the whole image
plus an empty log tail. Prints the median and the spread of --repeats starts of each.
A snapshot holds one record per live thing, so it saves what the churn added.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import anyio
from kio.static.primitive import i8, i32

from kafkapy.clock import SystemClock
from kafkapy.log.config import LogConfig
from kafkapy.log.partition import PartitionLog
from kafkapy.metadata.manager import MetadataManager, SnapshotPolicy
from kafkapy.metadata.records import (
    RESOURCE_TOPIC,
    ConfigRecord,
    PartitionChangeRecord,
    PartitionRecord,
    TopicRecord,
)
from kafkapy.raft.local import LocalQuorum
from kafkapy.raft.snapshot import delete_snapshot

PARTITIONS = 10
REPLICAS = (i32(1), i32(2), i32(3))
CONFIGS = ("cleanup.policy", "retention.ms", "segment.bytes", "min.insync.replicas", "max.message.bytes")
METADATA_DIR = "__cluster_metadata-0"
# The metadata log as the broker opens it: its own retention off.
LOG_CONFIG = LogConfig(retention_ms=-1, retention_bytes=-1)


def topic(i: int) -> list[object]:
    topic_id = uuid.UUID(int=i + 1)
    name = f"topic-{i:06d}"
    records: list[object] = [TopicRecord(name=name, topic_id=topic_id)]
    records += [
        PartitionRecord(partition_id=i32(p), topic_id=topic_id, replicas=REPLICAS, isr=REPLICAS, leader=i32(1 + p % 3),
                        leader_epoch=i32(0), partition_epoch=i32(0))
        for p in range(PARTITIONS)
    ]
    records += [ConfigRecord(resource_type=i8(RESOURCE_TOPIC), resource_name=name, name=c, value="1000") for c in CONFIGS]
    return records


def changes(rng: random.Random, topics: int) -> list[object]:
    """Ten changes to existing topics: a new leader or a shrunk ISR, or a config's new value."""
    out: list[object] = []
    for _ in range(10):
        i = rng.randrange(topics)
        if rng.random() < 0.8:
            out.append(PartitionChangeRecord(
                partition_id=i32(rng.randrange(PARTITIONS)), topic_id=uuid.UUID(int=i + 1),
                leader=i32(rng.choice((1, 2, 3))), isr=rng.choice((REPLICAS, REPLICAS[:2], REPLICAS[1:])),
            ))
        else:
            out.append(ConfigRecord(resource_type=i8(RESOURCE_TOPIC), resource_name=f"topic-{i:06d}",
                                    name=rng.choice(CONFIGS), value=str(rng.randrange(10**6))))
    return out


def build(root: Path, count: int, churn: float) -> MetadataManager:
    clock = SystemClock()
    log = PartitionLog.open(root / METADATA_DIR, LOG_CONFIG, clock.wall_ms())
    manager = MetadataManager(LocalQuorum(log, clock), SnapshotPolicy(max_bytes=1, max_interval_ms=0))
    rng = random.Random(630)
    written = changed = topics = 0
    while written < count:
        if topics and changed < churn * written:
            records = changes(rng, topics)
            changed += len(records)
        else:
            records = topic(topics)
            topics += 1
        records = records[: count - written]
        anyio.run(manager.commit, records)
        written += len(records)
    return manager


def start(root: Path) -> tuple[float, MetadataManager]:
    clock = SystemClock()
    started = time.perf_counter()
    log = PartitionLog.open(root / METADATA_DIR, LOG_CONFIG, clock.wall_ms(), clean_shutdown=True)
    manager = MetadataManager(LocalQuorum(log, clock))
    manager.load()
    elapsed = time.perf_counter() - started
    log.close()
    return elapsed, manager


def timed(root: Path, repeats: int) -> tuple[list[float], MetadataManager]:
    times = []
    manager = None
    for _ in range(repeats):
        elapsed, manager = start(root)
        times.append(elapsed)
    assert manager is not None
    return times, manager


def describe(label: str, times: list[float]) -> str:
    return (f"{label:<28} median {statistics.median(times) * 1000:8.1f} ms"
            f"   min {min(times) * 1000:8.1f} ms   max {max(times) * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--churn", type=float, default=0.5, help="share of records that change existing topics")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kafkapy-metadata-bench-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        manager = build(root, args.records, args.churn)
        image = manager.image
        log_bytes = manager.quorum.log.size
        manager.quorum.log.close()
        print(f"metadata log: {image.offset + 1} records ({args.churn:.0%} churn), {len(image.topics)} topics, {log_bytes / 1e6:.1f} MB "
              f"(built in {time.perf_counter() - began:.1f} s)")

        log_only, replayed = timed(root, args.repeats)
        assert replayed.image == image and replayed.snapshot_id is None

        # A snapshot of the whole image, written as the broker's worker thread does
        # (due at once, whatever the byte threshold).
        replayed.policy = SnapshotPolicy(max_bytes=1, max_interval_ms=0)
        job = replayed.snapshot_due(0)
        assert job is not None
        began = time.perf_counter()
        assert anyio.run(replayed.write_snapshot, job)
        written_in = time.perf_counter() - began
        snapshot_file = next((root / METADATA_DIR).glob("*.checkpoint"))
        print(f"snapshot: {len(image.to_records())} records, {snapshot_file.stat().st_size / 1e6:.1f} MB, "
              f"written in {written_in * 1000:.0f} ms")

        from_snapshot, loaded = timed(root, args.repeats)
        assert loaded.image == image and loaded.snapshot_id == job.snapshot_id
        delete_snapshot(root / METADATA_DIR, job.snapshot_id)

        print(describe("start, log only:", log_only))
        print(describe("start, snapshot + log tail:", from_snapshot))
        print(f"speed-up: {statistics.median(log_only) / statistics.median(from_snapshot):.1f}x")


if __name__ == "__main__":
    main()
