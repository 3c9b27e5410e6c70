"""Three kafkapy processes forming one cluster: kill -9 of the active controller while
a client creates topics in a loop. A new controller takes over, and every topic whose
creation was acknowledged exists afterwards, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from kafkapy.testing.cluster import FAST_QUORUM
from kafkapy.testing.failover import create_topics_through_a_controller_kill
from kafkapy.testing.process import cluster_processes, start_all

pytestmark = pytest.mark.timeout(180)


def test_every_acknowledged_topic_survives_kill_9_of_the_active_controller(tmp_path: Path) -> None:
    processes = cluster_processes(tmp_path, 3, FAST_QUORUM)
    start_all(processes)
    try:
        outcome = create_topics_through_a_controller_kill(processes, before_s=1.0, after_s=6.0)
        survivors = [p for p in processes if p.process is not None]
        assert len(survivors) == 2
        assert outcome.first_success_after_kill_s is not None, "no topic was created after the kill"
        # FAST_QUORUM: fetch timeout 1 s, election 0.5-1 s; a client's retries on top.
        assert outcome.first_success_after_kill_s < 6.0
        listed = AdminClient({"bootstrap.servers": ",".join(p.bootstrap for p in survivors)}).list_topics(timeout=10).topics
        created = [name for name in listed if name.startswith("t-")]
        assert set(outcome.acknowledged) <= set(created), "an acknowledged topic is missing"
        assert len(outcome.acknowledged) == len(set(outcome.acknowledged))
        # Only topics that were asked for exist (a creation that failed may or may not have happened).
        asked = len(outcome.acknowledged) + outcome.failed
        assert all(int(name.split("-")[1]) < asked for name in created)
        # The killed node comes back, catches up and serves the same topics.
        killed = processes[outcome.killed - 1]
        killed.start()
        relisted = AdminClient({"bootstrap.servers": killed.bootstrap}).list_topics(timeout=10).topics
        assert set(outcome.acknowledged) <= set(relisted)
    finally:
        for process in processes:
            process.kill()
