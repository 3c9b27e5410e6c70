"""The leader epoch cache: Kafka's answers to OffsetForLeaderEpoch, its file, and how it
follows the log as the log grows, starts later, or is cut after a crash."""

import time

import pytest

from helpers import client_batch, crash, open_log
from kafkapy import Broker
from kafkapy.client.admin import AdminClient
from kafkapy.log.config import LogConfig
from kafkapy.log.leader_epochs import FILE_NAME, UNDEFINED, LeaderEpochCache

LOG_END = 20


def cache_of(tmp_path, *entries: tuple[int, int]) -> LeaderEpochCache:
    cache = LeaderEpochCache(tmp_path)
    for epoch, start in entries:
        cache.assign(epoch, start)
    return cache


def entries(cache: LeaderEpochCache) -> list[tuple[int, int]]:
    return list(zip(cache.epochs, cache.start_offsets, strict=True))


def written(cache: LeaderEpochCache) -> list[tuple[int, int]]:
    """The entries of the file once the cache's pending change is written."""
    cache.write_pending()
    return entries(LeaderEpochCache.load(cache.path.parent))


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        pytest.param(UNDEFINED, (UNDEFINED, UNDEFINED), id="undefined-epoch"),
        pytest.param(5, (5, LOG_END), id="latest-epoch-ends-at-the-log-end"),
        pytest.param(3, (3, 12), id="earlier-epoch-ends-where-the-next-began"),
        pytest.param(4, (3, 12), id="unknown-epoch-between-answers-the-one-below"),
        pytest.param(2, (2, 8), id="first-epoch"),
        pytest.param(1, (1, 6), id="epoch-below-all-answers-the-first-start"),
        pytest.param(6, (UNDEFINED, UNDEFINED), id="epoch-above-all"),
    ],
)
def test_end_offset_for_follows_kafkas_rules(tmp_path, requested, expected):
    cache = cache_of(tmp_path, (2, 6), (3, 8), (5, 12))
    assert cache.end_offset_for(requested, LOG_END) == expected


def test_an_empty_cache_knows_no_epoch(tmp_path):
    assert LeaderEpochCache(tmp_path).end_offset_for(0, LOG_END) == (UNDEFINED, UNDEFINED)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        pytest.param((5, 14), [(2, 6), (3, 8), (5, 12)], id="same-epoch-later-offset-changes-nothing"),
        pytest.param((5, 10), [(2, 6), (3, 8), (5, 10)], id="same-epoch-earlier-offset-moves-its-start"),
        pytest.param((6, 15), [(2, 6), (3, 8), (5, 12), (6, 15)], id="new-epoch"),
        pytest.param((6, 12), [(2, 6), (3, 8), (6, 12)], id="new-epoch-at-the-same-offset-replaces"),
        pytest.param((4, 13), [(2, 6), (3, 8), (4, 13)], id="lower-epoch-drops-the-higher-ones"),
        pytest.param((7, 7), [(2, 6), (7, 7)], id="earlier-start-drops-later-starts"),
        pytest.param((-1, 30), [(2, 6), (3, 8), (5, 12)], id="no-epoch-is-ignored"),
    ],
)
def test_assign_keeps_epochs_and_offsets_increasing(tmp_path, new, expected):
    cache = cache_of(tmp_path, (2, 6), (3, 8), (5, 12))
    cache.assign(*new)
    assert entries(cache) == expected
    assert written(cache) == expected


def test_the_checkpoint_file_is_kafkas_and_loads_back(tmp_path):
    cache_of(tmp_path, (0, 0), (4, 17)).write_pending()
    assert (tmp_path / FILE_NAME).read_text() == "0\n2\n0 0\n4 17\n"
    assert entries(LeaderEpochCache.load(tmp_path)) == [(0, 0), (4, 17)]
    assert entries(LeaderEpochCache.load(tmp_path / "missing")) == []
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]


@pytest.mark.parametrize(
    ("end", "expected"),
    [(13, [(2, 6), (3, 8), (5, 12)]), (12, [(2, 6), (3, 8)]), (7, [(2, 6)]), (0, [])],
)
def test_truncate_from_end_forgets_epochs_that_began_at_or_after_it(tmp_path, end, expected):
    cache = cache_of(tmp_path, (2, 6), (3, 8), (5, 12))
    cache.truncate_from(end)
    assert entries(cache) == written(cache) == expected


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (5, [(2, 6), (3, 8), (5, 12)]),
        (6, [(2, 6), (3, 8), (5, 12)]),
        (9, [(3, 9), (5, 12)]),
        (8, [(3, 8), (5, 12)]),
        (12, [(5, 12)]),
        (15, [(5, 15)]),
    ],
)
def test_truncate_from_start_keeps_the_epoch_holding_the_new_start(tmp_path, start, expected):
    cache = cache_of(tmp_path, (2, 6), (3, 8), (5, 12))
    cache.truncate_from_start(start)
    assert entries(cache) == written(cache) == expected


# Following the log


def test_appends_record_where_each_leader_epoch_began(tmp_path):
    directory = tmp_path / "t-0"
    log = open_log(directory)
    log.append(client_batch(3), 0)
    log.leader_epoch = 2
    log.append(client_batch(2), 0)
    log.append(client_batch(4), 0)
    assert entries(log.epochs) == [(0, 0), (2, 3)]
    assert log.epochs.end_offset_for(0, log.next_offset) == (0, 3)
    assert log.epochs.end_offset_for(1, log.next_offset) == (0, 3)
    assert log.epochs.end_offset_for(2, log.next_offset) == (2, 9)
    crash(log)
    log = open_log(directory, clean_shutdown=False)
    assert entries(log.epochs) == [(0, 0), (2, 3)]
    crash(log)


def test_reopening_drops_epochs_beyond_the_log_and_before_its_start(tmp_path):
    directory = tmp_path / "t-0"
    log = open_log(directory, LogConfig(segment_bytes=200))
    for epoch in (1, 2, 3):
        log.leader_epoch = epoch
        for _ in range(3):
            log.append(client_batch(2, value_size=60), 0)
    assert entries(log.epochs) == [(1, 0), (2, 6), (3, 12)]
    log.epochs.assign(4, 30)
    log.epochs.write_pending()  # written ahead of a batch the crash then lost
    crash(log)
    log = open_log(directory, LogConfig(segment_bytes=200), log_start_offset=8, clean_shutdown=False)
    assert entries(log.epochs) == written(log.epochs) == [(2, 8), (3, 12)]
    crash(log)


def test_moving_the_log_start_offset_truncates_the_epochs(tmp_path):
    log = open_log(tmp_path / "t-0", LogConfig(segment_bytes=200, retention_ms=1_000))
    for epoch in (1, 2):
        log.leader_epoch = epoch
        for _ in range(3):
            log.append(client_batch(2, value_size=60, timestamp=1_000), 0)
    log.high_watermark = log.next_offset
    log.delete_records_before(3)
    assert entries(log.epochs) == [(1, 3), (2, 6)]
    log.delete_segments(log.expired_segments(10_000)[:4], 10_000)
    assert log.log_start_offset == 8
    assert entries(log.epochs) == [(2, 8)]
    assert log.epochs.end_offset_for(1, log.next_offset) == (1, 8)
    crash(log)
    for _, segment in log.retired:
        segment.close()


# When the file is written: later and off the event loop, but before a crash could lose it


def test_a_change_waits_in_memory_until_written(tmp_path):
    cache = cache_of(tmp_path, (0, 0), (3, 5))
    assert cache.pending
    assert not (tmp_path / FILE_NAME).exists()
    cache.write_pending()
    assert not cache.pending
    cache.assign(3, 9)  # the latest epoch at a later offset: nothing changes, nothing to write
    assert not cache.pending
    cache.truncate_from(5)
    assert entries(LeaderEpochCache.load(tmp_path)) == [(0, 0), (3, 5)]
    assert written(cache) == [(0, 0)]


def test_a_flush_writes_the_new_epoch_before_its_batches_pass_the_recovery_point(tmp_path):
    log = open_log(tmp_path / "t-0")
    log.append(client_batch(3), 0)
    log.leader_epoch = 2
    log.append(client_batch(2), 0)
    assert entries(LeaderEpochCache.load(log.directory)) == []
    log.flush(0)
    assert log.recovery_point == 5
    assert entries(LeaderEpochCache.load(log.directory)) == [(0, 0), (2, 3)]
    crash(log)


def test_a_roll_writes_the_new_epoch_before_the_recovery_point_passes_its_batches(tmp_path):
    log = open_log(tmp_path / "t-0", LogConfig(segment_bytes=200))
    log.append(client_batch(2, value_size=60), 0)
    log.leader_epoch = 1
    log.append(client_batch(2, value_size=60), 0)
    assert log.recovery_point == 2 and entries(LeaderEpochCache.load(log.directory)) == [(0, 0)]
    log.append(client_batch(2, value_size=60), 0)  # rolls: the recovery point passes epoch 1's first batch
    assert log.recovery_point == 4
    assert entries(LeaderEpochCache.load(log.directory)) == [(0, 0), (1, 2)]
    crash(log)


def test_recovery_learns_the_epochs_of_the_batches_it_reads_again(tmp_path):
    directory = tmp_path / "t-0"
    log = open_log(directory)
    log.leader_epoch = 1
    log.append(client_batch(2), 0)
    log.leader_epoch = 4
    log.append(client_batch(2), 0)
    crash(log)  # neither epoch written: no flush came
    assert not (directory / FILE_NAME).exists()
    log = open_log(directory, clean_shutdown=False)
    assert entries(log.epochs) == [(1, 0), (4, 2)]
    crash(log)


def test_a_restart_writes_the_new_leader_epochs_while_the_broker_runs(tmp_path):
    topic, partitions = "epochs", 3
    with Broker(tmp_path) as broker, AdminClient(broker.bootstrap_servers) as admin:
        admin.create_topic(topic, partitions=partitions)
    directories = [tmp_path / f"{topic}-{p}" for p in range(partitions)]
    before = [entries(LeaderEpochCache.load(d)) for d in directories]
    assert all(len(old) == 1 for old in before)
    with Broker(tmp_path):
        # The restart made this node leader again in a later epoch: written soon, no produce or flush needed.
        deadline = time.monotonic() + 10
        while any(LeaderEpochCache.load(d).latest_epoch <= old[-1][0] for d, old in zip(directories, before, strict=True)):
            assert time.monotonic() < deadline, "the new leader epochs were not written while the broker ran"
            time.sleep(0.05)
        for directory in directories:  # an empty log: the new epoch begins at 0 in place of the old
            assert [start for _, start in entries(LeaderEpochCache.load(directory))] == [0]
