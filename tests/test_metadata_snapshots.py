"""KIP-630 metadata snapshots: the file format, the image's records, loading, retention
and the dump command."""

import json
import struct
import uuid
from pathlib import Path

import anyio
import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from kafkapy.clock import FakeClock
from kafkapy.log.config import LogConfig
from kafkapy.log.partition import PartitionLog
from kafkapy.metadata.image import MetadataImage
from kafkapy.metadata.manager import MetadataManager, SnapshotPolicy
from kafkapy.metadata.records import (
    RESOURCE_BROKER,
    RESOURCE_TOPIC,
    BrokerEndpoint,
    ConfigRecord,
    FeatureLevelRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    RemoveUserScramCredentialRecord,
    TopicRecord,
    UserScramCredentialRecord,
    decode_record,
)
from kafkapy.raft.local import LocalQuorum, SnapshotUnusable
from kafkapy.raft.retention import MetadataRetention
from kafkapy.raft.snapshot import (
    CorruptSnapshot,
    SnapshotId,
    list_snapshots,
    parse_name,
    read_snapshot,
    snapshot_name,
    write_snapshot,
)
from kafkapy.server.metadata_log import snapshot_if_due
from kafkapy.tools.metadata import main as metadata_main
from kafkapy.wire.records import (
    CONTROL_BIT,
    CONTROL_SNAPSHOT_FOOTER,
    CONTROL_SNAPSHOT_HEADER,
    control_type,
    crc_ok,
    decode_records,
    iter_headers,
)

pytestmark = pytest.mark.timeout(60)

NOW = 1_700_000_000_000
# A snapshot is due as soon as anything new is committed: tests choose when to take one.
ANY_NEW_RECORD = SnapshotPolicy(max_bytes=1, max_interval_ms=0)
METADATA_DIR = "__cluster_metadata-0"


def register(node_id: int, epoch: int = 0) -> RegisterBrokerRecord:
    return RegisterBrokerRecord(
        broker_id=node_id, incarnation_id=uuid.UUID(int=node_id), broker_epoch=epoch,
        end_points=(BrokerEndpoint(name="PLAINTEXT", host=f"host{node_id}", port=9090 + node_id, security_protocol=0),),
        features=(), rack=None, fenced=False,
    )


def topic_records(name: str, partitions: int, configs: dict[str, str] | None = None) -> list:
    topic_id = uuid.uuid5(uuid.NAMESPACE_DNS, name)
    records: list = [TopicRecord(name=name, topic_id=topic_id)]
    records += [
        PartitionRecord(partition_id=p, topic_id=topic_id, replicas=(1,), isr=(1,), leader=1, leader_epoch=0, partition_epoch=0)
        for p in range(partitions)
    ]
    records += [
        ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name=name, name=k, value=v) for k, v in (configs or {}).items()
    ]
    return records


# The file format


def test_snapshot_file_is_laid_out_as_kafka_writes_it(tmp_path):
    values = [b"one", b"two", b"three"]
    path = write_snapshot(tmp_path, SnapshotId(42, 3), values, last_contained_log_timestamp=1234, now_ms=NOW)
    assert path.name == "00000000000000000042-0000000003.checkpoint"
    assert list(tmp_path.iterdir()) == [path]  # no .part left behind
    data = path.read_bytes()
    batches = list(iter_headers(data))
    assert sum(h.size for _, h in batches) == len(data)
    assert [h.base_offset for _, h in batches] == [0, 1, 4]
    assert all(h.partition_leader_epoch == 3 and h.magic == 2 and crc_ok(data, pos, h) for pos, h in batches)
    (hpos, header), (dpos, body), (fpos, footer) = batches
    # Control batches: the control bit set, not transactional, no producer.
    assert header.attributes == CONTROL_BIT and footer.attributes == CONTROL_BIT
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (-1, -1, -1)
    assert body.attributes == 0 and body.records_count == 3
    [head] = decode_records(data[hpos : hpos + header.size])
    # Key: ControlRecordTypeSchema prefixed by its version; value: SnapshotHeaderRecord v0
    # (version int16, lastContainedLogTimestamp int64, no tagged fields).
    assert head.key == struct.pack(">hh", 0, 3)
    assert head.value == struct.pack(">hqB", 0, 1234, 0)
    assert control_type(head) == CONTROL_SNAPSHOT_HEADER
    [foot] = decode_records(data[fpos : fpos + footer.size])
    assert (foot.offset, foot.key, foot.value) == (4, struct.pack(">hh", 0, 4), struct.pack(">hB", 0, 0))
    assert control_type(foot) == CONTROL_SNAPSHOT_FOOTER
    assert [(r.offset, r.key, r.value, r.timestamp) for r in decode_records(data[dpos : dpos + body.size])] == [
        (1, None, b"one", NOW), (2, None, b"two", NOW), (3, None, b"three", NOW),
    ]
    snapshot = read_snapshot(path)
    assert (snapshot.id, snapshot.last_contained_log_timestamp, snapshot.values) == (SnapshotId(42, 3), 1234, values)


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _kafka_control_batch(offset: int, epoch: int, timestamp: int, key: bytes, value: bytes) -> bytes:
    """A one-record control batch laid out field by field as Kafka's DefaultRecordBatch
    (v2), independently of kafkapy's encoder."""
    body = b"\0" + _zigzag(0) + _zigzag(0) + _zigzag(len(key)) + key + _zigzag(len(value)) + value + _zigzag(0)
    record = _zigzag(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", CONTROL_BIT, 0, timestamp, timestamp, -1, -1, -1, 1) + record
    crc = crc32c(after_crc)
    return struct.pack(">qiibI", offset, 4 + 1 + 4 + len(after_crc), epoch, 2, crc) + after_crc


def test_snapshot_file_matches_kafkas_bytes(tmp_path):
    path = write_snapshot(tmp_path, SnapshotId(9, 5), [], last_contained_log_timestamp=777, now_ms=NOW)
    header = _kafka_control_batch(0, 5, NOW, struct.pack(">hh", 0, 3), struct.pack(">hqB", 0, 777, 0))
    footer = _kafka_control_batch(1, 5, NOW, struct.pack(">hh", 0, 4), struct.pack(">hB", 0, 0))
    assert path.read_bytes() == header + footer


def test_snapshot_data_is_split_into_batches_of_bounded_size(tmp_path):
    values = [bytes([i]) * 100 for i in range(50)]
    path = write_snapshot(tmp_path, SnapshotId(50, 0), values, last_contained_log_timestamp=0, now_ms=NOW, max_batch_bytes=1000)
    data = path.read_bytes()
    sizes = [h.size for _, h in iter_headers(data)]
    assert len(sizes) > 3 and max(sizes[1:-1]) <= 1000
    assert read_snapshot(path).values == values


def test_snapshot_names():
    assert snapshot_name(SnapshotId(7, 2)) == "00000000000000000007-0000000002.checkpoint"
    assert parse_name("00000000000000000007-0000000002.checkpoint") == (SnapshotId(7, 2), ".checkpoint")
    assert parse_name("00000000000000000007-0000000002-99.checkpoint.part") == (SnapshotId(7, 2), ".checkpoint.part")
    assert parse_name("00000000000000000007-0000000002.checkpoint.deleted") == (SnapshotId(7, 2), ".checkpoint.deleted")
    assert parse_name("00000000000000000007.log") is None


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "drop footer", "empty"])
def test_a_damaged_snapshot_is_refused(tmp_path, damage):
    path = write_snapshot(tmp_path, SnapshotId(3, 0), [b"a", b"b"], last_contained_log_timestamp=0, now_ms=NOW)
    data = bytearray(path.read_bytes())
    footer_at = [pos for pos, _ in iter_headers(data)][-1]
    match damage:
        case "flip a byte":
            data[footer_at - 2] ^= 0xFF
        case "truncate":
            del data[-5:]
        case "drop footer":
            del data[footer_at:]
        case "empty":
            data.clear()
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSnapshot):
        read_snapshot(path)


# The image's records

names = st.sampled_from(["a", "b", "c", "d"])


@st.composite
def record_histories(draw):
    """A valid sequence of metadata records: brokers, topics that come and go, partition
    changes, configs set and removed, features, producer id blocks and SCRAM credentials
    set and removed."""
    records: list = []
    topics: dict[str, tuple[uuid.UUID, int]] = {}
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["broker", "topic", "change", "remove", "config", "feature", "pids", "scram", "unscram"]))
        if kind == "broker":
            node = draw(st.integers(1, 3))
            records.append(RegisterBrokerRecord(
                broker_id=node, incarnation_id=uuid.UUID(int=draw(st.integers(0, 9))), broker_epoch=draw(st.integers(0, 5)),
                end_points=(BrokerEndpoint(name=draw(st.sampled_from(["PLAINTEXT", "SSL"])), host="h", port=draw(st.integers(1, 65535)), security_protocol=0),),
                features=(), rack=draw(st.none() | st.just("r1")), fenced=draw(st.booleans()),
            ))
        elif kind == "topic":
            name = draw(names)
            if name in topics:
                continue
            topic_id = uuid.UUID(int=len(records) + 1)  # unique, as the controller makes them
            count = draw(st.integers(0, 3))
            topics[name] = (topic_id, count)
            records.append(TopicRecord(name=name, topic_id=topic_id))
            records += [
                PartitionRecord(partition_id=p, topic_id=topic_id, replicas=(1, 2), isr=(1, 2), leader=1, leader_epoch=0, partition_epoch=0)
                for p in range(count)
            ]
        elif kind == "change" and any(count for _, count in topics.values()):
            topic_id, count = draw(st.sampled_from([t for t in topics.values() if t[1]]))
            records.append(PartitionChangeRecord(
                partition_id=draw(st.integers(0, count - 1)), topic_id=topic_id,
                isr=draw(st.none() | st.just((2,))), leader=draw(st.sampled_from([-2, 1, 2])),
            ))
        elif kind == "remove" and topics:
            name = draw(st.sampled_from(sorted(topics)))
            records.append(RemoveTopicRecord(topic_id=topics.pop(name)[0]))
        elif kind == "config":
            resource = draw(st.sampled_from([(RESOURCE_TOPIC, n) for n in topics] + [(RESOURCE_BROKER, ""), (RESOURCE_BROKER, "1")]))
            records.append(ConfigRecord(
                resource_type=resource[0], resource_name=resource[1], name=draw(st.sampled_from(["x", "y"])),
                value=draw(st.none() | st.sampled_from(["1", "2"])),
            ))
        elif kind == "feature":
            records.append(FeatureLevelRecord(name=draw(st.sampled_from(["metadata.version", "kraft.version"])), feature_level=draw(st.integers(0, 30))))
        elif kind == "pids":
            records.append(ProducerIdsRecord(broker_id=1, broker_epoch=0, next_producer_id=draw(st.integers(0, 10**6))))
        elif kind == "scram":
            records.append(UserScramCredentialRecord(
                name=draw(names), mechanism=draw(st.sampled_from([1, 2])), salt=bytes([len(records) % 256]),
                stored_key=b"stored", server_key=b"server", iterations=draw(st.sampled_from([4096, 8192]))))
        elif kind == "unscram":
            records.append(RemoveUserScramCredentialRecord(name=draw(names), mechanism=draw(st.sampled_from([1, 2]))))
    return records


@settings(max_examples=300, deadline=None)
@given(record_histories())
def test_an_image_rebuilds_from_its_own_records(records):
    image = MetadataImage().apply(records, len(records) - 1)
    assert MetadataImage().apply(image.to_records(), image.offset) == image


def test_image_records_are_minimal_and_in_kafkas_order():
    records = [FeatureLevelRecord(name="kraft.version", feature_level=1), register(1),
               FeatureLevelRecord(name="metadata.version", feature_level=21), *topic_records("t", 2, {"retention.ms": "1"}),
               ConfigRecord(resource_type=RESOURCE_TOPIC, resource_name="t", name="retention.ms", value="2"),
               ProducerIdsRecord(broker_id=1, broker_epoch=0, next_producer_id=1000)]
    image = MetadataImage().apply(records, 7)
    rebuilt = image.to_records()
    assert [type(r).__name__ for r in rebuilt] == [
        "FeatureLevelRecord", "FeatureLevelRecord", "RegisterBrokerRecord", "TopicRecord", "PartitionRecord",
        "PartitionRecord", "ConfigRecord", "ProducerIdsRecord",
    ]
    assert rebuilt[0].name == "metadata.version"
    assert rebuilt[6].value == "2"  # the config as it ended, once
    assert rebuilt[-1].next_producer_id == 1000


# Loading and writing through the manager


def open_quorum(root: Path, clock: FakeClock, *, retention_bytes: int = -1, retention_ms: int = -1,
                segment_bytes: int = 1_073_741_824) -> LocalQuorum:
    config = LogConfig(retention_ms=-1, retention_bytes=-1, segment_bytes=segment_bytes, file_delete_delay_ms=0)
    log = PartitionLog.open(root / METADATA_DIR, config, clock.wall_ms(), clean_shutdown=True)
    return LocalQuorum(log, clock, retention=MetadataRetention(retention_bytes, retention_ms))


def reopen(root: Path, quorum: LocalQuorum, clock: FakeClock) -> MetadataManager:
    start = quorum.log.log_start_offset
    quorum.log.close()
    config = quorum.log.config
    log = PartitionLog.open(root / METADATA_DIR, config, clock.wall_ms(), log_start_offset=start, clean_shutdown=True)
    manager = MetadataManager(LocalQuorum(log, clock))
    manager.load()
    return manager


def fill(manager: MetadataManager, first: int, count: int) -> None:
    anyio.run(manager.commit, [register(1)] if first == 0 else [])
    for i in range(first, first + count):
        anyio.run(manager.commit, topic_records(f"topic-{i}", 3, {"cleanup.policy": "compact"}))


def take_snapshot(manager: MetadataManager, now_ms: int) -> SnapshotId:
    job = manager.snapshot_due(now_ms)
    assert job is not None
    assert anyio.run(manager.write_snapshot, job)
    return job.snapshot_id


def test_snapshot_is_due_by_bytes_or_by_time_with_new_records(tmp_path):
    clock = FakeClock()
    quorum = open_quorum(tmp_path, clock)
    manager = MetadataManager(quorum, SnapshotPolicy(max_bytes=2_000, max_interval_ms=60_000))
    now = clock.wall_ms()
    assert manager.snapshot_due(now) is None  # nothing committed
    fill(manager, 0, 2)
    assert manager.bytes_since_snapshot < 2_000 and manager.snapshot_due(now) is None
    fill(manager, 2, 20)
    job = manager.snapshot_due(now)
    assert job is not None and job.snapshot_id == SnapshotId(manager.image.offset + 1, 0)
    assert manager.snapshot_due(now) is None  # one job at a time
    assert anyio.run(manager.write_snapshot, job)
    assert quorum.snapshots() == [job.snapshot_id] and manager.bytes_since_snapshot == 0
    assert manager.snapshot_due(now + 120_000) is None  # time passed, but nothing new
    fill(manager, 22, 1)
    assert manager.snapshot_due(now + 59_999) is None
    later = manager.snapshot_due(now + 60_000)
    assert later is not None and later.snapshot_id.offset == manager.image.offset + 1


def test_start_from_snapshot_and_log_equals_full_replay(tmp_path):
    clock = FakeClock()
    quorum = open_quorum(tmp_path, clock)
    manager = MetadataManager(quorum, ANY_NEW_RECORD)
    fill(manager, 0, 30)
    snapshot_id = take_snapshot(manager, clock.wall_ms())
    fill(manager, 30, 10)
    anyio.run(manager.commit, [RemoveTopicRecord(topic_id=uuid.uuid5(uuid.NAMESPACE_DNS, "topic-3"))])
    expected = manager.image
    loaded = reopen(tmp_path, quorum, clock)
    assert loaded.snapshot_id == snapshot_id
    assert loaded.image == expected
    # The same log replayed from offset 0, with no snapshot, gives the same image.
    full = MetadataImage().apply([decode_record(v) for _, v in loaded.quorum.committed()], expected.offset)
    assert full == expected
    # Only the records after the snapshot were replayed: their bytes count toward the next.
    assert 0 < loaded.bytes_since_snapshot < loaded.quorum.log.size


def test_a_corrupt_newest_snapshot_falls_back_to_the_one_before(tmp_path):
    clock = FakeClock()
    quorum = open_quorum(tmp_path, clock)
    manager = MetadataManager(quorum, ANY_NEW_RECORD)
    fill(manager, 0, 5)
    older = take_snapshot(manager, clock.wall_ms())
    fill(manager, 5, 5)
    newer = take_snapshot(manager, clock.wall_ms())
    fill(manager, 10, 2)
    expected = manager.image
    path = tmp_path / METADATA_DIR / snapshot_name(newer)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    loaded = reopen(tmp_path, quorum, clock)
    assert loaded.snapshot_id == older and loaded.image == expected
    # Every snapshot corrupt: the whole log, which still starts at 0.
    older_path = tmp_path / METADATA_DIR / snapshot_name(older)
    older_path.write_bytes(older_path.read_bytes()[:-3])
    again = reopen(tmp_path, loaded.quorum, clock)
    assert again.snapshot_id is None and again.image == expected


def test_an_installed_snapshot_replaces_the_image_and_listeners_see_the_difference(tmp_path):
    clock = FakeClock()
    # The leader's state: topics a and c, with b created then deleted.
    leader = MetadataManager(open_quorum(tmp_path / "leader", clock), ANY_NEW_RECORD)
    fill(leader, 0, 0)
    for name in ("topic-a", "topic-b", "topic-c"):
        anyio.run(leader.commit, topic_records(name, 2))
    anyio.run(leader.commit, [RemoveTopicRecord(topic_id=uuid.uuid5(uuid.NAMESPACE_DNS, "topic-b"))])
    snapshot_id = take_snapshot(leader, clock.wall_ms())
    fetched = read_snapshot(tmp_path / "leader" / METADATA_DIR / snapshot_name(snapshot_id))
    # A follower that knew only topics b and x, which the leader's log no longer holds.
    follower = MetadataManager(open_quorum(tmp_path / "follower", clock), ANY_NEW_RECORD)
    anyio.run(follower.commit, [register(1), *topic_records("topic-b", 2), *topic_records("topic-x", 1)])
    seen: list[tuple[set[str], set[str]]] = []
    follower.listeners.append(lambda old, new: seen.append((set(old.topics), set(new.topics))))
    follower.install_snapshot(fetched)
    assert seen == [({"topic-b", "topic-x"}, {"topic-a", "topic-c"})]
    assert follower.image == leader.image and follower.image.offset == snapshot_id.offset - 1
    assert follower.snapshot_id == snapshot_id and follower.bytes_since_snapshot == 0
    # Nothing new since the snapshot: none is due, whatever the thresholds say.
    assert follower.snapshot_due(clock.wall_ms()) is None


def test_retention_deletes_only_what_a_snapshot_covers(tmp_path):
    clock = FakeClock()
    quorum = open_quorum(tmp_path, clock, segment_bytes=4_000)
    manager = MetadataManager(quorum, ANY_NEW_RECORD)
    fill(manager, 0, 20)
    first = take_snapshot(manager, clock.wall_ms())
    fill(manager, 20, 20)
    expected_without_retention = manager.image
    # One snapshot: nothing may go whatever the limits say.
    quorum.retention = MetadataRetention(max_bytes=0)
    assert quorum.clean(clock.wall_ms()) is False
    assert quorum.log.log_start_offset == 0
    second = take_snapshot(manager, clock.wall_ms())
    fill(manager, 40, 3)
    segments_before = [(s.base_offset, s.next_offset) for s in quorum.log.segments]
    assert quorum.clean(clock.wall_ms()) is True
    # The log start moved to the newest snapshot, not further; the older snapshot went,
    # and so did exactly the segments that end at or below the new log start.
    assert quorum.log.log_start_offset == second.offset
    assert quorum.snapshots() == [second]
    kept = [(s.base_offset, s.next_offset) for s in quorum.log.segments]
    assert kept == [s for s in segments_before if s[1] > second.offset]
    assert all(s[1] <= second.offset for s in segments_before if s not in kept) and len(kept) < len(segments_before)
    assert first not in list_snapshots(tmp_path / METADATA_DIR)
    quorum.log.remove_retired(0, force=True)
    loaded = reopen(tmp_path, quorum, clock)
    assert loaded.image.offset == manager.image.offset and loaded.image == manager.image
    assert expected_without_retention.offset < loaded.image.offset


def test_retention_by_time_and_generous_limits(tmp_path):
    clock = FakeClock()
    quorum = open_quorum(tmp_path, clock, retention_bytes=10**9, retention_ms=1_000)
    manager = MetadataManager(quorum, ANY_NEW_RECORD)
    fill(manager, 0, 3)
    old = take_snapshot(manager, clock.wall_ms())
    fill(manager, 3, 3)
    new = take_snapshot(manager, clock.wall_ms())
    assert quorum.clean(clock.wall_ms()) is False  # neither too big nor too old yet
    clock.advance(1_001)
    assert quorum.clean(clock.wall_ms()) is True
    assert quorum.snapshots() == [new] and quorum.log.log_start_offset == new.offset > old.offset


def test_a_log_past_zero_without_a_usable_snapshot_is_refused(tmp_path):
    clock = FakeClock()
    quorum = open_quorum(tmp_path, clock, retention_bytes=0)
    manager = MetadataManager(quorum, ANY_NEW_RECORD)
    fill(manager, 0, 3)
    take_snapshot(manager, clock.wall_ms())
    fill(manager, 3, 3)
    newest = take_snapshot(manager, clock.wall_ms())
    assert quorum.clean(clock.wall_ms())
    path = tmp_path / METADATA_DIR / snapshot_name(newest)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(SnapshotUnusable):
        reopen(tmp_path, quorum, clock)


# The dump command


def test_metadata_dump_prints_decoded_records(tmp_path, capsys):
    clock = FakeClock()
    quorum = open_quorum(tmp_path, clock)
    manager = MetadataManager(quorum, ANY_NEW_RECORD)
    anyio.run(manager.commit, [FeatureLevelRecord(name="metadata.version", feature_level=21), register(1)])
    anyio.run(manager.commit, topic_records("orders", 1, {"retention.ms": "100"}))
    snapshot_id = take_snapshot(manager, clock.wall_ms())
    quorum.log.flush(clock.wall_ms())
    snapshot_file = tmp_path / METADATA_DIR / snapshot_name(snapshot_id)

    assert metadata_main(["dump", str(snapshot_file)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| offset: 0 ") and "SnapshotHeader: " in lines[0]
    assert json.loads(lines[0].split("SnapshotHeader: ", 1)[1]) == {"version": 0, "lastContainedLogTimestamp": clock.wall_ms()}
    assert "SnapshotFooter: " in lines[-1]
    payloads = [json.loads(line.split("payload: ", 1)[1]) for line in lines[1:-1]]
    assert [p["type"] for p in payloads] == [
        "FEATURE_LEVEL_RECORD", "REGISTER_BROKER_RECORD", "TOPIC_RECORD", "PARTITION_RECORD", "CONFIG_RECORD",
    ]
    assert payloads[0] == {"type": "FEATURE_LEVEL_RECORD", "version": 0, "data": {"name": "metadata.version", "featureLevel": 21}}
    assert payloads[4]["data"] == {"resourceType": 2, "resourceName": "orders", "name": "retention.ms", "value": "100"}
    assert payloads[3]["data"]["topicId"] == payloads[2]["data"]["topicId"]  # Kafka's base64 form
    assert payloads[1]["data"]["endPoints"][0]["host"] == "host1"

    # The directory: the snapshot, then the log's segment with offsets from 0.
    assert metadata_main(["dump", str(tmp_path / METADATA_DIR)]) == 0
    out = capsys.readouterr().out
    assert out.index(".checkpoint") < out.index(".log")
    log_part = out[out.index(".log") :]
    assert '| offset: 0 CreateTime: ' in log_part and '{"type":"FEATURE_LEVEL_RECORD"' in log_part


def test_metadata_dump_refuses_a_missing_path(tmp_path, capsys):
    assert metadata_main(["dump", str(tmp_path / "nope")]) == 2


# The broker's I/O shell


def test_the_broker_writes_a_due_snapshot_in_a_worker_thread_and_starts_from_it(tmp_path):
    from kafkapy.config import BrokerConfig
    from kafkapy.server.broker import BrokerServer

    config = BrokerConfig({
        "listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(tmp_path),
        "metadata.log.max.record.bytes.between.snapshots": "1",
    })

    def open_server() -> BrokerServer:
        server = BrokerServer(config, FakeClock())
        server._bind()
        server.broker = server._open_services(*server._open_storage())
        return server

    server = open_server()
    try:
        assert server.broker is not None
        anyio.run(server.broker.metadata.commit, topic_records("orders", 2, {"retention.ms": "1000"}))
        image = server.broker.metadata.image
        anyio.run(snapshot_if_due, server.broker.metadata, server.clock)
        assert list_snapshots(tmp_path / METADATA_DIR) == [SnapshotId(image.offset + 1, 0)]
        assert server.broker.metadata.snapshot_due(FakeClock().wall_ms()) is None
    finally:
        for sock in server._sockets:
            sock.close()
        server._close_files()
    again = open_server()
    try:
        assert again.broker is not None
        assert again.broker.metadata.snapshot_id == SnapshotId(image.offset + 1, 0)
        assert again.broker.metadata.image.topics == image.topics
    finally:
        for sock in again._sockets:
            sock.close()
        again._close_files()
