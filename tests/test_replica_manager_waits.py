"""Which waiting fetches the leader's replica manager wakes, and when a follower's fetch
moves the high watermark: the per-record work of a leader whose followers also copy idle
partitions from it (as __consumer_offsets makes them)."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest

from kafkapy.broker.replica_manager import ReplicaManager
from kafkapy.clock import FakeClock
from kafkapy.config import BrokerConfig
from kafkapy.log.manager import LogManager, TopicPartition
from kafkapy.metadata.image import BrokerImage, Endpoint, MetadataImage, PartitionImage, TopicImage
from kafkapy.wire.records import Record, encode_batch

pytestmark = pytest.mark.anyio

LEADER, FOLLOWER = 1, 2
TOPIC, TOPIC_ID = "t", uuid.uuid4()
TP = TopicPartition(TOPIC, 0)


def led_here(tmp_path: Path, clock: FakeClock | None = None) -> ReplicaManager:
    brokers = {n: BrokerImage(n, (Endpoint("PLAINTEXT", "127.0.0.1", 9090 + n),), None, False, 1) for n in (LEADER, FOLLOWER)}
    partition = PartitionImage(0, (LEADER, FOLLOWER), (LEADER, FOLLOWER), LEADER, 1, 1)
    image = MetadataImage(offset=1, brokers=brokers, topics={TOPIC: TopicImage(TOPIC, TOPIC_ID, {0: partition})},
                          topic_names={TOPIC_ID: TOPIC})
    logs = LogManager([str(tmp_path)])
    logs.startup()
    replicas = ReplicaManager(logs, BrokerConfig({}), clock or FakeClock(), LEADER)
    replicas.load(image)
    return replicas


def high_watermark(replicas: ReplicaManager) -> int:
    partition_log = replicas.get(TOPIC, 0)
    assert partition_log is not None
    return partition_log.high_watermark


async def append_one(replicas: ReplicaManager) -> None:
    partition_log = replicas.get(TOPIC, 0)
    assert partition_log is not None
    await replicas.append(TOPIC, 0, partition_log, encode_batch([Record(0, 1000, b"k", b"v")]))


async def test_a_high_watermark_move_wakes_consumers_not_followers_waiting_at_the_log_end(tmp_path: Path) -> None:
    replicas = led_here(tmp_path)
    await append_one(replicas)
    assert replicas.follower_fetched(TP, FOLLOWER, 0, 1)
    woken: list[str] = []

    async def wait(name: str, log_end: bool) -> None:
        await replicas.wait_for_append([TP], 5, log_end=log_end)
        woken.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "consumer", False)
        tg.start_soon(wait, "follower", True)
        await anyio.wait_all_tasks_blocked()
        assert replicas.follower_fetched(TP, FOLLOWER, 1, 1)  # the follower holds offset 0: committed
        await anyio.wait_all_tasks_blocked()
        assert high_watermark(replicas) == 1
        assert woken == ["consumer"]
        await append_one(replicas)  # data past the log end is what wakes a follower
        await anyio.wait_all_tasks_blocked()
        assert woken == ["consumer", "follower"]


async def test_a_fetch_at_an_unchanged_position_records_the_follower_without_moving_anything(tmp_path: Path) -> None:
    clock = FakeClock()
    replicas = led_here(tmp_path, clock)
    await append_one(replicas)
    assert replicas.follower_fetched(TP, FOLLOWER, 1, 1)
    partition_log, partition = replicas.get(TOPIC, 0), replicas.partition(TP)
    assert partition_log is not None and partition is not None
    assert partition_log.high_watermark == 1
    clock.advance(10_000)
    assert replicas.follower_fetched(TP, FOLLOWER, 1, 1)
    assert partition.followers[FOLLOWER].last_caught_up_ms == clock.monotonic_ms()
    assert partition_log.high_watermark == 1
