"""The coordinator runtime's shell duties, on a real log and replica manager with a
metadata image set by hand: a coordinator partition is loaded when this broker becomes
its leader and unloaded when it stops being it, requests elsewhere get NOT_COORDINATOR,
replies wait until the records are committed, and a write that could not be appended
leaves no trace in the coordinator's state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from kio.schema.errors import ErrorCode

from kafkapy.broker.coordinator_runtime import Pending
from kafkapy.broker.group_runtime import GroupRuntime
from kafkapy.broker.replica_manager import ReplicaManager
from kafkapy.clock import FakeClock
from kafkapy.config import BrokerConfig
from kafkapy.coordinator.group_coordinator import GroupCoordinator
from kafkapy.log.manager import LogManager, TopicPartition
from kafkapy.log.partition import LogError
from kafkapy.metadata.image import BrokerImage, Endpoint, MetadataImage, PartitionImage, TopicImage
from kafkapy.wire.build import build
from kafkapy.wire.protocol import request_type

pytestmark = pytest.mark.anyio

NODE = 1
OFFSETS = "__consumer_offsets"
OFFSETS_ID = uuid.uuid4()
TP = TopicPartition(OFFSETS, 0)
OFFSET_COMMIT, OFFSET_FETCH, JOIN_GROUP = 8, 9, 11


def image(*, leader: int = NODE, leader_epoch: int = 1, isr: tuple[int, ...] = (NODE,)) -> MetadataImage:
    brokers = {n: BrokerImage(n, (Endpoint("PLAINTEXT", "127.0.0.1", 9090 + n),), None, False, 1) for n in (1, 2)}
    partition = PartitionImage(0, (1, 2), isr, leader, leader_epoch, leader_epoch)
    return MetadataImage(offset=leader_epoch, brokers=brokers, topics={OFFSETS: TopicImage(OFFSETS, OFFSETS_ID, {0: partition})},
                         topic_names={OFFSETS_ID: OFFSETS})


class Metadata:
    """What the runtime reads of the metadata manager: the image, and its listeners."""

    def __init__(self, first: MetadataImage) -> None:
        self.image = first
        self.listeners: list[Callable[[MetadataImage, MetadataImage], None]] = []

    def publish(self, new: MetadataImage) -> None:
        old, self.image = self.image, new
        for listener in self.listeners:
            listener(old, new)


class Shell:
    def __init__(self, tmp_path: Path, first: MetadataImage) -> None:
        self.config = BrokerConfig({"offsets.topic.num.partitions": 1, "offsets.commit.timeout.ms": 500,
                                    "group.initial.rebalance.delay.ms": 60_000})
        self.clock = FakeClock()
        logs = LogManager([str(tmp_path)])
        logs.startup()
        self.replicas = ReplicaManager(logs, self.config, self.clock, NODE)
        self.metadata = Metadata(first)
        self.replicas.load(first)
        self.metadata.listeners.append(self.replicas.on_metadata)
        self.runtime = GroupRuntime(self.config, lambda: GroupCoordinator(self.config, self.clock, 1), self.metadata, None,
                                    self.replicas)

    @property
    def log_end(self) -> int:
        partition_log = self.replicas.get(OFFSETS, 0)
        assert partition_log is not None
        return partition_log.next_offset

    async def commit(self, group_id: str, offset: int) -> ErrorCode:
        request = build(request_type(OFFSET_COMMIT, 9), {
            "group_id": group_id, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
            "retention_time": -1, "topics": [{"name": "t", "partitions": [
                {"partition_index": 0, "committed_offset": offset, "committed_leader_epoch": -1, "committed_metadata": ""},
            ]}],
        })
        coordinator = self.runtime.coordinator
        response = await self.runtime.call(group_id, lambda token: coordinator.commit_offsets(9, request, token),
                                           lambda error: {"topics": [{"partitions": [{"error_code": error}]}]})
        return ErrorCode(response["topics"][0]["partitions"][0]["error_code"])

    def committed(self, group_id: str) -> int | None:
        offset = self.runtime.coordinator.offsets.get(group_id, "t", 0)
        return None if offset is None else offset.committed_offset

    async def until_active(self) -> None:
        with anyio.fail_after(5):
            while not self.runtime.is_active(0):
                await anyio.sleep(0.01)


@pytest.fixture
async def shell(tmp_path: Path) -> AsyncIterator[Shell]:
    shell = Shell(tmp_path, image())
    async with anyio.create_task_group() as tg:
        await tg.start(shell.runtime.run)
        yield shell
        tg.cancel_scope.cancel()


async def test_reply_waits_until_the_followers_replicate(tmp_path: Path) -> None:
    shell = Shell(tmp_path, image(isr=(1, 2)))
    answers: list[ErrorCode] = []

    async def commit() -> None:
        answers.append(await shell.commit("g", 42))

    async with anyio.create_task_group() as tg:
        await tg.start(shell.runtime.run)
        tg.start_soon(commit)
        with anyio.fail_after(5):
            while shell.log_end == 0:
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        assert answers == [], "answered before the follower has the record"
        assert shell.replicas.follower_fetched(TP, 2, shell.log_end, 1)
        with anyio.fail_after(5):
            while not answers:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert answers == [ErrorCode.none]
    assert shell.committed("g") == 42


async def test_write_not_replicated_in_time_answers_coordinator_not_available(tmp_path: Path) -> None:
    shell = Shell(tmp_path, image(isr=(1, 2)))
    async with anyio.create_task_group() as tg:
        await tg.start(shell.runtime.run)
        assert await shell.commit("g", 42) is ErrorCode.coordinator_not_available
        tg.cancel_scope.cancel()


async def test_failed_append_reloads_the_state_from_the_log(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await shell.commit("g", 5) is ErrorCode.none

    async def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise LogError(ErrorCode.kafka_storage_error)

    with monkeypatch.context() as patch:
        patch.setattr(shell.replicas, "append", refuse)
        assert await shell.commit("g", 9) is ErrorCode.not_coordinator
        assert shell.runtime.partition_error(0) is ErrorCode.coordinator_load_in_progress
    await shell.until_active()
    assert shell.committed("g") == 5


async def test_not_enough_replicas_is_coordinator_not_available_and_leaves_nothing(tmp_path: Path) -> None:
    first = image()
    first = MetadataImage(offset=first.offset, brokers=first.brokers, topics=first.topics, topic_names=first.topic_names,
                          configs={(2, OFFSETS): {"min.insync.replicas": "2"}})
    shell = Shell(tmp_path, first)
    async with anyio.create_task_group() as tg:
        await tg.start(shell.runtime.run)
        assert await shell.commit("g", 7) is ErrorCode.coordinator_not_available
        assert shell.log_end == 0
        await shell.until_active()
        assert shell.committed("g") is None
        tg.cancel_scope.cancel()


async def test_losing_leadership_unloads_and_fails_parked_requests(shell: Shell) -> None:
    assert await shell.commit("g", 5) is ErrorCode.none
    request = build(request_type(JOIN_GROUP, 3), {
        "group_id": "joining", "session_timeout": 10_000, "rebalance_timeout": 10_000, "member_id": "",
        "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}],
    })
    answers: list[Any] = []

    async def join() -> None:
        coordinator = shell.runtime.coordinator
        answers.append(await shell.runtime.call(
            "joining", lambda token: coordinator.join_group(3, "c", "h", request, token),
            lambda error: {"error_code": error}))

    async with anyio.create_task_group() as tg:
        tg.start_soon(join)
        with anyio.fail_after(5):
            while "joining" not in shell.runtime.coordinator.groups:
                await anyio.sleep(0.01)
        assert answers == []  # parked for the initial rebalance delay
        shell.metadata.publish(image(leader=2, leader_epoch=2))
        with anyio.fail_after(5):
            while not answers:
                await anyio.sleep(0.01)
    assert answers[0]["error_code"] is ErrorCode.not_coordinator
    assert dict(shell.runtime.coordinator.groups) == {}
    assert await shell.commit("g", 6) is ErrorCode.not_coordinator


async def test_leadership_regained_loads_from_the_log(shell: Shell) -> None:
    assert await shell.commit("g", 5) is ErrorCode.none
    shell.metadata.publish(image(leader=2, leader_epoch=2))
    assert shell.committed("g") is None
    shell.metadata.publish(image(leader=NODE, leader_epoch=3))
    assert await shell.commit("g", 6) is ErrorCode.coordinator_load_in_progress
    await shell.until_active()
    assert shell.committed("g") == 5
    assert await shell.commit("g", 6) is ErrorCode.none
    assert shell.committed("g") == 6


def test_pending_keeps_its_first_outcome() -> None:
    token = Pending()
    token.fail(ErrorCode.not_coordinator)
    token.set({"late": True})
    assert token.error is ErrorCode.not_coordinator and token.value is None


async def test_the_timer_loop_sleeps_after_a_tick_that_answers_nothing(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    coordinator = shell.runtime.coordinator
    ticks = 0
    tick = coordinator.tick

    def counted() -> Any:
        nonlocal ticks
        ticks += 1
        return tick()

    monkeypatch.setattr(coordinator, "tick", counted)
    assert await shell.commit("g", 5) is ErrorCode.none  # wakes the timer loop once
    # Far more turns of the event loop than a timer loop that wakes itself would need to tick each time.
    for _ in range(200):
        await anyio.lowlevel.checkpoint()
    assert 1 <= ticks <= 2
