"""A Raft voter's durable state: Kafka's quorum-state file and the metadata log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kafkapy.raft.log import BatchBoundaryError
from kafkapy.raft.messages import Entry
from kafkapy.raft.output import Append, QuorumState, Truncate
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
    state, log = reopened.load()
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
    assert storage.load()[1].batches() == [(Entry(1, b"a"), Entry(1, b"b")), (Entry(1, b"c"), Entry(1, b"d"))]
    storage.persist(None, [Truncate(2), Append(2, (Entry(2, b"x"),))], 0)
    storage.close()
    reopened = RaftStorage(tmp_path, VOTERS, 0)
    _, log = reopened.load()
    assert log.batches() == [(Entry(1, b"a"), Entry(1, b"b")), (Entry(2, b"x"),)]
    assert log.end_offset_for_epoch(1).offset == 2
    reopened.persist(None, [Truncate(0)], 0)
    assert reopened.load()[1].entries == []
    reopened.close()
