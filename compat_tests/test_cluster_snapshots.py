"""Metadata snapshots on a kafkapy cluster (kafkapy.Cluster, in one process), with
thresholds small enough that a few dozen topic creations take several: every node,
voter or observer, writes its own snapshots and deletes the metadata log they cover; a
node whose log fell behind the others' log start catches up by fetching a snapshot; a
restarted node starts from its newest snapshot and replays only the log after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafkapy.client import Client
from kafkapy.raft.snapshot import SnapshotId, list_snapshots
from kafkapy.server.broker import BrokerServer
from kafkapy.testing.cluster import Cluster
from waiting import until

pytestmark = pytest.mark.timeout(60)

METADATA_DIR = "__cluster_metadata-0"
# A snapshot every few topics (each commits about 150 bytes) or within a second of anything
# new, 1 kB segments, and the log and older snapshots deleted up to the newest snapshot as
# soon as there are two.
SMALL_SNAPSHOTS = {
    "metadata.log.max.record.bytes.between.snapshots": 500,
    "metadata.log.max.snapshot.interval.ms": 1_000,
    "metadata.log.segment.bytes": 1_024,
    "metadata.log.segment.min.bytes": 1_024,
    "metadata.max.retention.bytes": 0,
}


def metadata_dir(cluster: Cluster, node_id: int) -> Path:
    return cluster.data_dir / f"node-{node_id}" / METADATA_DIR


def segment_bases(directory: Path) -> list[int]:
    return sorted(int(path.name.split(".")[0]) for path in directory.glob("*.log"))


def log_start(server: BrokerServer) -> int:
    core = server.quorum_server.core  # type: ignore[union-attr]
    return core.log.start_offset if core is not None else -1


def log_end(server: BrokerServer) -> int:
    core = server.quorum_server.core  # type: ignore[union-attr]
    return core.log.end_offset if core is not None else -1


def topics_on(cluster: Cluster, node_id: int) -> set[str]:
    return set(cluster.nodes[node_id].read(lambda s: list(s.node.metadata.image.topics)))


def create_topics(cluster: Cluster, names: list[str], replication_factor: int = 1) -> None:
    """One CreateTopics per topic: each commits its own batch of records."""
    with Client(cluster.bootstrap_servers, timeout=10) as client:
        for name in names:
            client.create_topic(name, partitions=1, replication_factor=replication_factor)


def snapshot_offset(server: BrokerServer) -> int:
    snapshot_id = server.node.metadata.snapshot_id  # type: ignore[union-attr]
    return snapshot_id.offset if snapshot_id is not None else 0


def create_in_rounds(cluster: Cluster, prefix: str, rounds: int) -> list[str]:
    """Rounds of ten topics, each followed by a snapshot of it on every running node."""
    names = []
    for r in range(rounds):
        batch = [f"{prefix}-{r}-{i}" for i in range(10)]
        create_topics(cluster, batch)
        names += batch
        for n, node in cluster.nodes.items():
            if node.running:
                until(lambda node=node, last=batch[-1]: last in node.read(lambda s: s.node.metadata.image.topics), 10,
                      f"node {n} to know round {r}")
                end = node.read(lambda s: s.node.metadata.image.offset + 1)
                until(lambda node=node, end=end: node.read(snapshot_offset) >= end, 10, f"node {n} to snapshot round {r}")
    return names


@pytest.mark.parametrize("layout", [{"brokers": 3, "broker_only": 1}, {"controllers": 3, "brokers": 1}],
                         ids=["combined-voters-and-an-observer", "controller-only-voters-and-a-broker"])
def test_every_node_snapshots_its_metadata_and_deletes_the_log_it_covers(layout: dict[str, int]) -> None:
    with Cluster(**layout, **SMALL_SNAPSHOTS) as cluster:  # type: ignore[arg-type]
        names = create_in_rounds(cluster, "topic", 3)
        for node_id in cluster.node_ids:
            until(lambda n=node_id: set(names) <= topics_on(cluster, n), 10, f"node {node_id} to know every topic")
            until(lambda n=node_id: cluster.nodes[n].read(log_start) > 0, 10, f"node {node_id} to move its log start")
        for node_id in cluster.node_ids:
            directory = metadata_dir(cluster, node_id)

            def on_disk(n: int = node_id, d: Path = directory) -> tuple[list[SnapshotId], int, list[int]]:
                # The core moves its log start first; the files go in a worker thread just after.
                return cluster.nodes[n].read(lambda s: (list_snapshots(d), log_start(s), segment_bases(d)))

            def settled(n: int = node_id) -> bool:
                snapshots, start, _ = on_disk(n)
                return bool(snapshots) and snapshots[0].offset == start
            until(settled, 10, f"node {node_id}'s files to follow its log start")
            snapshots, start, bases = on_disk()
            # The log starts at the oldest snapshot kept on disk; none older is left.
            assert snapshots and snapshots[0].offset == start > 0, (node_id, snapshots, start)
            # Segments wholly below the log start are gone: only the first may begin below it.
            assert bases and bases[0] > 0 and sum(1 for b in bases if b < start) <= 1, (node_id, bases, start)
        assert cluster.nodes[4].read(lambda s: s.quorum_server.is_voter) is False  # the broker-only node


def test_a_node_back_from_a_kill_catches_up_from_a_fetched_snapshot() -> None:
    with Cluster(brokers=3, **SMALL_SNAPSHOTS) as cluster:
        # On every node, so that each hosts a replica of what is deleted.
        create_topics(cluster, ["doomed", "kept"], replication_factor=3)
        controller = cluster.active_controller()
        assert controller is not None
        victim = next(n for n in cluster.node_ids if n != controller)
        until(lambda: {"doomed", "kept"} <= topics_on(cluster, victim), 10, "the victim to know the first topics")
        cluster.kill(victim)
        # The victim holds no more than the leader had when it went.
        beyond_victim = cluster.nodes[controller].read(log_end)
        with Client(f"127.0.0.1:{cluster.nodes[controller].port}", timeout=10) as client:
            client.delete_topic("doomed")
        names = [f"while-away-{i}" for i in range(30)]
        create_topics(cluster, names)
        # The others' logs now start past everything the victim holds: a plain fetch cannot serve it.
        for n in cluster.node_ids:
            if n != victim:
                until(lambda n=n: cluster.nodes[n].read(log_start) > beyond_victim, 10, f"node {n}'s log start past the victim's log")
        cluster.restart(victim)
        cluster.wait_until_serving([victim])
        expected = topics_on(cluster, controller)
        assert "doomed" not in expected and {"kept", *names} <= expected
        until(lambda: topics_on(cluster, victim) == expected, 10, "the victim to know every topic, and no deleted one")
        loaded = cluster.nodes[victim].read(lambda s: s.quorum_server.snapshot)
        assert loaded is not None and loaded.id.offset > beyond_victim, "it installed a snapshot of the leader's"
        # Its replica manager followed: the deleted topic's partition is gone, the kept one is open.
        hosted = cluster.nodes[victim].read(lambda s: {tp.topic for tp in s.broker.replicas.logs.logs})
        assert "kept" in hosted and "doomed" not in hosted


def test_a_restarted_node_loads_its_newest_snapshot_and_replays_only_the_log_after_it() -> None:
    with Cluster(brokers=3, **SMALL_SNAPSHOTS) as cluster:
        # Rounds with a snapshot after each: retention moves the log start only once there
        # are two snapshots (as Kafka's), so a burst that fits in one would not do.
        names = create_in_rounds(cluster, "topic", 3)
        node_id = 2
        until(lambda: cluster.nodes[node_id].read(log_start) > 0, 10, "node 2 to move its log start")
        node = cluster.nodes[node_id]
        node.stop()
        newest: SnapshotId = list_snapshots(metadata_dir(cluster, node_id))[-1]
        node.start()
        cluster.wait_until_serving([node_id])
        # It loaded that snapshot on start, and its log starts there: the topics created
        # before it are known from the snapshot alone.
        loaded = node.read(lambda s: s.quorum_server.snapshot)
        assert loaded is not None and loaded.id == newest
        assert node.read(log_start) >= newest.offset > 0
        assert set(names) <= topics_on(cluster, node_id)
