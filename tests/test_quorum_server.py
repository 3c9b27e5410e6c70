"""Three Raft voters over real sockets on 127.0.0.1, in one process: election, commits,
the leader killed, a new leader, and the killed node back from its data directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from kafkapy.raft.messages import FetchRequest
from kafkapy.raft.output import NotLeader, RaftConfig
from kafkapy.raft.wire import API_VERSIONS, FETCH, request_to_kafka
from kafkapy.server.quorum import QuorumServer
from kafkapy.wire.framing import FrameReader
from kafkapy.wire.protocol import decode_response, encode_request

pytestmark = [pytest.mark.timeout(60), pytest.mark.anyio]

CONFIG = RaftConfig(election_timeout_ms=200, fetch_timeout_ms=400, election_backoff_max_ms=200,
                    request_timeout_ms=300, fetch_max_wait_ms=100)
VOTERS = (1, 2, 3)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Polls a condition until it holds; fails naming it if it does not in time."""
    with anyio.move_on_after(timeout_s):
        while not condition():
            await anyio.sleep(0.01)
        return
    raise AssertionError(f"timed out waiting for {what}")


class Cluster:
    def __init__(self, root: Path, tg: anyio.abc.TaskGroup, config: RaftConfig = CONFIG) -> None:
        self.root = root
        self.tg = tg
        self.config = config
        self.addresses: dict[int, tuple[str, int]] = {}
        self.servers: dict[int, QuorumServer] = {}
        self.committed: dict[int, list[tuple[int, bytes]]] = {}  # what each node's state machine was handed
        self.scopes: dict[int, anyio.CancelScope] = {}
        self.stopped: dict[int, anyio.Event] = {}

    async def start(self, node_id: int) -> None:
        committed: list[tuple[int, bytes]] = []
        server = QuorumServer(node_id, VOTERS, self.addresses, self.directory(node_id), self.config,
                              on_commit=lambda records, _time, _size: committed.extend(records),
                              on_snapshot=lambda snapshot: committed.clear())
        self.committed[node_id] = committed
        scope, stopped = anyio.CancelScope(), anyio.Event()
        self.stopped[node_id] = stopped

        async def run(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await server.run(task_status=task_status)
            finally:
                stopped.set()

        await self.tg.start(run)
        self.addresses[node_id] = ("127.0.0.1", server.port)
        self.servers[node_id], self.scopes[node_id] = server, scope

    def directory(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}" / "__cluster_metadata-0"

    def stop(self, node_id: int) -> None:
        self.scopes.pop(node_id).cancel()
        del self.servers[node_id]

    async def stop_and_wait(self, node_id: int) -> None:
        """Stops a node and waits until it has closed its files, so that a new one may open them."""
        self.stop(node_id)
        await self.stopped[node_id].wait()

    def leaders(self) -> list[QuorumServer]:
        return [s for s in self.servers.values() if s.is_leader]

    async def leader(self) -> QuorumServer:
        await until(lambda: len(self.leaders()) == 1, "one leader")
        return self.leaders()[0]

    async def append(self, values: list[bytes]) -> int:
        """Appends through whichever node leads, again if leadership moves meanwhile."""
        while True:
            leader = await self.leader()
            try:
                return await leader.append(values)
            except NotLeader:
                continue


def values_of(cluster: Cluster, node_id: int) -> list[bytes]:
    return [value for _, value in cluster.committed[node_id]]


def state_of(cluster: Cluster, node_id: int) -> list[bytes]:
    """The state machine of these tests, a list of values: the snapshot it loaded, then what
    was committed after it."""
    snapshot = cluster.servers[node_id].snapshot
    return (snapshot.values if snapshot else []) + values_of(cluster, node_id)


async def test_three_voters_elect_commit_fail_over_and_catch_up(tmp_path: Path) -> None:
    with anyio.fail_after(45):
        async with anyio.create_task_group() as tg:
            cluster = Cluster(tmp_path, tg)
            for node_id in VOTERS:
                await cluster.start(node_id)

            first = [b"r%d" % i for i in range(10)]
            for i in range(0, 10, 2):
                await cluster.append(first[i:i + 2])
            await until(lambda: all(values_of(cluster, n) == first for n in cluster.servers), "every node to commit the first records")
            offsets = [o for o, _ in cluster.committed[1]]
            assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)

            # The leader dies abruptly; the other two elect a new one, which commits.
            old = (await cluster.leader()).node_id
            old_epoch = cluster.servers[old].core.epoch  # type: ignore[union-attr]
            cluster.stop(old)
            new = await cluster.leader()
            assert new.node_id != old and new.core is not None and new.core.epoch > old_epoch
            second = [b"s%d" % i for i in range(5)]
            await cluster.append(second)
            await until(lambda: all(values_of(cluster, n) == first + second for n in cluster.servers), "the two to commit")

            # The old leader restarts from its data directory and catches up.
            await cluster.start(old)
            await until(lambda: values_of(cluster, old) == first + second, "the restarted node to catch up")
            third = [b"t0"]
            await cluster.append(third)
            await until(lambda: all(values_of(cluster, n) == first + second + third for n in cluster.servers), "all three to commit")
            reference = cluster.committed[new.node_id]
            assert all(cluster.committed[n] == reference for n in cluster.servers)
            tg.cancel_scope.cancel()


async def fetch_answers(address: tuple[str, int], leader: QuorumServer, fetches: list[tuple[int, int]]) -> list[int]:
    """Sends fetches (correlation, max wait ms) of a caught-up replica 99 on one connection;
    returns the correlations of the answers, in the order they come."""
    core = leader.core
    assert core is not None
    async with await anyio.connect_tcp(*address) as stream:
        for correlation, max_wait_ms in fetches:
            request = FetchRequest(correlation, core.epoch, 99, core.log.end_offset, core.log.last_epoch, max_wait_ms)
            await stream.send(encode_request(request_to_kafka(request, leader.node_id), correlation))
        reader, answered = FrameReader(1 << 20), []
        while len(answered) < len(fetches):
            for frame in reader.feed(await stream.receive()):
                correlation, _ = decode_response(bytes(frame), FETCH, API_VERSIONS[FETCH])
                answered.append(correlation)
        return answered


async def test_a_parked_fetch_does_not_hold_up_the_answers_behind_it(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            cluster = Cluster(tmp_path, tg)
            for node_id in VOTERS:
                await cluster.start(node_id)
            await cluster.append([b"a"])
            leader = await cluster.leader()
            # The first waits for records that do not come; the second, from the same replica,
            # answers it at once (responses go out in request order, so it must), well
            # before any request timeout.
            with anyio.fail_after(2):
                assert await fetch_answers(cluster.addresses[leader.node_id], leader, [(501, 60_000), (502, 0)]) == [501, 502]
            tg.cancel_scope.cancel()


async def test_a_wiped_follower_catches_up_through_the_leaders_snapshot(tmp_path: Path) -> None:
    # Small chunks, so that the transfer takes several FetchSnapshot round trips.
    config = replace(CONFIG, fetch_snapshot_max_bytes=200)
    with anyio.fail_after(45):
        async with anyio.create_task_group() as tg:
            cluster = Cluster(tmp_path, tg, config)
            for node_id in VOTERS:
                await cluster.start(node_id)
            before = [b"before-%d" % i for i in range(30)]
            for i in range(0, 30, 3):
                await cluster.append(before[i:i + 3])
            leader = await cluster.leader()
            wiped = next(n for n in VOTERS if n != leader.node_id)
            await cluster.stop_and_wait(wiped)
            await cluster.append([b"while-away"])

            # The leader snapshots its committed state and lets its log start at the snapshot's end.
            end = leader.high_watermark
            assert end is not None
            values = [v for o, v in cluster.committed[leader.node_id] if o < end]
            assert await leader.take_snapshot(end, lambda: values, 0) is not None
            await leader.delete_log_before(end)
            assert leader.core is not None and leader.core.log.start_offset == end
            [checkpoint] = cluster.directory(leader.node_id).glob("*.checkpoint")
            after = [b"after-0", b"after-1"]
            await cluster.append(after)

            # The follower comes back with nothing: the log it needs is gone, so it fetches the snapshot.
            shutil.rmtree(cluster.directory(wiped))
            await cluster.start(wiped)
            expected = before + [b"while-away"] + after
            await until(lambda: state_of(cluster, wiped) == expected, "the wiped follower to catch up")
            follower = cluster.servers[wiped]
            assert follower.snapshot is not None and follower.snapshot.values == before + [b"while-away"]
            assert [o for o, _ in cluster.committed[wiped]] == [o for o, _ in cluster.committed[leader.node_id] if o >= end]
            # Its snapshot file is the leader's, byte for byte, and its log starts at the snapshot's end.
            assert (cluster.directory(wiped) / checkpoint.name).read_bytes() == checkpoint.read_bytes()
            assert follower.core is not None and follower.core.log.start_offset == end

            # Restarted, it loads the snapshot and the log after it, and commits on.
            await cluster.stop_and_wait(wiped)
            await cluster.start(wiped)
            await cluster.append([b"last"])
            expected.append(b"last")
            await until(lambda: all(state_of(cluster, n) == expected for n in cluster.servers), "all three to commit")
            assert cluster.servers[wiped].snapshot == follower.snapshot
            tg.cancel_scope.cancel()
