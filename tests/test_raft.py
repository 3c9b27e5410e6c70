"""The Raft core: scenarios on an instant network, then the seeded simulation."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import replace

import pytest
from kio.schema.errors import ErrorCode

from kafkapy.raft.core import RaftCore, Role
from kafkapy.raft.log import BatchBoundaryError, RaftLog
from kafkapy.raft.messages import (
    BeginQuorumEpochRequest,
    Entry,
    FetchRequest,
    FetchResponse,
    Message,
    VoteRequest,
    VoteResponse,
)
from kafkapy.raft.output import (
    NO_LEADER,
    Append,
    DeleteBefore,
    NotLeader,
    Output,
    QuorumState,
    RaftConfig,
    SaveSnapshot,
    Snapshot,
    SnapshotId,
)
from kafkapy.testing.raft_simulation import Simulation, SimulationConfig, Violation

FAST = RaftConfig(election_timeout_ms=100, fetch_timeout_ms=200, election_backoff_max_ms=100, request_timeout_ms=100,
                  fetch_max_wait_ms=50)


class InstantNetwork:
    """Cores whose messages arrive at once unless the link between two nodes is cut."""

    def __init__(self, voters: tuple[int, ...] = (1, 2, 3), config: RaftConfig = FAST) -> None:
        self.now = 0
        self.cores = {i: RaftCore(i, voters, RaftLog(), QuorumState(), config, random.Random(i)) for i in voters}
        self.committed: dict[int, list[bytes]] = {i: [] for i in voters}
        self.appends: dict[int, list[Append]] = {i: [] for i in voters}
        self.cut: set[frozenset[int]] = set()
        self._inbox: deque[tuple[int, int, Message]] = deque()
        for node, core in self.cores.items():
            self.carry_out(node, core.start(0))

    def carry_out(self, node: int, output: Output) -> None:
        self._inbox.extend((node, destination, message) for destination, message in output.send)
        self.committed[node].extend(value for _, value in output.committed)
        self.appends[node].extend(op for op in output.log if isinstance(op, Append))

    def run(self, ms: int) -> None:
        for _ in range(ms):
            self.now += 1
            while self._inbox:
                source, destination, message = self._inbox.popleft()
                if frozenset((source, destination)) not in self.cut:
                    self.carry_out(destination, self.cores[destination].receive(self.now, source, message))
            for node, core in self.cores.items():
                deadline = core.next_deadline()
                if deadline is not None and deadline <= self.now:
                    self.carry_out(node, core.tick(self.now))

    def leaders(self) -> list[int]:
        return [n for n, core in self.cores.items() if core.role is Role.LEADER]

    def append(self, node: int, *values: bytes) -> None:
        _, output = self.cores[node].append(self.now, list(values))
        self.carry_out(node, output)


def test_a_single_voter_leads_at_once_and_commits_on_append() -> None:
    core = RaftCore(1, [1], RaftLog(), QuorumState(), RaftConfig(), random.Random(0))
    started = core.start(0)
    assert core.role is Role.LEADER and core.epoch == 1
    assert started.state == QuorumState(epoch=1, leader_id=1, voted_id=1)
    assert started.log == [Append(0, (Entry(1, b"", control=True),))]
    last, output = core.append(5, [b"a", b"b"])
    assert last == 2
    assert output.log == [Append(1, (Entry(1, b"a"), Entry(1, b"b")))]
    assert output.high_watermark == 3
    assert output.committed == [(1, b"a"), (2, b"b")]


def test_a_restarted_single_voter_starts_a_new_epoch_and_commits_nothing_twice() -> None:
    log = RaftLog([(Entry(1, b"", control=True),), (Entry(1, b"a"),)])
    core = RaftCore(1, [1], log, QuorumState(epoch=1, leader_id=1, voted_id=1), RaftConfig(), random.Random(0))
    output = core.start(0)
    assert core.role is Role.LEADER and core.epoch == 2
    # The new epoch's LeaderChange commits the old record once.
    assert output.committed == [(1, b"a")]
    assert core.high_watermark == 3


def test_the_log_starts_only_at_a_snapshot_no_newer_than_the_newest() -> None:
    core = RaftCore(1, [1], RaftLog(), QuorumState(), RaftConfig(), random.Random(0))
    core.start(0)
    core.append(1, [b"a", b"b"])
    core.append(2, [b"c"])
    with pytest.raises(ValueError):
        core.delete_log_before(3)  # no snapshot yet
    older = core.take_snapshot(3, b"state-3").log
    newer = core.take_snapshot(4, b"state-4").log
    assert older == [SaveSnapshot(Snapshot(SnapshotId(3, 1), b"state-3"))] and newer[0].snapshot.snapshot_id == SnapshotId(4, 1)
    with pytest.raises(ValueError):
        core.take_snapshot(5, b"")  # past the high watermark
    with pytest.raises(ValueError):
        core.delete_log_before(5)  # past the newest snapshot
    # Retention may keep the newest snapshot's log and start at an older one.
    assert core.delete_log_before(3).log == [DeleteBefore(3)]
    assert core.log.start_offset == 3 and [e.value for e in core.log.entries] == [b"c"]
    assert core.delete_log_before(3).log == []  # already there
    assert core.delete_log_before(4).log == [DeleteBefore(4)] and core.log.end_offset == 4


def test_three_voters_elect_one_leader_and_commit_the_same_records() -> None:
    net = InstantNetwork()
    net.run(1_000)
    assert len(net.leaders()) == 1
    leader = net.leaders()[0]
    net.append(leader, b"x", b"y")
    net.append(leader, b"z")
    net.run(100)
    assert net.committed == {1: [b"x", b"y", b"z"], 2: [b"x", b"y", b"z"], 3: [b"x", b"y", b"z"]}
    assert {core.epoch for core in net.cores.values()} == {net.cores[leader].epoch}
    assert all(core.leader_id == leader for core in net.cores.values())


def test_an_isolated_leader_resigns_and_nothing_it_appends_alone_is_committed() -> None:
    net = InstantNetwork()
    net.run(1_000)
    old = net.leaders()[0]
    others = [n for n in net.cores if n != old]
    net.append(old, b"before")
    net.run(50)
    net.cut = {frozenset((old, n)) for n in others}
    net.append(old, b"alone-1", b"alone-2")
    # Check-quorum: no majority has fetched within 1.5 fetch timeouts, so it stops leading.
    net.run(FAST.fetch_timeout_ms * 3 // 2 + 10)
    assert net.cores[old].role is Role.RESIGNED
    with pytest.raises(NotLeader):
        net.cores[old].append(net.now, [b"too late"])
    net.run(1_000)
    [new] = net.leaders()
    assert new in others and net.cores[new].epoch > net.cores[old].epoch
    net.append(new, b"after")
    net.cut = set()
    net.run(1_000)
    assert all(committed == [b"before", b"after"] for committed in net.committed.values()), net.committed
    # The old leader's uncommitted tail was truncated when it learned the new epoch.
    assert net.cores[old].log.entries == net.cores[new].log.entries
    assert net.cores[old].leader_id == new


def test_a_vote_needs_a_log_at_least_as_up_to_date() -> None:
    log = RaftLog([(Entry(1, b"", control=True),), (Entry(2, b"", control=True),), (Entry(2, b"a"),)])
    core = RaftCore(2, [1, 2, 3], log, QuorumState(epoch=2, leader_id=NO_LEADER), RaftConfig(), random.Random(0))
    core.start(0)
    behind = core.receive(1, 1, VoteRequest(7, 3, 1, last_epoch=1, last_offset=5, pre_vote=False))
    assert behind.send == [(1, VoteResponse(7, ErrorCode.none, 3, NO_LEADER, False, False))]
    assert core.voted_id == NO_LEADER
    current = core.receive(2, 3, VoteRequest(8, 3, 3, last_epoch=2, last_offset=3, pre_vote=False))
    assert current.send == [(3, VoteResponse(8, ErrorCode.none, 3, NO_LEADER, True, False))]
    # The vote is persisted before it is sent, and not given twice in the epoch.
    assert current.state == QuorumState(epoch=3, leader_id=NO_LEADER, voted_id=3)
    again = core.receive(3, 1, VoteRequest(9, 3, 1, last_epoch=2, last_offset=3, pre_vote=False))
    assert isinstance(again.send[0][1], VoteResponse) and not again.send[0][1].granted


def test_a_pre_vote_promises_nothing_and_a_follower_with_a_live_leader_refuses_it() -> None:
    net = InstantNetwork()
    net.run(1_000)
    leader = net.leaders()[0]
    follower = next(n for n in net.cores if n != leader)
    core = net.cores[follower]
    state_before = (core.epoch, core.voted_id, core.role)
    answer = core.receive(net.now, 99, VoteRequest(1, core.epoch, 99, core.log.last_epoch, core.log.end_offset, pre_vote=True))
    response = answer.send[0][1]
    assert isinstance(response, VoteResponse) and response.pre_vote and not response.granted
    assert answer.state is None and (core.epoch, core.voted_id, core.role) == state_before


# -- parked fetches -------------------------------------------------------------------


def caught_up_fetch(net: InstantNetwork, leader: int, follower: int, correlation: int) -> FetchRequest:
    core = net.cores[leader]
    return FetchRequest(correlation, core.epoch, follower, core.log.end_offset, core.log.last_epoch, max_wait_ms=10_000,
                        high_watermark=core.high_watermark if core.high_watermark is not None else -1)


def test_a_newer_fetch_from_the_same_replica_answers_the_parked_one_at_once() -> None:
    net = InstantNetwork()
    net.run(1_000)
    leader = net.leaders()[0]
    follower = next(n for n in net.cores if n != leader)
    core = net.cores[leader]
    # The follower's own fetch is parked by now; a newer one answers it and takes its place.
    parked = core.receive(net.now, follower, caught_up_fetch(net, leader, follower, 901))
    [(destination, answer)] = parked.send
    assert destination == follower and isinstance(answer, FetchResponse)
    assert answer.correlation != 901 and answer.batches == () and answer.error == ErrorCode.none
    newer = core.receive(net.now, follower, caught_up_fetch(net, leader, follower, 902))
    # The older is answered first, empty; the newer waits in its place.
    assert newer.send == [(follower, FetchResponse(901, ErrorCode.none, core.epoch, leader, core.high_watermark or -1,
                                                   0, core.log.end_offset))]
    _, appended = core.append(net.now, [b"x"])
    answers = [(m.correlation, m.batches) for d, m in appended.send if isinstance(m, FetchResponse) and d == follower]
    assert answers == [(902, ((Entry(core.epoch, b"x"),),))]


def test_a_leader_that_steps_down_answers_every_parked_fetch_with_the_new_leader() -> None:
    net = InstantNetwork()
    net.run(1_000)
    leader = net.leaders()[0]
    followers = [n for n in net.cores if n != leader]
    core = net.cores[leader]
    for i, follower in enumerate(followers):
        core.receive(net.now, follower, caught_up_fetch(net, leader, follower, 900 + i))
    # A newer epoch's leader announces itself: the parked fetches learn of it at once.
    output = core.receive(net.now, followers[0], BeginQuorumEpochRequest(77, core.epoch + 1, followers[0]))
    answers = {d: m for d, m in output.send if isinstance(m, FetchResponse)}
    assert {d: (m.correlation, m.error, m.epoch, m.leader_id) for d, m in answers.items()} == {
        follower: (900 + i, ErrorCode.not_leader_or_follower, core.epoch, followers[0]) for i, follower in enumerate(followers)}
    assert core.role is Role.FOLLOWER and core.next_deadline() is not None


def test_a_resigning_leader_answers_its_parked_fetches() -> None:
    net = InstantNetwork()
    net.run(1_000)
    leader = net.leaders()[0]
    follower = next(n for n in net.cores if n != leader)
    core = net.cores[leader]
    core.receive(net.now, follower, caught_up_fetch(net, leader, follower, 900))
    output = core.resign(net.now)
    # Every parked fetch (the other follower's own one too) is answered: not the leader any more.
    answers = {d: (m.correlation, m.error, m.epoch, m.leader_id) for d, m in output.send if isinstance(m, FetchResponse)}
    assert answers[follower] == (900, ErrorCode.not_leader_or_follower, core.epoch, leader)
    assert len(answers) == 2 and all(a[1] == ErrorCode.not_leader_or_follower for a in answers.values())


# -- batches ----------------------------------------------------------------------------


def test_the_log_reads_whole_batches_and_truncates_only_between_them() -> None:
    a, b, c, d, e = (Entry(2, v) for v in (b"a", b"bb", b"c", b"dddd", b"e"))
    log = RaftLog([(a, b), (c,), (d, e)], start_offset=10, start_epoch=1)
    assert log.batch_sizes == [2, 1, 2]
    # Capped by count or bytes at a batch boundary, never inside a batch, and at least one.
    assert log.read_batches(10, max_entries=2, max_bytes=-1) == ((a, b),)
    assert log.read_batches(10, max_entries=1, max_bytes=-1) == ((a, b),)
    assert log.read_batches(12, max_entries=10, max_bytes=1) == ((c,),)
    assert log.read_batches(12, max_entries=10, max_bytes=6) == ((c,), (d, e))
    assert log.read_batches(15, max_entries=10, max_bytes=-1) == ()
    assert [log.is_batch_boundary(o) for o in range(10, 16)] == [True, False, True, True, False, True]
    with pytest.raises(BatchBoundaryError):
        log.truncate_to(11)
    with pytest.raises(BatchBoundaryError):
        log.delete_before(14)
    assert log.entries == [a, b, c, d, e]
    log.truncate_to(13)
    log.delete_before(12)
    assert (log.start_offset, log.start_epoch, log.batches()) == (12, 2, [(c,)])
    with pytest.raises(ValueError):
        log.append((Entry(3, b"", control=True), Entry(3, b"x")))  # a control batch holds only itself


def test_followers_store_the_leaders_batches_whole() -> None:
    net = InstantNetwork(config=replace(FAST, max_fetch_entries=2))
    net.run(1_000)
    leader = net.leaders()[0]
    net.append(leader, b"a", b"b", b"c")  # more than a fetch's cap: sent whole all the same
    net.append(leader, b"d")
    net.append(leader, b"e", b"f")
    net.run(200)
    batches = net.cores[leader].log.batches()
    assert batches[-3:] == [(Entry(net.cores[leader].epoch, b"a"), Entry(net.cores[leader].epoch, b"b"),
                             Entry(net.cores[leader].epoch, b"c")),
                            (Entry(net.cores[leader].epoch, b"d"),),
                            (Entry(net.cores[leader].epoch, b"e"), Entry(net.cores[leader].epoch, b"f"))]
    for node, core in net.cores.items():
        assert core.log.batches() == batches
        # One Append op per batch, each the leader's batch at the leader's offset.
        leader_ops = {(op.base_offset, op.entries) for op in net.appends[leader]}
        assert all((op.base_offset, op.entries) in leader_ops for op in net.appends[node])
    assert net.committed[leader] == [b"a", b"b", b"c", b"d", b"e", b"f"]


def test_a_divergent_tail_is_truncated_at_a_batch_boundary() -> None:
    net = InstantNetwork(config=replace(FAST, max_fetch_entries=1))
    net.run(1_000)
    old = net.leaders()[0]
    others = [n for n in net.cores if n != old]
    net.append(old, b"kept-1", b"kept-2")
    net.run(50)
    net.cut = {frozenset((old, n)) for n in others}
    net.append(old, b"lost-1", b"lost-2", b"lost-3")
    net.run(1_500)
    [new] = net.leaders()
    net.append(new, b"after-1", b"after-2")
    net.appends[old].clear()
    net.cut = set()
    net.run(1_000)
    # The old leader dropped its uncommitted batch whole and took the new leader's batches.
    assert net.cores[old].log.batches() == net.cores[new].log.batches()
    assert net.committed[old] == [b"kept-1", b"kept-2", b"after-1", b"after-2"]
    redone = [op.entries for op in net.appends[old]]
    assert redone and redone == net.cores[new].log.batches()[-len(redone):]
    assert net.appends[old][0].base_offset == 3  # after LeaderChange, kept-1, kept-2: where the lost batch began


# -- the simulation -------------------------------------------------------------------

SHAPES = {
    "three voters and an observer": (SimulationConfig(voters=3, observers=1), range(0, 200)),
    "five voters": (SimulationConfig(voters=5, observers=0), range(1_000, 1_060)),
    "one voter and an observer": (SimulationConfig(voters=1, observers=1), range(2_000, 2_030)),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_simulation_keeps_every_invariant(shape: str) -> None:
    config, seeds = SHAPES[shape]
    committed = 0
    for seed in seeds:
        result = Simulation(seed, config).run()
        committed += result.committed
        assert result.acknowledged <= result.committed
    # The runs did real work: records were committed in every shape.
    assert committed > 100 * len(seeds)


def test_a_seed_replays_exactly() -> None:
    assert Simulation(7).run() == Simulation(7).run()


class VotesWithoutLookingAtTheLog(RaftCore):
    """A deliberately broken core: it grants votes without comparing logs."""

    def _grants_vote(self, request: VoteRequest) -> bool:
        return self.is_voter and self.leader_id == NO_LEADER and self.voted_id in (NO_LEADER, request.candidate_id)


def test_the_simulation_catches_a_vote_granted_without_checking_the_log() -> None:
    caught: list[Violation] = []
    for seed in range(300):
        try:
            Simulation(seed, core=VotesWithoutLookingAtTheLog).run()
        except Violation as violation:
            caught.append(violation)
            break
    assert caught, "300 seeds of a broken core passed: the simulation checks too little"
    message = str(caught[0])
    seed = int(message.split(",")[0].removeprefix("seed "))
    assert f"--seed {seed}" in message
    # The failing seed prints itself and fails the same way again.
    with pytest.raises(Violation) as again:
        Simulation(seed, core=VotesWithoutLookingAtTheLog).run()
    assert str(again.value) == message


def test_a_fetch_that_moves_the_high_watermark_is_answered_at_once() -> None:
    # Otherwise the follower whose fetch committed a record learns of it only when its
    # fetch times out (500 ms by default), and its metadata lags behind the leader's.
    net = InstantNetwork()
    net.run(1_000)
    leader = net.leaders()[0]
    net.append(leader, b"x")
    net.run(5)
    assert all(core.high_watermark == net.cores[leader].high_watermark for core in net.cores.values())
    assert net.committed == {1: [b"x"], 2: [b"x"], 3: [b"x"]}


@pytest.mark.parametrize("seed", range(20))
def test_an_observer_that_lost_its_leader_asks_only_voters_that_answer(seed: int) -> None:
    net = InstantNetwork()
    observer = RaftCore(4, (1, 2, 3), RaftLog(), QuorumState(), FAST, random.Random(seed))
    net.cores[4], net.committed[4], net.appends[4] = observer, [], []
    asked: list[tuple[int, int]] = []  # (time, voter) of each fetch the observer sends
    carry_out = net.carry_out

    def recording(node: int, output: Output) -> None:
        if node == 4:
            asked.extend((net.now, d) for d, m in output.send if isinstance(m, FetchRequest))
        carry_out(node, output)

    net.carry_out = recording  # type: ignore[method-assign]
    net.carry_out(4, observer.start(0))
    net.run(1_000)
    [old] = net.leaders()
    assert observer.role is Role.FOLLOWER and observer.leader_id == old
    # The leader dies: nothing reaches it any more, nothing comes back.
    killed_at = net.now
    net.cut |= {frozenset((old, n)) for n in net.cores if n != old}
    net.run(1_000)
    [new] = [n for n in net.leaders() if n != old]
    assert observer.role is Role.FOLLOWER and observer.leader_id == new
    # It waits out one fetch timeout for its leader; looking for the next one, it asks the
    # dead leader at most once more, and never again once that went unanswered.
    forgot_at = killed_at + FAST.fetch_timeout_ms
    to_old = [t for t, d in asked if d == old and t >= forgot_at]
    assert len(to_old) <= 1
    if to_old:
        assert all(d != old for t, d in asked if t > to_old[0])
