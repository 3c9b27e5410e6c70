"""`kafkapy quorum describe --status | --replication`: Kafka's output for given quorum
states, and the real command against a broker."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from kafkapy.client import Client, QuorumInfo, QuorumReplica
from kafkapy.testing.embedded import Broker
from kafkapy.tools.quorum import replication_lines, status_lines


@pytest.fixture(scope="module")
def single() -> Iterator[Broker]:
    with Broker() as broker:
        yield broker


def quorum_command(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kafkapy", "quorum", "describe", "--bootstrap-server", bootstrap, *args],
                          capture_output=True, text=True, timeout=60)


def test_the_quorum_command_against_a_broker(single: Broker) -> None:
    status = quorum_command(single.bootstrap_servers, "--status")
    assert status.returncode == 0, status.stderr
    fields = dict(line.split(":", 1) for line in status.stdout.splitlines())
    with Client(single.bootstrap_servers) as client:
        cluster_id = client.metadata([]).cluster_id
        high_watermark = client.describe_quorum().high_watermark
    assert {k: v.strip() for k, v in fields.items()} == {
        "ClusterId": cluster_id, "LeaderId": "1", "LeaderEpoch": "0", "HighWatermark": str(high_watermark),
        "MaxFollowerLag": "0", "MaxFollowerLagTimeMs": "0", "CurrentVoters": '[{"id": 1}]', "CurrentObservers": "[]",
    }

    replication = quorum_command(single.bootstrap_servers, "--replication")
    assert replication.returncode == 0, replication.stderr
    header, row = [[cell.strip() for cell in line.split("\t")[:-1]] for line in replication.stdout.splitlines()]
    assert header == ["NodeId", "DirectoryId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"]
    assert row[:4] == ["1", "AAAAAAAAAAAAAAAAAAAAAA", str(high_watermark), "0"] and row[6] == "Leader"
    assert int(row[4]) == int(row[5]) > 0

    both = quorum_command(single.bootstrap_servers, "--status", "--replication")
    assert (both.returncode, both.stderr.strip()) == (
        1, "Only one of --status or --replication should be specified with describe sub-command")


def test_status_and_replication_print_as_kafka_does() -> None:
    no_directory = uuid.UUID(int=0)
    quorum = QuorumInfo(
        leader_id=2, leader_epoch=5, high_watermark=120,
        voters=[QuorumReplica(1, no_directory, 118, 1_000, -1), QuorumReplica(2, no_directory, 121, 2_000, 2_000),
                QuorumReplica(3, no_directory, 121, 1_990, 1_990)],
        observers=[],
        endpoints={n: [f"CONTROLLER://127.0.0.1:{9091 + 2 * n}"] for n in (1, 2, 3)},
    )
    assert status_lines("abc", quorum) == [
        "ClusterId:              abc",
        "LeaderId:               2",
        "LeaderEpoch:            5",
        "HighWatermark:          120",
        "MaxFollowerLag:         3",
        "MaxFollowerLagTimeMs:   -1",
        'CurrentVoters:          [{"id": 1, "endpoints": ["CONTROLLER://127.0.0.1:9093"]}, '
        '{"id": 2, "endpoints": ["CONTROLLER://127.0.0.1:9095"]}, {"id": 3, "endpoints": ["CONTROLLER://127.0.0.1:9097"]}]',
        "CurrentObservers:       []",
    ]
    assert replication_lines(quorum, human_readable=True, now_ms=2_500) == [
        "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus  \t",
        "2     \tAAAAAAAAAAAAAAAAAAAAAA\t121         \t0  \t500 ms ago        \t500 ms ago           \tLeader  \t",
        "1     \tAAAAAAAAAAAAAAAAAAAAAA\t118         \t3  \t1500 ms ago       \t-1                   \tFollower\t",
        "3     \tAAAAAAAAAAAAAAAAAAAAAA\t121         \t0  \t510 ms ago        \t510 ms ago           \tFollower\t",
    ]
