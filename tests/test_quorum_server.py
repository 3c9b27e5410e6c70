"""Three Raft voters over real sockets on 127.0.0.1, in one process: election, commits,
the leader killed, a new leader, and the killed node back from its data directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from kafkapy.raft.output import NotLeader, RaftConfig
from kafkapy.server.quorum import QuorumServer

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
    def __init__(self, root: Path, tg: anyio.abc.TaskGroup) -> None:
        self.root = root
        self.tg = tg
        self.addresses: dict[int, tuple[str, int]] = {}
        self.servers: dict[int, QuorumServer] = {}
        self.committed: dict[int, list[tuple[int, bytes]]] = {}  # what each node's state machine was handed
        self.scopes: dict[int, anyio.CancelScope] = {}

    async def start(self, node_id: int) -> None:
        committed: list[tuple[int, bytes]] = []
        server = QuorumServer(node_id, VOTERS, self.addresses, self.root / f"node-{node_id}" / "__cluster_metadata-0", CONFIG,
                              on_commit=lambda records, _time, _size: committed.extend(records))
        self.committed[node_id] = committed
        scope = anyio.CancelScope()

        async def run(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await server.run(task_status=task_status)

        await self.tg.start(run)
        self.addresses[node_id] = ("127.0.0.1", server.port)
        self.servers[node_id], self.scopes[node_id] = server, scope

    def stop(self, node_id: int) -> None:
        self.scopes.pop(node_id).cancel()
        del self.servers[node_id]

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
