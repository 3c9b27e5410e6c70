"""A follower's decisions on its leader's answers (replication/fetcher.py), sans-IO."""

from helpers import client_batch, stored_batches
from kafkapy.log.leader_epochs import LeaderEpochCache
from kafkapy.replication.fetcher import OutOfRange, out_of_range, truncation_offset, whole_batches


def epochs(tmp_path, *entries: tuple[int, int]) -> LeaderEpochCache:
    cache = LeaderEpochCache(tmp_path)
    for epoch, start in entries:
        cache.assign(epoch, start)
    return cache


def test_a_follower_that_knows_the_diverging_epoch_cuts_where_both_logs_agree(tmp_path):
    # Follower: epoch 1 from 0, epoch 2 from 10, log end 16. The leader's epoch 2 ended at 12.
    cache = epochs(tmp_path, (1, 0), (2, 10))
    assert truncation_offset(2, 12, cache, 16, 5) == 12
    # Its own epoch 1 ended at 10, before the leader's did: nothing of the leader's is lost by cutting at 10.
    assert truncation_offset(1, 11, cache, 16, 5) == 10


def test_a_follower_without_the_diverging_epoch_cuts_at_its_largest_epoch_below(tmp_path):
    cache = epochs(tmp_path, (1, 0), (3, 10))
    # The leader names epoch 2, which the follower never saw: it keeps epoch 1's part (to 10) and asks again.
    assert truncation_offset(2, 14, cache, 20, 5) == 10


def test_undefined_answers_fall_back_to_the_leaders_end_or_the_high_watermark(tmp_path):
    cache = epochs(tmp_path, (4, 0))
    assert truncation_offset(-1, 7, cache, 20, 5) == 7
    # Everything the follower has is of a later epoch than the leader's last common one: it all goes.
    assert truncation_offset(3, 7, cache, 20, 5) == 0
    assert truncation_offset(2, -1, cache, 20, 5) == 5
    assert truncation_offset(4, 30, cache, 20, 5) == 20  # never past its own end


def test_a_records_set_cut_short_keeps_its_whole_batches(opened, log_dir):
    log = opened(log_dir)
    log.append(client_batch(3), 0)
    log.append(client_batch(2), 0)
    first, second = (data for _, data in stored_batches(log))
    assert whole_batches(first + second) == first + second
    assert whole_batches(first + second[:-5]) == first
    assert whole_batches(first[:30]) == b""


def test_out_of_range_truncates_past_the_leaders_end_or_restarts_at_its_log_start():
    assert out_of_range(log_end=50, leader_start=0, leader_end=40) == OutOfRange(truncate_to=40)
    assert out_of_range(log_end=10, leader_start=30, leader_end=90) == OutOfRange(restart_at=30)
    assert out_of_range(log_end=40, leader_start=30, leader_end=90) == OutOfRange()
