"""A Raft voter's durable state: Kafka's quorum-state file and the metadata log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kafkapy.raft.log import BatchBoundaryError
from kafkapy.raft.messages import Entry, SnapshotId
from kafkapy.raft.output import Append, DeleteBefore, InstallSnapshot, QuorumState, SaveSnapshot, Snapshot, Truncate
from kafkapy.raft.snapshot import CorruptSnapshot, encode_snapshot, list_snapshots, read_snapshot, write_snapshot_file
from kafkapy.server.quorum_storage import QUORUM_STATE_FILE, QuorumStateFile, RaftStorage

VOTERS = (3, 1, 2)


def test_quorum_state_file_is_kafkas_json(tmp_path: Path) -> None:
    state_file = QuorumStateFile(tmp_path, VOTERS)
    assert state_file.read() == QuorumState()
    state_file.write(QuorumState(epoch=7, leader_id=2, voted_id=3))
    assert json.loads((tmp_path / QUORUM_STATE_FILE).read_text()) == {
        "clusterId": "", "leaderId": 2, "leaderEpoch": 7, "votedId": 3, "appliedOffset": 0,
        "currentVoters": [{"voterId": 1}, {"voterId": 2}, {"voterId": 3}], "data_version": 0,
    }
    assert state_file.read() == QuorumState(7, 2, 3)
    assert not list(tmp_path.glob("*.tmp"))


def test_log_survives_a_reopen_with_epochs_leaders_and_batches(tmp_path: Path) -> None:
    batches = ((Entry(1, b"", control=True),), (Entry(1, b"a"), Entry(1, b"b")), (Entry(3, b"", control=True),),
               (Entry(3, b"c"),), (Entry(3, b"d"), Entry(3, b"e")))
    storage = RaftStorage(tmp_path, VOTERS, 0)
    storage.leaders.update({1: 2, 3: 1})
    ops, offset = [], 0
    for batch in batches:
        ops.append(Append(offset, batch))
        offset += len(batch)
    storage.persist(QuorumState(3, 1, 1), ops, 1000)
    storage.close()
    reopened = RaftStorage(tmp_path, VOTERS, 0)
    state, log, _ = reopened.load(0)
    assert state == QuorumState(3, 1, 1)
    assert log.batches() == list(batches)
    assert reopened.leaders == {1: 2, 3: 1}
    # Each Append is one record batch, carrying its entries' epoch as partition leader epoch.
    assert [(h.base_offset, h.records_count, h.partition_leader_epoch) for h, _ in reopened.log.iter_batches()] == [
        (0, 1, 1), (1, 2, 1), (3, 1, 3), (4, 1, 3), (5, 2, 3)]
    assert reopened.log.epochs.epochs == [1, 3]
    reopened.close()


def test_truncation_falls_between_batches_and_inside_one_is_refused(tmp_path: Path) -> None:
    storage = RaftStorage(tmp_path, VOTERS, 0)
    storage.persist(None, [Append(0, (Entry(1, b"a"), Entry(1, b"b"))), Append(2, (Entry(1, b"c"), Entry(1, b"d")))], 0)
    # Inside the second batch: refused, and the log is left whole (a partial rewrite of the
    # entries below 3 could lose committed ones in a crash).
    with pytest.raises(BatchBoundaryError):
        storage.persist(None, [Truncate(3)], 0)
    assert storage.load(0)[1].batches() == [(Entry(1, b"a"), Entry(1, b"b")), (Entry(1, b"c"), Entry(1, b"d"))]
    storage.persist(None, [Truncate(2), Append(2, (Entry(2, b"x"),))], 0)
    storage.close()
    reopened = RaftStorage(tmp_path, VOTERS, 0)
    _, log, _ = reopened.load(0)
    assert log.batches() == [(Entry(1, b"a"), Entry(1, b"b")), (Entry(2, b"x"),)]
    assert log.end_offset_for_epoch(1).offset == 2
    reopened.persist(None, [Truncate(0)], 0)
    assert reopened.load(0)[1].entries == []
    reopened.close()


def snapshot_of(snapshot_id: SnapshotId, values: list[bytes]) -> Snapshot:
    """A core snapshot whose data is the .checkpoint file content, as the shell makes it."""
    return Snapshot(snapshot_id, b"".join(encode_snapshot(snapshot_id, values, last_contained_log_timestamp=5, now_ms=7)))


def append_ops(base: int, batches: list[tuple[Entry, ...]]) -> list[Append]:
    ops = []
    for batch in batches:
        ops.append(Append(base, batch))
        base += len(batch)
    return ops


def test_a_saved_snapshot_moves_the_log_start_and_comes_back_on_start(tmp_path: Path) -> None:
    storage = RaftStorage(tmp_path, VOTERS, 0)
    batches = [(Entry(1, b"", control=True),), (Entry(1, b"a"), Entry(1, b"b")), (Entry(2, b"", control=True),),
               (Entry(2, b"c"),)]
    storage.persist(None, append_ops(0, batches), 0)
    storage.log.roll(0)  # the older batches in a segment of their own, which the log start then passes
    storage.persist(None, append_ops(5, [(Entry(2, b"d"),)]), 0)
    snapshot = snapshot_of(SnapshotId(5, 2), [b"a", b"b", b"c"])
    storage.persist(None, [SaveSnapshot(snapshot), DeleteBefore(5)], 0)
    assert [p.name for p in tmp_path.glob("*.checkpoint")] == ["00000000000000000005-0000000002.checkpoint"]
    assert (tmp_path / "00000000000000000005-0000000002.checkpoint").read_bytes() == snapshot.data
    assert read_snapshot(tmp_path / "00000000000000000005-0000000002.checkpoint").values == [b"a", b"b", b"c"]
    assert [s.base_offset for s in storage.log.segments] == [5] and storage.log.log_start_offset == 5
    storage.close()
    reopened = RaftStorage(tmp_path, VOTERS, 0)
    _, log, loaded = reopened.load(0)
    assert loaded == snapshot
    # The epoch of the record before the log start is the snapshot's, not a guess.
    assert (log.start_offset, log.start_epoch, log.batches()) == (5, 2, [(Entry(2, b"d"),)])
    assert log.end_offset_for_epoch(1).offset == 5
    reopened.close()


def test_an_installed_snapshot_replaces_the_log(tmp_path: Path) -> None:
    storage = RaftStorage(tmp_path, VOTERS, 0)
    storage.persist(None, append_ops(0, [(Entry(1, b"", control=True),), (Entry(1, b"stale"),)]), 0)
    snapshot = snapshot_of(SnapshotId(40, 3), [b"x", b"y"])
    [installed] = storage.persist(None, [InstallSnapshot(snapshot)], 0)
    assert (installed.id, installed.values) == (SnapshotId(40, 3), [b"x", b"y"])
    assert (storage.log.log_start_offset, storage.log.next_offset) == (40, 40)
    storage.persist(None, append_ops(40, [(Entry(3, b"z"),)]), 0)
    storage.close()
    reopened = RaftStorage(tmp_path, VOTERS, 0)
    _, log, loaded = reopened.load(0)
    assert loaded == snapshot
    assert (log.start_offset, log.start_epoch, log.batches()) == (40, 3, [(Entry(3, b"z"),)])
    reopened.close()


def test_a_crash_between_writing_a_fetched_snapshot_and_emptying_the_log_is_completed_on_start(tmp_path: Path) -> None:
    storage = RaftStorage(tmp_path, VOTERS, 0)
    storage.persist(None, append_ops(0, [(Entry(1, b"", control=True),), (Entry(1, b"old"),)]), 0)
    snapshot = snapshot_of(SnapshotId(30, 4), [b"s"])
    write_snapshot_file(tmp_path, snapshot.snapshot_id, [snapshot.data])  # the crash comes here
    storage.close()
    reopened = RaftStorage(tmp_path, VOTERS, 0)
    _, log, loaded = reopened.load(0)
    assert loaded == snapshot
    assert (log.start_offset, log.start_epoch, log.entries) == (30, 4, [])
    assert (reopened.log.log_start_offset, reopened.log.next_offset) == (30, 30)
    reopened.close()


def test_a_corrupt_snapshot_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    storage = RaftStorage(tmp_path, VOTERS, 0)
    bad = snapshot_of(SnapshotId(9, 1), [b"v"])
    with pytest.raises(CorruptSnapshot):
        storage.persist(None, [InstallSnapshot(Snapshot(bad.snapshot_id, bad.data[:-3]))], 0)
    assert list_snapshots(tmp_path) == [] and storage.log.next_offset == 0
    storage.close()
