"""I/O errors on the metadata log, as Kafka handles them: a node that cannot write or
fsync its metadata log, a snapshot of it or its quorum state halts, naming the file and
the error; what it could not persist is never committed, acknowledged or handed on, and
nothing is written or fsynced after the failure. The file layer fails on demand for the
metadata log's directory (FailingDisk)."""

from __future__ import annotations

import errno
import logging
import uuid
from pathlib import Path

import anyio
import pytest

from kafkapy.clock import FakeClock
from kafkapy.config import BrokerConfig
from kafkapy.log.config import LogConfig
from kafkapy.log.files import StorageError
from kafkapy.log.partition import PartitionLog
from kafkapy.metadata.records import TopicRecord
from kafkapy.raft.local import LocalQuorum, MetadataLogFailure
from kafkapy.raft.messages import Entry
from kafkapy.raft.output import Append, QuorumState, RaftConfig
from kafkapy.raft.snapshot import SnapshotId, list_snapshots
from kafkapy.server import BrokerServer
from kafkapy.server.quorum import QuorumServer
from kafkapy.server.quorum_storage import QUORUM_STATE_FILE, RaftStorage
from test_log_dir_failure import FailingDisk

pytestmark = [pytest.mark.timeout(60), pytest.mark.anyio]

METADATA_DIR = "__cluster_metadata-0"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def local_quorum(directory: Path) -> tuple[LocalQuorum, list[tuple[int, bytes]], list[MetadataLogFailure]]:
    quorum = LocalQuorum(PartitionLog.open(directory, LogConfig(), 0), FakeClock())
    committed: list[tuple[int, bytes]] = []
    failures: list[MetadataLogFailure] = []
    quorum.on_commit = lambda records, _time, _size: committed.extend(records)
    quorum.on_failure = failures.append
    return quorum, committed, failures


async def test_a_failed_metadata_fsync_is_never_committed_and_nothing_is_persisted_after_it(tmp_path, monkeypatch):
    directory = tmp_path / METADATA_DIR
    quorum, committed, failures = local_quorum(directory)
    await quorum.append([b"kept"])
    disk = FailingDisk(monkeypatch, directory)
    disk.fail_fsync()
    with pytest.raises(MetadataLogFailure) as failed:
        await quorum.append([b"lost"])
    assert str(directory / "00000000000000000000.log") in str(failed.value)
    assert "Input/output error" in str(failed.value)
    assert failures == [failed.value]
    assert committed == [(0, b"kept")]
    assert (quorum.log.high_watermark, quorum.log.recovery_point) == (1, 1)
    # Refused before anything is written: a later fsync would otherwise cover the batch that failed.
    attempts, end = disk.attempts, quorum.log.next_offset
    with pytest.raises(MetadataLogFailure):
        await quorum.append([b"after"])
    assert (disk.attempts, quorum.log.next_offset, committed) == (attempts, end, [(0, b"kept")])
    assert failures == [failed.value]


async def test_a_metadata_log_write_refused_for_space_is_never_committed(tmp_path, monkeypatch):
    directory = tmp_path / METADATA_DIR
    quorum, committed, failures = local_quorum(directory)
    FailingDisk(monkeypatch, directory).fail_writes(errno.ENOSPC)
    with pytest.raises(MetadataLogFailure, match="No space left on device"):
        await quorum.append([b"lost"])
    assert committed == [] and len(failures) == 1
    assert failures[0].during.startswith("writing the metadata log")


async def test_a_metadata_snapshot_that_cannot_be_written_halts_and_leaves_no_snapshot(tmp_path, monkeypatch):
    directory = tmp_path / METADATA_DIR
    quorum, _, failures = local_quorum(directory)
    await quorum.append([b"a", b"b"])
    FailingDisk(monkeypatch, directory).fail_fsync()
    with pytest.raises(MetadataLogFailure, match=r"writing the metadata snapshot .*00000000000000000002-0000000000\.checkpoint"):
        await quorum.take_snapshot(SnapshotId(2, 0), lambda: [b"a", b"b"], 0)
    assert len(failures) == 1 and list_snapshots(directory) == []
    assert not await quorum.take_snapshot(SnapshotId(2, 0), lambda: [b"a", b"b"], 0)


def test_a_quorum_state_that_cannot_be_written_names_its_file_and_keeps_the_old_state(tmp_path, monkeypatch):
    storage = RaftStorage(tmp_path, (1, 2, 3), 0)
    storage.persist(QuorumState(1, 1, 1), [Append(0, (Entry(1, b"a"),))], 0)
    FailingDisk(monkeypatch, tmp_path).fail_fsync()
    with pytest.raises(MetadataLogFailure, match=f"writing the quorum state {tmp_path / QUORUM_STATE_FILE}"):
        storage.persist(QuorumState(2, None, 2), [], 0)  # a vote it must not grant
    storage.abandon()
    monkeypatch.undo()
    assert RaftStorage(tmp_path, (1, 2, 3), 0).load(0)[0] == QuorumState(1, 1, 1)


async def test_a_raft_voter_that_cannot_fsync_halts_without_handing_on_the_entry(tmp_path, monkeypatch, caplog):
    directory = tmp_path / METADATA_DIR
    committed: list[bytes] = []
    config = RaftConfig(election_timeout_ms=100, fetch_timeout_ms=200, election_backoff_max_ms=100, request_timeout_ms=200)
    server = QuorumServer(1, (1,), {}, directory, config,
                          on_commit=lambda records, _time, _size: committed.extend(v for _, v in records))
    ended: list[BaseException] = []

    async def run(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            await server.run(task_status=task_status)
        except BaseException as e:  # noqa: BLE001 - what ended it is what the test checks
            ended.append(e)

    async with anyio.create_task_group() as tg:
        await tg.start(run)
        with anyio.fail_after(10):
            while not server.is_leader or server.high_watermark is None:
                await anyio.sleep(0.01)
            await server.append([b"kept"])
            FailingDisk(monkeypatch, directory).fail_fsync()
            with pytest.raises(MetadataLogFailure), caplog.at_level(logging.CRITICAL):
                await server.append([b"lost"])
            while not ended:
                await anyio.sleep(0.01)
    assert committed == [b"kept"]
    assert [type(leaf(e)) for e in ended] == [MetadataLogFailure]
    assert f"Halting: fsyncing the metadata log {directory / '00000000000000000000.log'} failed" in caplog.text


def leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


async def test_a_single_node_whose_metadata_log_cannot_be_fsynced_halts_and_restarts_whole(tmp_path, monkeypatch, caplog):
    config = BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path)})
    server = BrokerServer(config)
    topic = TopicRecord(name="never-acknowledged", topic_id=uuid.uuid4())
    with pytest.raises(BaseException) as ended, caplog.at_level(logging.CRITICAL), anyio.fail_after(20):  # noqa: PT011 - checked below
        async with anyio.create_task_group() as tg:
            await tg.start(server.run)
            assert server.broker is not None
            metadata = server.broker.metadata
            FailingDisk(monkeypatch, tmp_path / METADATA_DIR).fail_fsync()
            with pytest.raises(MetadataLogFailure):
                await metadata.commit([topic])
            assert "never-acknowledged" not in metadata.image.topics
    halted = leaf(ended.value)
    assert isinstance(halted, StorageError) and "holds the metadata log" in str(halted)
    assert (f"Halting: log directory {tmp_path} holds the metadata log and is offline (fsyncing the metadata log "
            f"{tmp_path / METADATA_DIR / '00000000000000000000.log'}: [Errno 5] Input/output error)") in caplog.text
    monkeypatch.undo()
    restarted = BrokerServer(config)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(restarted.run)
            assert restarted.broker is not None and restarted.broker.metadata.image.brokers
            restarted.stop()
