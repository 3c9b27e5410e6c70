"""DescribeQuorum (55): what the Raft leader reports of itself and the other voters (the
pure description of a core), and what a single node and a three-node cluster answer
on their broker and controller listeners."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from kio.schema.errors import ErrorCode

from kafkapy.client import Client
from kafkapy.config import BrokerConfig
from kafkapy.raft.describe import UNKNOWN, ReplicaDescription, describe_leader
from kafkapy.server.broker import BrokerServer
from kafkapy.server.meta_properties import format_storage, random_cluster_id
from kafkapy.testing.embedded import Broker
from test_raft import InstantNetwork

WALL = 1_700_000_000_000  # the wall clock when the monotonic clock reads 0


def elected() -> tuple[InstantNetwork, int]:
    net = InstantNetwork()
    net.run(1_000)
    [leader] = net.leaders()
    return net, leader


def test_the_leader_describes_every_voter_with_wall_clock_times() -> None:
    net, leader = elected()
    net.append(leader, b"a", b"b")
    net.run(100)
    core = net.cores[leader]
    described = describe_leader(core, net.now, WALL + net.now)
    assert described is not None
    assert (described.leader_id, described.leader_epoch) == (leader, core.epoch)
    end = core.log.end_offset
    assert described.high_watermark == core.high_watermark == end
    assert [v.replica_id for v in described.voters] == [1, 2, 3] and described.observers == ()
    for voter in described.voters:
        if voter.replica_id == leader:
            assert voter == ReplicaDescription(leader, end, WALL + net.now, WALL + net.now)
        else:
            fetched_at = WALL + core.replicas.progress[voter.replica_id].last_fetch_ms
            assert WALL < fetched_at <= WALL + net.now
            # Fetched up to the leader's end: caught up as of that fetch.
            assert voter == ReplicaDescription(voter.replica_id, end, fetched_at, fetched_at)


def test_a_follower_behind_the_leader_has_no_known_caught_up_time() -> None:
    net, leader = elected()
    behind = min(n for n in net.cores if n != leader)
    net.cut = {frozenset((leader, behind))}
    net.append(leader, b"a", b"b", b"c")
    net.run(50)
    core = net.cores[leader]
    described = describe_leader(core, net.now, WALL + net.now)
    assert described is not None
    lagging = next(v for v in described.voters if v.replica_id == behind)
    assert lagging.log_end_offset == core.log.end_offset - 3
    assert lagging.last_fetch_timestamp == WALL + core.replicas.progress[behind].last_fetch_ms
    assert lagging.last_caught_up_timestamp == UNKNOWN
    # The other two voters are a majority: the records commit without it.
    assert described.high_watermark == core.log.end_offset


def test_only_the_leader_describes_the_quorum() -> None:
    net, leader = elected()
    follower = next(n for n in net.cores if n != leader)
    assert describe_leader(net.cores[follower], net.now, WALL) is None


def request_describe_quorum(address: tuple[str, int], topics: list[dict[str, Any]]) -> Any:
    with Client(f"{address[0]}:{address[1]}") as client:
        return client.any_broker().request("describe_quorum", {"topics": topics})


METADATA_PARTITION = [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]


@pytest.fixture(scope="module")
def single() -> Iterator[Broker]:
    with Broker() as broker:
        yield broker


def test_a_single_node_is_a_quorum_of_one(single: Broker) -> None:
    before = time.time_ns() // 1_000_000
    with Client(single.bootstrap_servers) as client:
        quorum = client.describe_quorum()
    after = time.time_ns() // 1_000_000
    assert (quorum.leader_id, quorum.leader_epoch, quorum.observers) == (1, 0, [])
    [me] = quorum.voters
    assert me.replica_id == 1 and me.directory_id.int == 0
    # Registration and the first records are committed: the log is not empty, and all of it is committed.
    assert me.log_end_offset == quorum.high_watermark > 0
    assert before <= me.last_fetch_timestamp == me.last_caught_up_timestamp <= after


def test_anything_but_the_metadata_partition_is_an_unknown_partition(single: Broker) -> None:
    response = request_describe_quorum(("127.0.0.1", single.port), [
        {"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 1}]},
        {"topic_name": "other", "partitions": [{"partition_index": 0}]},
    ])
    assert response.error_code == ErrorCode.none
    assert [(t.topic_name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in response.topics] == [
        ("__cluster_metadata", [(1, ErrorCode.unknown_topic_or_partition)]),
        ("other", [(0, ErrorCode.unknown_topic_or_partition)]),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_three_nodes_answer_from_the_leader_on_any_listener(tmp_path: Path) -> None:
    """Three combined nodes in this process; DescribeQuorum through each broker listener
    is forwarded to the active controller, on the controller listeners only the leader answers."""
    ports = {i: (free_port(), free_port()) for i in (1, 2, 3)}
    voters = ",".join(f"{i}@127.0.0.1:{controller}" for i, (_, controller) in ports.items())
    cluster_id = random_cluster_id()
    servers: dict[int, BrokerServer] = {}
    for i, (client_port, controller_port) in ports.items():
        config = BrokerConfig({
            "node.id": str(i), "listeners": f"PLAINTEXT://127.0.0.1:{client_port},CONTROLLER://127.0.0.1:{controller_port}",
            "controller.quorum.voters": voters, "log.dirs": str(tmp_path / f"node-{i}"),
            "controller.quorum.election.timeout.ms": "300", "controller.quorum.fetch.timeout.ms": "600",
        })
        format_storage(config.log_dirs, i, cluster_id)
        servers[i] = BrokerServer(config)

    def serving(server: BrokerServer) -> bool:
        lifecycle = server._lifecycle
        return server.broker is not None and lifecycle is not None and not lifecycle.fenced

    def checks() -> None:
        answers = {}
        for i, (client_port, _) in ports.items():
            with Client(f"127.0.0.1:{client_port}") as client:
                answers[i] = client.describe_quorum()
        leader = next(s.broker.metadata.quorum.leader_id for s in servers.values() if s.broker is not None)
        for quorum in answers.values():
            assert quorum.leader_id == leader
            assert [v.replica_id for v in quorum.voters] == [1, 2, 3] and quorum.observers == []
            assert quorum.endpoints == {i: [f"CONTROLLER://127.0.0.1:{c}"] for i, (_, c) in ports.items()}
            me = next(v for v in quorum.voters if v.replica_id == leader)
            assert 0 < quorum.high_watermark <= me.log_end_offset
            assert all(0 <= v.log_end_offset <= me.log_end_offset and v.last_fetch_timestamp > 0 for v in quorum.voters)
        for i, (_, controller_port) in ports.items():
            response = request_describe_quorum(("127.0.0.1", controller_port), METADATA_PARTITION)
            [partition] = response.topics[0].partitions
            if i == leader:
                assert (partition.error_code, partition.leader_id) == (ErrorCode.none, leader)
                assert [v.replica_id for v in partition.current_voters] == [1, 2, 3]
            else:
                assert partition.error_code == ErrorCode.not_leader_or_follower

    async def run() -> None:
        # Bounded as a whole: a node stuck before serving does not see stop().
        with anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                for server in servers.values():
                    tg.start_soon(server.run)
                try:
                    while not all(serving(s) for s in servers.values()):
                        await anyio.sleep(0.05)
                    await anyio.to_thread.run_sync(checks)
                finally:
                    for server in servers.values():
                        server.stop()

    anyio.run(run)
