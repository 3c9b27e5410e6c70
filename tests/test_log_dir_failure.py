"""A log directory whose disk fails, as Kafka handles it: an I/O error (a failed fsync
above all) takes the directory offline, its partitions answer KAFKA_STORAGE_ERROR, what
the failed fsync covered is never acknowledged, committed or counted as durable, and the
other directories go on serving. The file layer fails on demand for one directory."""

from __future__ import annotations

import errno
import logging
import os
import uuid
from pathlib import Path

import anyio
import pytest
from kio.schema.errors import ErrorCode

from kafkapy.broker.replica_manager import ReplicaManager
from kafkapy.clock import FakeClock
from kafkapy.config import BrokerConfig
from kafkapy.log.config import LogConfig
from kafkapy.log.files import StorageError
from kafkapy.log.manager import RECOVERY_POINTS, LogManager, TopicPartition
from kafkapy.log.partition import LogError, PartitionLog
from kafkapy.metadata.image import BrokerImage, Endpoint, MetadataImage, PartitionImage, TopicImage
from kafkapy.wire.records import Record, encode_batch

pytestmark = pytest.mark.anyio

NODE = 1
HEALTHY, FAILING = TopicPartition("healthy", 0), TopicPartition("failing", 0)


class FailingDisk:
    """Makes fsync, or writes, of files under one directory fail with an errno; counts the attempts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
        self.directory = directory
        self.monkeypatch = monkeypatch
        self.attempts = 0

    def _in_directory(self, fd: int) -> bool:
        return os.readlink(f"/proc/self/fd/{fd}").startswith(str(self.directory))

    def fail_fsync(self, code: int = errno.EIO) -> None:
        real = os.fsync

        def fsync(fd: int) -> None:
            if self._in_directory(fd):
                self.attempts += 1
                raise OSError(code, os.strerror(code))
            real(fd)

        self.monkeypatch.setattr(os, "fsync", fsync)

    def fail_writes(self, code: int = errno.ENOSPC) -> None:
        real = os.pwritev

        def pwritev(fd: int, buffers, offset: int) -> int:  # type: ignore[no-untyped-def]
            if self._in_directory(fd):
                self.attempts += 1
                raise OSError(code, os.strerror(code))
            return real(fd, buffers, offset)

        self.monkeypatch.setattr(os, "pwritev", pwritev)


def two_directories(tmp_path: Path, **configs: object) -> tuple[ReplicaManager, Path, Path]:
    """A replica manager leading HEALTHY (first log directory) and FAILING (second) alone."""
    dirs = [tmp_path / "first", tmp_path / "second"]
    topics, names = {}, {}
    for tp in (HEALTHY, FAILING):
        topic_id = uuid.uuid4()
        topics[tp.topic] = TopicImage(tp.topic, topic_id, {0: PartitionImage(0, (NODE,), (NODE,), NODE, 1, 1)})
        names[topic_id] = tp.topic
    image = MetadataImage(offset=1, brokers={NODE: BrokerImage(NODE, (Endpoint("PLAINTEXT", "127.0.0.1", 9092),), None, False, 1)},
                          topics=topics, topic_names=names)
    logs = LogManager(dirs)
    logs.startup()
    replicas = ReplicaManager(logs, BrokerConfig(configs), FakeClock(), NODE)
    replicas.load(image)
    assert logs.dir_of(HEALTHY) == dirs[0] and logs.dir_of(FAILING) == dirs[1]
    return replicas, dirs[0], dirs[1]


def log_of(replicas: ReplicaManager, tp: TopicPartition) -> PartitionLog:
    found = replicas.get(*tp)
    assert found is not None
    return found


async def produce(replicas: ReplicaManager, tp: TopicPartition, value: bytes = b"v") -> int:
    """Appends one record as leader; its offset."""
    result = await replicas.append(tp.topic, tp.partition, log_of(replicas, tp), encode_batch([Record(0, 1000, b"k", value)]))
    return result.base_offset


async def test_a_failed_fsync_is_never_acknowledged_nor_retried_and_the_recovery_point_stays(tmp_path, monkeypatch, caplog):
    replicas, _, failing_dir = two_directories(tmp_path, **{"log.flush.interval.messages": 1})
    assert await produce(replicas, FAILING) == 0
    failing_log = log_of(replicas, FAILING)
    assert (failing_log.recovery_point, failing_log.high_watermark) == (1, 1)
    disk = FailingDisk(monkeypatch, failing_dir)
    disk.fail_fsync()

    with caplog.at_level(logging.ERROR), pytest.raises(LogError) as refused:
        await produce(replicas, FAILING)

    assert refused.value.code == ErrorCode.kafka_storage_error
    # Written, but neither durable, committed nor visible to consumers.
    assert failing_log.next_offset == 2
    assert (failing_log.recovery_point, failing_log.high_watermark) == (1, 1)
    assert failing_dir in replicas.logs.offline_dirs and replicas.offline(FAILING)
    assert replicas.get(*FAILING) is None and replicas.partition(FAILING) is None
    assert any(str(failing_dir) in r.getMessage() and "offline" in r.getMessage() for r in caplog.records)
    # Never fsynced again: a later fsync that succeeded would vouch for pages the failed one lost.
    with pytest.raises(LogError) as again:
        await replicas.append(FAILING.topic, 0, failing_log, encode_batch([Record(0, 1000, b"k", b"v")]))
    assert again.value.code == ErrorCode.kafka_storage_error
    await replicas.flush_due()
    assert disk.attempts == 1
    assert failing_log.recovery_point == 1

    # The other directory goes on: appends are acknowledged and made durable.
    assert await produce(replicas, HEALTHY) == 0
    assert await produce(replicas, HEALTHY) == 1
    healthy_log = log_of(replicas, HEALTHY)
    assert (healthy_log.recovery_point, healthy_log.high_watermark) == (2, 2)


async def test_a_write_error_answers_storage_errors_to_waiting_and_later_produces(tmp_path, monkeypatch):
    replicas, _, failing_dir = two_directories(tmp_path)
    disk = FailingDisk(monkeypatch, failing_dir)
    disk.fail_writes(errno.ENOSPC)

    with pytest.raises(LogError) as refused:
        await produce(replicas, FAILING)

    assert refused.value.code == ErrorCode.kafka_storage_error
    with anyio.fail_after(5):
        assert await replicas.wait_for_replication(FAILING, 1, 5, 1) == ErrorCode.kafka_storage_error
    assert await produce(replicas, HEALTHY) == 0
    assert log_of(replicas, HEALTHY).high_watermark == 1


async def test_an_offline_partition_is_not_recreated_elsewhere_when_the_metadata_changes(tmp_path, monkeypatch):
    replicas, healthy_dir, failing_dir = two_directories(tmp_path)
    FailingDisk(monkeypatch, failing_dir).fail_writes()
    with pytest.raises(LogError):
        await produce(replicas, FAILING)

    replicas.on_metadata(MetadataImage(), replicas._image)

    assert replicas.get(*FAILING) is None and replicas.offline(FAILING)
    assert not (healthy_dir / str(FAILING)).exists()


async def test_a_checkpoint_that_cannot_be_written_takes_only_its_directory_offline(tmp_path, monkeypatch):
    replicas, healthy_dir, failing_dir = two_directories(tmp_path)
    FailingDisk(monkeypatch, failing_dir).fail_fsync(errno.EROFS)

    replicas.logs.checkpoint()

    assert list(replicas.logs.offline_dirs) == [failing_dir]
    assert replicas.offline(FAILING) and not replicas.offline(HEALTHY)
    assert (healthy_dir / RECOVERY_POINTS).exists()
    assert await produce(replicas, HEALTHY) == 0


async def test_the_last_directory_online_cannot_take_new_partitions_once_offline(tmp_path, monkeypatch):
    logs = LogManager([tmp_path / "only"])
    logs.startup()
    FailingDisk(monkeypatch, tmp_path / "only").fail_fsync()
    logs.checkpoint()
    assert logs.online_dirs == []
    with pytest.raises(StorageError, match="every log directory is offline"):
        logs.open(TopicPartition("new", 0), LogConfig(), 0)

