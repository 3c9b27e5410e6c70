"""A follower's log holds the leader's batches as the leader wrote them: same offsets,
same leader epochs, and the epoch cache the leader would answer OffsetForLeaderEpoch with."""

import pytest
from kio.schema.errors import ErrorCode

from helpers import client_batch, stored_batches
from kafkapy.log.partition import LogError


def test_a_follower_keeps_the_leaders_offsets_and_epochs(opened, tmp_path):
    leader = opened(tmp_path / "leader" / "t-0")
    for epoch, count in ((0, 3), (0, 2), (4, 1), (7, 5)):
        leader.leader_epoch = epoch
        leader.append(client_batch(count), 0)
    follower = opened(tmp_path / "follower" / "t-0")
    follower.leader_epoch = 9  # its own idea of the epoch plays no part in what it copies
    for _, data in stored_batches(leader):
        result = follower.append_as_follower(data, 0)
        assert result.records_count > 0
    assert stored_batches(follower) == stored_batches(leader)
    assert follower.next_offset == leader.next_offset == 11
    assert list(zip(follower.epochs.epochs, follower.epochs.start_offsets, strict=True)) == [(0, 0), (4, 5), (7, 6)]
    assert follower.epochs.end_offset_for(4, follower.next_offset) == leader.epochs.end_offset_for(4, leader.next_offset) == (4, 6)


def test_a_batch_below_the_log_end_is_refused_and_nothing_is_written(opened, tmp_path):
    leader = opened(tmp_path / "leader" / "t-0")
    leader.append(client_batch(2), 0)
    leader.append(client_batch(2), 0)
    batches = [data for _, data in stored_batches(leader)]
    follower = opened(tmp_path / "follower" / "t-0")
    follower.append_as_follower(batches[0] + batches[1], 0)
    with pytest.raises(LogError) as refused:
        follower.append_as_follower(batches[1], 0)
    assert refused.value.code == ErrorCode.unknown_server_error
    assert follower.next_offset == 4 and len(stored_batches(follower)) == 2


def test_a_follower_truncated_to_a_diverging_point_appends_the_leaders_batches_from_there(opened, tmp_path):
    follower = opened(tmp_path / "follower" / "t-0")
    follower.leader_epoch = 1
    for _ in range(3):
        follower.append(client_batch(2), 0)
    follower.truncate_to(2)
    leader = opened(tmp_path / "leader" / "t-0")
    leader.leader_epoch = 1
    leader.append(client_batch(2), 0)
    leader.leader_epoch = 2
    leader.append(client_batch(3), 0)
    follower.append_as_follower(stored_batches(leader)[1][1], 0)
    assert stored_batches(follower) == stored_batches(leader)
    assert follower.epochs.latest_epoch == 2
