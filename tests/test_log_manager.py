import re
import uuid

import pytest

from helpers import as_stored, client_batch, crash
from kafkapy.log.config import LogConfig
from kafkapy.log.manager import (
    CLEAN_SHUTDOWN,
    DELETE_SUFFIX,
    HIGH_WATERMARKS,
    LOG_START_OFFSETS,
    RECOVERY_POINTS,
    STRAY_SUFFIX,
    LogManager,
    TopicPartition,
    kafka_uuid,
    parse_partition_dir,
    read_checkpoint,
    set_aside_name,
    write_checkpoint,
)

CONFIG = LogConfig()
TP = TopicPartition("orders", 0)


@pytest.fixture
def dirs(tmp_path):
    return [tmp_path / "a", tmp_path / "b"]


def started(dirs) -> LogManager:
    manager = LogManager(dirs)
    manager.startup()
    return manager


def stop_uncleanly(manager: LogManager) -> None:
    for log in manager.logs.values():
        crash(log)


def test_checkpoint_round_trip(tmp_path):
    entries = {
        TopicPartition("orders", 0): 0,
        TopicPartition("orders", 11): 2**40,
        TopicPartition("a-b.c_d", 3): 17,
        TopicPartition("__consumer_offsets", 49): 5,
    }
    path = tmp_path / RECOVERY_POINTS
    write_checkpoint(path, entries)
    assert read_checkpoint(path) == entries
    lines = path.read_text().splitlines()
    # Kafka's layout: version, entry count, then "topic partition offset" lines.
    assert lines[:2] == ["0", "4"]
    assert "a-b.c_d 3 17" in lines[2:]
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_checkpoint_is_empty(tmp_path):
    assert read_checkpoint(tmp_path / RECOVERY_POINTS) == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders-0", TopicPartition("orders", 0)),
        ("my-topic-12", TopicPartition("my-topic", 12)),
        ("__cluster_metadata-0", TopicPartition("__cluster_metadata", 0)),
        ("orders-0.0123456789abcdef0123456789abcdef-delete", None),
        ("orders", None),
        ("-3", None),
        ("orders-x", None),
    ],
)
def test_parse_partition_dir(name, expected):
    assert parse_partition_dir(name) == expected


def test_kafka_uuid_is_url_safe_base64_without_padding():
    assert kafka_uuid(uuid.UUID(int=0)) == "A" * 22
    assert kafka_uuid(uuid.UUID(bytes=b"\xfb\xff" + b"\0" * 14)) == "-_8" + "A" * 19


def test_open_creates_the_partition_directory_and_metadata_file(dirs):
    manager = started(dirs)
    topic_id = uuid.uuid4()
    log = manager.open(TP, CONFIG, 0, topic_id=topic_id)
    assert log.directory == dirs[0] / "orders-0"
    assert (log.directory / "partition.metadata").read_text() == f"version: 0\ntopic_id: {kafka_uuid(topic_id)}\n"
    assert manager.open(TP, CONFIG, 0) is log
    stop_uncleanly(manager)


def test_partitions_spread_over_the_least_loaded_directory(dirs):
    manager = started(dirs)
    logs = [manager.open(TopicPartition("t", p), CONFIG, 0) for p in range(4)]
    assert [log.directory.parent for log in logs] == [dirs[0], dirs[1], dirs[0], dirs[1]]
    stop_uncleanly(manager)


def test_a_deleted_partition_leaves_room_in_its_directory(dirs):
    manager = started(dirs)
    for p in range(4):
        manager.open(TopicPartition("t", p), CONFIG, 0)
    manager.delete(TopicPartition("t", 0), 0, 0)
    manager.delete(TopicPartition("t", 2), 0, 0)
    logs = [manager.open(TopicPartition("u", p), CONFIG, 0) for p in range(3)]
    assert [log.directory.parent for log in logs] == [dirs[0], dirs[0], dirs[0]]
    stop_uncleanly(manager)


def test_delete_renames_at_once_and_removes_after_the_delay(dirs):
    manager = started(dirs)
    log = manager.open(TP, CONFIG, 0)
    batch = client_batch(3)
    log.append(batch, 0)
    in_flight = log.read(0, 1 << 20, 3, True)
    original = log.directory

    manager.delete(TP, 10_000, 500)
    assert not original.exists()
    [grave] = [p for p in dirs[0].iterdir() if p.name.endswith("-delete")]
    assert re.fullmatch(r"orders-0\.[0-9a-f]{32}-delete", grave.name)
    assert (grave / "00000000000000000000.log").exists()
    assert manager.get(TP) is None and TP not in manager.existing()
    assert in_flight.read() == as_stored(batch, 0)  # reads under way finish from the open file

    manager.remove_deleted(10_499)
    assert grave.exists()
    manager.remove_deleted(10_500)
    assert not grave.exists()

    recreated = manager.open(TP, CONFIG, 20_000)
    assert recreated.next_offset == 0
    stop_uncleanly(manager)


def test_delete_of_a_partition_never_opened_removes_it(dirs):
    manager = started(dirs)
    manager.open(TP, CONFIG, 0).append(client_batch(1), 0)
    manager.shutdown()
    manager = started(dirs)
    assert manager.existing() == {TP}
    manager.delete(TP, 0, 60_000)
    assert [p for p in dirs[0].iterdir() if p.is_dir()] == []
    assert manager.existing() == set()


def test_a_stray_partition_is_renamed_aside_and_a_new_one_starts_from_nothing(dirs):
    manager = started(dirs)
    log = manager.open(TP, CONFIG, 0, topic_id=uuid.UUID(int=7))
    for _ in range(3):
        log.append(client_batch(2), 0)
    # Checkpointed offsets the new partition of the same name must not inherit.
    log.high_watermark = log.next_offset
    log.delete_records_before(4)
    manager.shutdown()
    manager = started(dirs)
    assert manager.topic_id_on_disk(TP) == kafka_uuid(uuid.UUID(int=7))

    old, stray = manager.set_aside_stray(TP)

    assert old == dirs[0] / "orders-0" and not old.exists()
    assert re.fullmatch(r"orders-0\.[0-9a-f]{32}-stray", stray.name)
    assert (stray / "00000000000000000000.log").stat().st_size > 0
    assert manager.existing() == set()
    recreated = manager.open(TP, CONFIG, 0)
    assert (recreated.log_start_offset, recreated.next_offset, recreated.high_watermark) == (0, 0, 0)
    manager.shutdown()
    assert started(dirs).existing() == {TP} and stray.exists()


def test_names_of_set_aside_directories_fit_a_file_name():
    longest = TopicPartition("x" * 249, 123)
    name = set_aside_name(longest, STRAY_SUFFIX)
    assert len(name) == 255
    assert re.fullmatch(r"x+-123\.[0-9a-f]{32}-stray", name)
    assert set_aside_name(TP, DELETE_SUFFIX).startswith("orders-0.")


def test_startup_removes_leftover_delete_directories(dirs):
    grave = dirs[0] / "orders-0.0123456789abcdef0123456789abcdef-delete"
    grave.mkdir(parents=True)
    (grave / "00000000000000000000.log").write_bytes(b"x")
    manager = started(dirs)
    assert not grave.exists()
    assert manager.existing() == set()


def test_clean_shutdown_writes_the_marker_and_checkpoints(dirs):
    manager = started(dirs)
    assert manager.clean_shutdown  # nothing on disk yet
    first, second = TopicPartition("t", 0), TopicPartition("t", 1)
    manager.open(first, CONFIG, 0).append(client_batch(3), 0)
    manager.open(second, CONFIG, 0).append(client_batch(5), 0)
    manager.shutdown()

    assert all((d / CLEAN_SHUTDOWN).exists() for d in dirs)
    assert read_checkpoint(dirs[0] / RECOVERY_POINTS) == {first: 3}
    assert read_checkpoint(dirs[1] / RECOVERY_POINTS) == {second: 5}
    assert read_checkpoint(dirs[1] / LOG_START_OFFSETS) == {second: 0}

    manager = started(dirs)
    assert manager.clean_shutdown
    assert not any((d / CLEAN_SHUTDOWN).exists() for d in dirs)  # the next stop must earn it again
    assert manager.existing() == {first, second}
    log = manager.open(second, CONFIG, 0)
    assert log.directory.parent == dirs[1]
    assert (log.next_offset, log.recovery_point) == (5, 5)
    stop_uncleanly(manager)


def test_stop_without_shutdown_is_unclean_and_recovers(dirs):
    manager = started(dirs)
    manager.open(TP, CONFIG, 0).append(client_batch(4), 0)
    stop_uncleanly(manager)

    manager = started(dirs)
    assert not manager.clean_shutdown
    log = manager.open(TP, CONFIG, 0)
    assert log.next_offset == 4
    assert log.read(0, 1 << 20, 4, True).read() == as_stored(client_batch(4), 0)
    stop_uncleanly(manager)


def test_startup_applies_the_log_start_offset_checkpoint(dirs):
    manager = started(dirs)
    manager.open(TP, CONFIG, 0).append(client_batch(4), 0)
    manager.shutdown()
    write_checkpoint(dirs[0] / LOG_START_OFFSETS, {TP: 2})

    manager = started(dirs)
    log = manager.open(TP, CONFIG, 0)
    assert log.log_start_offset == 2
    manager.checkpoint()
    assert read_checkpoint(dirs[0] / LOG_START_OFFSETS) == {TP: 2}
    stop_uncleanly(manager)


def test_the_high_watermark_comes_back_from_its_checkpoint_and_never_past_the_log_end(dirs):
    manager = started(dirs)
    log = manager.open(TP, CONFIG, 0)
    log.append(client_batch(6), 0)
    log.high_watermark = 4  # two records not yet replicated
    (path, entries), *_ = manager.high_watermark_checkpoints()
    assert path == dirs[0] / HIGH_WATERMARKS and entries == {TP: 4}
    manager.shutdown()
    assert read_checkpoint(dirs[0] / HIGH_WATERMARKS) == {TP: 4}

    manager = started(dirs)
    assert manager.open(TP, CONFIG, 0).high_watermark == 4
    stop_uncleanly(manager)
    write_checkpoint(dirs[0] / HIGH_WATERMARKS, {TP: 99})
    manager = started(dirs)
    assert manager.open(TP, CONFIG, 0).high_watermark == 6
    stop_uncleanly(manager)


def test_a_partition_without_a_checkpointed_high_watermark_exposes_nothing_at_start(dirs):
    manager = started(dirs)
    manager.open(TP, CONFIG, 0).append(client_batch(3), 0)
    stop_uncleanly(manager)  # killed before any checkpoint

    manager = started(dirs)
    log = manager.open(TP, CONFIG, 0)
    assert (log.next_offset, log.high_watermark) == (3, 0)
    stop_uncleanly(manager)
