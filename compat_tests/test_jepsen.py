"""The short form of the Jepsen-style check of acks=all (kafkapy.testing.jepsen; the long
form is benchmarks/jepsen.py): an idempotent confluent-kafka producer writes sequence
numbers with acks=all to a topic with replication factor 3 and min.insync.replicas=2 on
an in-process three-node cluster, while a nemesis kills and restarts a node (the leader
of partition 0 every other time) and cuts one node off from the others (Raft, the
controller channel and replication alike); then on three kafkapy processes, killed -9.
Afterwards every acknowledged record must be read back once, in order, and nothing read
that was never sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from kafkapy.testing.cluster import FAST_QUORUM, Cluster
from kafkapy.testing.jepsen import InProcessTarget, ProcessTarget, RunOutcome, run
from kafkapy.testing.process import cluster_processes, start_all, wait_until

pytestmark = pytest.mark.timeout(150)

TOPIC = "jepsen"
PARTITIONS = 2


def create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wait_until(lambda: len(admin.list_topics(timeout=5).brokers) == 3, 30, message="three brokers registered")
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})],
                        operation_timeout=10)[TOPIC].result(15)


def test_acks_all_records_survive_leader_kills_and_network_cuts_once_and_in_order() -> None:
    with Cluster(brokers=3) as cluster:
        create_topic(cluster.bootstrap_servers)
        outcome = run(InProcessTarget(cluster), TOPIC, PARTITIONS, duration_s=24, period_s=3, down_s=2.5, seed=7,
                      rate_per_s=200)
    assert_fair_and_ok(outcome)
    assert any(what.startswith("cut ") for _, what in outcome.nemesis.events), outcome.nemesis.events


def test_acks_all_records_survive_kill_9_of_broker_processes_once_and_in_order(tmp_path: Path) -> None:
    processes = cluster_processes(tmp_path, 3, FAST_QUORUM)
    start_all(processes)
    try:
        create_topic(",".join(p.bootstrap for p in processes))
        outcome = run(ProcessTarget(processes), TOPIC, PARTITIONS, duration_s=21, period_s=3, down_s=2.5, seed=3,
                      rate_per_s=200)
    finally:
        for process in processes:
            process.kill()
    assert_fair_and_ok(outcome)


def assert_fair_and_ok(outcome: RunOutcome) -> None:
    verdict = outcome.verdict
    print(outcome.summary())
    assert verdict.ok, (f"{verdict.summary()}: lost {verdict.lost[:20]}, duplicated {verdict.duplicated[:20]}, "
                        f"never sent {verdict.unexpected[:20]}, out of order {verdict.out_of_order[:20]}; "
                        f"producer errors {outcome.writer_errors[:5]}")
    events = [what for _, what in outcome.nemesis.events]
    assert len(outcome.nemesis.leader_kills) >= 2, events
    # Writes went on after every kill of partition 0's leader: a failover, not a stall.
    assert len(outcome.failovers_s) == len(outcome.nemesis.leader_kills), (outcome.failovers_s, events)
    assert verdict.acknowledged > outcome.sent // 2, outcome.summary()
