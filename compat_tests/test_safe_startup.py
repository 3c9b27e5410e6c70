"""Start-up never loses data and never starts on storage it cannot trust: what the
metadata does not name is set aside, not deleted; storage that contradicts itself or the
configuration, and checkpoint files that cannot be read, stop the start with a message
naming the file; names a directory could not hold are refused before they reach a disk."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from kafkapy.compat.adapters.base import BrokerError, Record
from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.log.files import CheckpointError
from kafkapy.log.leader_epochs import LeaderEpochCache
from kafkapy.log.manager import METADATA_PARTITION
from kafkapy.server.meta_properties import read_meta_properties
from kafkapy.testing.process import BrokerProcess, wait_until

pytestmark = pytest.mark.kafkapy_internals

METADATA_DIR = "-".join(map(str, METADATA_PARTITION))


def test_create_topics_refuses_a_name_with_a_trailing_newline_and_the_broker_restarts(own_broker, client_class):
    own_broker.start()
    client = client_class(own_broker.bootstrap)

    with pytest.raises(BrokerError) as refused:
        client.create_topic("bad\n", 1)

    assert refused.value.code == ErrorCode.invalid_topic_exception
    client.close()
    assert own_broker.stop() == 0, own_broker.output
    own_broker.start()
    client = client_class(own_broker.bootstrap)
    assert not {"bad\n", "bad"} & client.topic_names()
    acked = client.produce("good", [Record(b"k", b"v", partition=0)])
    assert [(r.partition, r.offset) for r in acked] == [(0, 0)]
    client.close()


def test_create_topics_applies_kafkas_whole_name_rule(broker):
    client = ConfluentKafka(broker.bootstrap)
    for name in ("bad\nname", "\nbad", ".", "..", "x" * 250, "bad name", "bad/name"):
        with pytest.raises(BrokerError) as refused:
            client.create_topic(name, 1)
        assert refused.value.code == ErrorCode.invalid_topic_exception, name
    longest = "x" * 249
    client.create_topic(longest, 1)
    assert longest in client.topic_names()
    client.close()


def partition_files(directory: Path) -> dict[str, bytes]:
    """A partition directory's log segments, by name: what the records are on disk."""
    return {f.name: f.read_bytes() for f in directory.iterdir() if f.suffix == ".log"}


def test_partitions_the_metadata_does_not_name_are_kept_as_stray(own_broker, tmp_path, topic_name):
    """The metadata log of another broker stands for a damaged one: it names the topic with
    one partition and another topic id. Both partition directories are set aside whole."""
    data = own_broker.data_dir
    own_broker.start()
    client = ConfluentKafka(own_broker.bootstrap)
    client.create_topic(topic_name, 2)
    acked = client.produce(topic_name, [Record(b"k", b"v%d" % i, partition=i % 2) for i in range(10)])
    assert len(acked) == 10
    client.close()
    assert own_broker.stop() == 0, own_broker.output
    before = {p: partition_files(data / f"{topic_name}-{p}") for p in (0, 1)}
    assert all(before.values())
    with BrokerProcess(tmp_path / "other") as other:
        other_client = ConfluentKafka(other.bootstrap)
        other_client.create_topic(topic_name, 1)
        other_client.close()
    shutil.rmtree(data / METADATA_DIR)
    shutil.copytree(tmp_path / "other" / METADATA_DIR, data / METADATA_DIR)

    own_broker.start()

    strays = {p.name.split(".")[0]: p for p in data.iterdir() if p.name.endswith("-stray")}
    assert set(strays) == {f"{topic_name}-0", f"{topic_name}-1"}
    for p in (0, 1):
        stray = strays[f"{topic_name}-{p}"]
        assert re.fullmatch(rf"{re.escape(topic_name)}-{p}\.[0-9a-f]{{32}}-stray", stray.name)
        assert partition_files(stray) == before[p]
        assert f"Stray partition directory {data / f'{topic_name}-{p}'}" in own_broker.output
        assert str(stray) in own_broker.output
    client = ConfluentKafka(own_broker.bootstrap)
    assert client.watermarks(topic_name, 0) == (0, 0)  # the other metadata's topic, new and empty
    assert own_broker.stop() == 0, own_broker.output
    own_broker.start()
    assert {p.name for p in data.iterdir() if p.name.endswith("-stray")} == {p.name for p in strays.values()}
    client.close()


def refused_start(broker: BrokerProcess) -> str:
    """What the broker says as it refuses to start."""
    with pytest.raises(RuntimeError, match="did not start"):
        broker.start()
    return broker.output


def produced_and_stopped(broker: BrokerProcess, topic: str) -> None:
    broker.start()
    client = ConfluentKafka(broker.bootstrap)
    client.create_topic(topic, 1)
    client.produce(topic, [Record(b"k", b"v")])
    client.close()
    assert broker.stop() == 0, broker.output


def test_a_lost_metadata_log_with_partitions_left_refuses_to_start(own_broker, topic_name):
    data = own_broker.data_dir
    produced_and_stopped(own_broker, topic_name)
    segments = partition_files(data / f"{topic_name}-0")
    shutil.rmtree(data / METADATA_DIR)

    output = refused_start(own_broker)

    assert (f"kafkapy: storage error: the log directories {data} hold partition directories ({topic_name}-0"
            in output)
    assert f"but no metadata log ({METADATA_DIR})" in output
    assert partition_files(data / f"{topic_name}-0") == segments
    assert not [p for p in data.iterdir() if p.name.endswith(("-stray", "-delete"))]


def test_a_log_directory_of_another_node_refuses_to_start(own_broker, topic_name):
    data = own_broker.data_dir
    produced_and_stopped(own_broker, topic_name)
    meta = data / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1\n", "node.id=5\n"))

    output = refused_start(own_broker)

    assert f"Stored node id 5 doesn't match previous node id 1 in {meta}" in output
    assert (data / f"{topic_name}-0").is_dir()


def test_log_directories_of_two_clusters_refuse_to_start(tmp_path, topic_name):
    first, second = tmp_path / "a", tmp_path / "b"
    broker = BrokerProcess(first, {"log.dirs": f"{first},{second}"})
    try:
        produced_and_stopped(broker, topic_name)
        meta = second / "meta.properties"
        cluster_id = read_meta_properties(first)["cluster.id"]
        meta.write_text(meta.read_text().replace(f"cluster.id={cluster_id}", "cluster.id=AAAAAAAAAAAAAAAAAAAAAQ"))

        output = refused_start(broker)

        assert f"Invalid cluster.id in: {meta}. Expected {cluster_id}, but read AAAAAAAAAAAAAAAAAAAAAQ" in output

        shutil.copy(first / "meta.properties", meta)  # a copied directory: the same directory.id twice
        output = refused_start(broker)
        assert f"Duplicate directory ID {read_meta_properties(first)['directory.id']} found" in output
    finally:
        broker.kill()


def test_unreadable_recovery_point_and_log_start_checkpoints_are_rebuilt_from_the_log(own_broker, client_class, topic_name):
    """As Kafka: logged, then every segment of the unclean stop is recovered and each log
    starts at its first segment."""
    data = own_broker.data_dir
    own_broker.start()
    client = client_class(own_broker.bootstrap)
    client.create_topic(topic_name, 1)
    acked = client.produce(topic_name, [Record(b"k", b"v%d" % i, partition=0) for i in range(10)])
    before = client.consume(topic_name, {0: 10})
    client.close()
    assert own_broker.stop() == 0, own_broker.output
    (data / "recovery-point-offset-checkpoint").write_text(f"0\n1\n{topic_name} 0 ten\n")
    (data / "log-start-offset-checkpoint").write_text("0\n2\n")
    (data / ".kafka_cleanshutdown").unlink()

    own_broker.start()

    assert (f"Ignoring an unreadable checkpoint, {data / 'recovery-point-offset-checkpoint'}, line 3: malformed entry"
            in own_broker.output)
    assert (f"Ignoring an unreadable checkpoint, {data / 'log-start-offset-checkpoint'}, line 3: expected 2 entries, "
            "found 0" in own_broker.output)
    client = client_class(own_broker.bootstrap)
    assert client.watermarks(topic_name, 0) == (0, 10)
    assert [r.value for r in client.consume(topic_name, {0: 10})] == [r.value for r in before] == [r.value for r in acked]
    client.close()


def test_an_unreadable_leader_epoch_checkpoint_is_rebuilt_from_the_log(own_broker, topic_name):
    data = own_broker.data_dir
    produced_and_stopped(own_broker, topic_name)
    checkpoint = data / f"{topic_name}-0" / "leader-epoch-checkpoint"
    written = checkpoint.read_text()
    assert written.splitlines()[1] == "1"
    checkpoint.write_text(written[:-1])  # the last line cut short

    own_broker.start()

    assert f"{checkpoint}, line 3: truncated: the line has no end; rebuilding it from the log" in own_broker.output
    # Written off the event loop soon after the start, with the epoch the start began
    # after the rebuilt one.
    rebuilt = wait_until(lambda: len(epoch_entries(checkpoint)) == 2 and epoch_entries(checkpoint), 10,
                         message="the rebuilt leader epoch checkpoint written")
    assert rebuilt[0] == written.splitlines()[2]
    assert rebuilt[1].endswith(" 1")  # the new epoch, from the log end
    client = ConfluentKafka(own_broker.bootstrap)
    assert client.watermarks(topic_name, 0) == (0, 1)
    client.close()


def epoch_entries(checkpoint: Path) -> list[str]:
    """The entries of a leader epoch checkpoint, none while it cannot be read."""
    try:
        cache = LeaderEpochCache.load(checkpoint.parent)
    except CheckpointError:
        return []
    return [f"{e} {o}" for e, o in zip(cache.epochs, cache.start_offsets, strict=True)]


def test_unreadable_high_watermarks_refuse_to_start(own_broker, topic_name):
    """Kafka takes a log directory whose high watermarks it cannot read offline."""
    data = own_broker.data_dir
    produced_and_stopped(own_broker, topic_name)
    checkpoint = data / "replication-offset-checkpoint"
    checkpoint.write_text(checkpoint.read_text().replace(f"{topic_name} 0 1", f"{topic_name} zero 1"))

    output = refused_start(own_broker)

    assert f"kafkapy: storage error: the high watermarks of {data} cannot be read ({checkpoint}, line " in output
    assert f": malformed entry '{topic_name} zero 1')" in output
    assert "Traceback" not in output
    assert partition_files(data / f"{topic_name}-0")
