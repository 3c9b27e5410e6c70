"""A broker of a three-node kafkapy cluster (kafkapy.Cluster, in one process) whose only
log directory fails: as Kafka when the directory holding the metadata log fails, it halts;
the active controller fences it once its heartbeats stop, and its partitions move to an
in-sync replica that serves every acknowledged record."""

from __future__ import annotations

import errno

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.compat.adapters.base import Record
from kafkapy.compat.adapters.confluent import ConfluentKafka
from kafkapy.log.files import StorageError
from kafkapy.testing.cluster import FAST_QUORUM, Cluster
from waiting import until

pytestmark = pytest.mark.timeout(90)

SESSION_S = FAST_QUORUM["broker.session.timeout.ms"] / 1000


def test_a_broker_whose_only_log_directory_fails_halts_and_its_partitions_move_to_an_in_sync_replica() -> None:
    with Cluster(brokers=3) as cluster:
        controller = cluster.active_controller()
        victim, *others = [n for n in cluster.nodes if n != controller] + [controller]
        bootstrap = ",".join(f"127.0.0.1:{cluster.nodes[n].port}" for n in others)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("disk", num_partitions=1, replica_assignment=[[victim, *others]])])["disk"].result(15)

        def leader_and_isr() -> tuple[int, list[int]]:
            p = admin.list_topics("disk", timeout=10).topics["disk"].partitions[0]
            return p.leader, sorted(p.isrs)

        until(lambda: leader_and_isr() == (victim, sorted(cluster.nodes)), 10, "the topic led by the victim, all in sync")
        client = ConfluentKafka(bootstrap)
        records = [Record(key=None, value=b"v%d" % i) for i in range(50)]
        client.produce("disk", records)  # acks=all: on every replica

        [directory] = cluster.nodes[victim].config.log_dirs
        cluster.nodes[victim].read(lambda server: server._logs.fail_dir(
            directory, OSError(errno.EIO, "Input/output error"), "appending to disk-0"))
        leader, isr = until(lambda: (lambda li: li if li[0] in others else None)(leader_and_isr()),
                            SESSION_S + 10, "the leadership moved off the broker whose directory failed")
        assert victim not in isr
        assert [r.value for r in client.consume("disk", {0: len(records)})] == [r.value for r in records]
        with pytest.raises(StorageError, match="holds the metadata log"):
            cluster.kill(victim)  # already halted: what ended it
