"""A deterministic simulation of a Raft quorum: several `RaftCore`s, a simulated clock,
network and disk, and a client appending records, all driven by one seeded random
generator so that a failing seed replays exactly.

The network drops, duplicates, delays (and so reorders) messages and can be cut
between groups of nodes; nodes crash, losing everything but what their Outputs made
durable, and restart from it. After every step the invariants are checked:
- at most one leader per epoch;
- a committed entry is never lost or changed: every node's log below its high
  watermark agrees with every other's, and no node truncates below its high watermark;
- the high watermark of a node never goes backwards while it runs;
- every record the client saw committed is in the final log, once;
- every truncation falls on a batch boundary of the node's durable log, and a node's
  batches are the leader's: storage never has to cut a batch that may be committed.
At the end the faults stop and the quorum must elect a leader and commit a new record
on every node within a bounded time (liveness).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..raft.core import RaftCore, Role
from ..raft.log import RaftLog
from ..raft.messages import Entry, Message
from ..raft.output import (
    DeleteBefore,
    InstallSnapshot,
    LogOp,
    NotLeader,
    Output,
    QuorumState,
    RaftConfig,
    SaveSnapshot,
    Snapshot,
    Truncate,
)

CoreFactory = Callable[..., RaftCore]


class Violation(AssertionError):
    """An invariant broke; the message names the seed that replays it."""


@dataclass(frozen=True)
class SimulationConfig:
    voters: int = 3
    observers: int = 1
    fault_ms: int = 20_000
    """How long faults are injected; then the network heals and every node runs."""
    settle_ms: int = 20_000
    """How long the healed quorum has to elect a leader and commit a record everywhere."""
    drop: float = 0.05
    duplicate: float = 0.02
    max_delay_ms: int = 40
    append_every_ms: int = 60
    crash_every_ms: int = 2_500
    partition_every_ms: int = 4_000
    snapshot_every: tuple[int | None, ...] = (None, 15, 60)
    """Each seed picks one: committed entries between a node's snapshots (None: never)."""
    # Small snapshot chunks, so that a transfer takes several FetchSnapshot round trips; small
    # fetches, so that responses stop at batch boundaries well before the log end.
    raft: RaftConfig = RaftConfig(fetch_snapshot_max_bytes=64, max_fetch_entries=8, max_fetch_bytes=40)


@dataclass
class Disk:
    """What a node made durable: its quorum state, its newest snapshot and its log."""

    state: QuorumState = QuorumState()
    snapshot: Snapshot | None = None
    log: RaftLog = field(default_factory=RaftLog)

    def apply(self, output: Output) -> None:
        if output.state is not None:
            self.state = output.state
        for op in output.log:
            self.apply_op(op)

    def apply_op(self, op: LogOp) -> None:
        match op:
            case Truncate():
                self.log.truncate_to(op.offset)
            case SaveSnapshot():
                self.snapshot = op.snapshot
            case DeleteBefore():
                self.log.delete_before(op.offset)
            case InstallSnapshot():
                self.snapshot = op.snapshot
                self.log.reset(op.snapshot.snapshot_id.offset, op.snapshot.snapshot_id.epoch)
            case _:
                assert op.base_offset == self.log.end_offset, "appends are contiguous"
                self.log.append(op.entries)

    def copy_of_log(self) -> RaftLog:
        return RaftLog(self.log.batches(), self.log.start_offset, self.log.start_epoch)


@dataclass
class Node:
    node_id: int
    disk: Disk = field(default_factory=Disk)
    core: RaftCore | None = None
    checked_up_to: int = 0
    """Offsets below this were checked against the committed log in this lifetime."""
    tick_at: int | None = None


@dataclass
class SimulationResult:
    seed: int
    events: int
    committed: int
    acknowledged: int
    leaders: int
    crashes: int
    partitions: int
    snapshots_installed: int


class Simulation:
    def __init__(self, seed: int, config: SimulationConfig = SimulationConfig(), core: CoreFactory = RaftCore) -> None:
        self.seed = seed
        self.config = config
        self.rng = random.Random(seed)
        self.make_core = core
        self.voter_ids = list(range(1, config.voters + 1))
        all_ids = list(range(1, config.voters + config.observers + 1))
        self.nodes = {i: Node(i) for i in all_ids}
        self.now = 0
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self.events = 0
        self.cut: set[frozenset[int]] = set()
        # What the quorum has committed, offset by offset: (epoch, value, control), and
        # whether a batch starts there.
        self.committed_log: list[Entry] = []
        self.committed_batch_starts: list[bool] = []
        self.leader_of_epoch: dict[int, int] = {}
        # Client appends: value -> (node, offset) waiting to be seen committed there.
        self._pending: dict[bytes, tuple[int, int]] = {}
        self.acknowledged: set[bytes] = set()
        self._next_value = 0
        self.crashes = self.partitions = 0
        self.snapshot_every = self.rng.choice(config.snapshot_every)
        self.snapshots_installed = 0

    # -- running -------------------------------------------------------------------

    def run(self) -> SimulationResult:
        for node in self.nodes.values():
            self._start(node)
        self._at(self.rng.randrange(self.config.append_every_ms), self._client_append)
        self._at(self.rng.randrange(self.config.crash_every_ms), self._crash_someone)
        self._at(self.rng.randrange(self.config.partition_every_ms), self._cut_network)
        self._run_until(self.config.fault_ms)
        self._heal_everything()
        self._check_liveness()
        self._check_acknowledged()
        return SimulationResult(self.seed, self.events, len(self.committed_log), len(self.acknowledged),
                                len(self.leader_of_epoch), self.crashes, self.partitions, self.snapshots_installed)

    def _at(self, time: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, action))

    def _run_until(self, end: int, done: Callable[[], bool] = lambda: False) -> bool:
        while self._queue and self._queue[0][0] <= end:
            time, _, action = heapq.heappop(self._queue)
            self.now = max(self.now, time)
            self.events += 1
            action()
            if done():
                return True
        self.now = max(self.now, end)
        return done()

    def fail(self, message: str) -> None:
        raise Violation(f"seed {self.seed}, t={self.now} ms: {message} "
                        f"(replay: python benchmarks/raft_simulation.py --seed {self.seed})")

    # -- nodes -----------------------------------------------------------------------

    def _start(self, node: Node) -> None:
        node.core = self.make_core(node.node_id, self.voter_ids, node.disk.copy_of_log(), node.disk.state, self.config.raft,
                                   random.Random(self.rng.random()), snapshot=node.disk.snapshot)
        node.checked_up_to = node.disk.log.start_offset
        node.tick_at = None
        self._carry_out(node, node.core.start(self.now))

    def _carry_out(self, node: Node, output: Output) -> None:
        """Does what an Output says, in its order, and checks the invariants it touches."""
        core = node.core
        assert core is not None
        if output.state is not None:
            node.disk.state = output.state
        for op in output.log:
            if isinstance(op, Truncate | DeleteBefore):
                if isinstance(op, Truncate) and op.offset < node.checked_up_to:
                    self.fail(f"node {node.node_id} truncated to {op.offset}, below its high watermark {node.checked_up_to}")
                if not node.disk.log.is_batch_boundary(op.offset):
                    self.fail(f"node {node.node_id}: {op} falls inside a batch of its log")
            node.disk.apply_op(op)
        view, durable = core.log, node.disk.log
        if (view.start_offset, view.entries, view.batch_starts) != (durable.start_offset, durable.entries, durable.batch_starts):
            self.fail(f"node {node.node_id}: its log view and its durable log differ")
        for op in output.log:
            if isinstance(op, InstallSnapshot):
                self._check_snapshot(node, op.snapshot)
        for destination, message in output.send:
            self._transmit(node.node_id, destination, message)
        if core.role is Role.LEADER:
            leader = self.leader_of_epoch.setdefault(core.epoch, node.node_id)
            if leader != node.node_id:
                self.fail(f"two leaders in epoch {core.epoch}: {leader} and {node.node_id}")
        if output.high_watermark is not None:
            if output.high_watermark < node.checked_up_to:
                self.fail(f"node {node.node_id}: high watermark went back from {node.checked_up_to} to {output.high_watermark}")
            self._check_committed(node, output.high_watermark)
        for offset, value in output.committed:
            if self._pending.get(value) == (node.node_id, offset):
                del self._pending[value]
                self.acknowledged.add(value)
        self._maybe_take_snapshot(node)
        self._schedule_tick(node)

    def _state_up_to(self, end_offset: int) -> bytes:
        """The simulated state machine's state: the committed values, in order."""
        return b",".join(e.value for e in self.committed_log[:end_offset] if not e.control)

    def _maybe_take_snapshot(self, node: Node) -> None:
        core = node.core
        assert core is not None
        last = core.snapshot.snapshot_id.offset if core.snapshot else 0
        if self.snapshot_every is None or node.checked_up_to - last < self.snapshot_every:
            return
        end = node.checked_up_to
        node.disk.apply(core.take_snapshot(end, self._state_up_to(end)))
        node.disk.apply(core.delete_log_before(end))

    def _check_snapshot(self, node: Node, snapshot: Snapshot) -> None:
        end = snapshot.snapshot_id.offset
        if end > len(self.committed_log) or snapshot.data != self._state_up_to(end):
            self.fail(f"node {node.node_id} installed a snapshot ending at {end} that is not the committed state")
        if end > 0 and self.committed_log[end - 1].epoch != snapshot.snapshot_id.epoch:
            self.fail(f"node {node.node_id} installed snapshot {snapshot.snapshot_id} with the wrong epoch")
        self.snapshots_installed += 1
        node.checked_up_to = max(node.checked_up_to, end)

    def _check_committed(self, node: Node, high_watermark: int) -> None:
        core = node.core
        assert core is not None
        for offset in range(node.checked_up_to, high_watermark):
            entry, batch_start = core.log.entry(offset), core.log.is_batch_boundary(offset)
            if offset < len(self.committed_log):
                if self.committed_log[offset] != entry:
                    self.fail(f"node {node.node_id} committed {entry} at {offset}, "
                              f"where {self.committed_log[offset]} was committed before")
                if self.committed_batch_starts[offset] != batch_start:
                    self.fail(f"node {node.node_id}: its batches differ from the leader's at offset {offset}")
            else:
                self.committed_log.append(entry)
                self.committed_batch_starts.append(batch_start)
        node.checked_up_to = high_watermark

    def _schedule_tick(self, node: Node) -> None:
        assert node.core is not None
        deadline = node.core.next_deadline()
        if deadline is None or deadline == node.tick_at:
            return
        node.tick_at = deadline
        core = node.core

        def tick() -> None:
            if node.core is core and node.tick_at == deadline:
                node.tick_at = None
                self._carry_out(node, core.tick(max(self.now, deadline)))

        self._at(max(deadline, self.now), tick)

    # -- the network -----------------------------------------------------------------

    def _transmit(self, source: int, destination: int, message: Message) -> None:
        copies = 0 if self.rng.random() < self.config.drop else 1
        if copies and self.rng.random() < self.config.duplicate:
            copies = 2
        for _ in range(copies):
            self._at(self.now + 1 + self.rng.randrange(self.config.max_delay_ms),
                     lambda: self._deliver(source, destination, message))

    def _deliver(self, source: int, destination: int, message: Message) -> None:
        node = self.nodes[destination]
        if node.core is None or frozenset((source, destination)) in self.cut:
            return
        self._carry_out(node, node.core.receive(self.now, source, message))

    # -- the client and the faults -----------------------------------------------

    def _client_append(self) -> None:
        leaders = [n for n in self.nodes.values() if n.core is not None and n.core.role is Role.LEADER]
        if leaders:
            node = self.rng.choice(leaders)
            assert node.core is not None
            values = [self._new_value() for _ in range(self.rng.randrange(1, 4))]
            try:
                last, output = node.core.append(self.now, values)
            except NotLeader:
                pass
            else:
                for i, value in enumerate(values):
                    self._pending[value] = (node.node_id, last - len(values) + 1 + i)
                self._carry_out(node, output)
        if self.now < self.config.fault_ms:
            self._at(self.now + 1 + self.rng.randrange(2 * self.config.append_every_ms), self._client_append)

    def _new_value(self) -> bytes:
        self._next_value += 1
        return b"v%d" % self._next_value

    def _crash_someone(self) -> None:
        running = [n for n in self.nodes.values() if n.core is not None]
        if running:
            node = self.rng.choice(running)
            node.core = None  # everything not on its Disk is gone
            self.crashes += 1
            self._at(self.now + 1 + self.rng.randrange(3_000), lambda: self._restart(node))
        if self.now < self.config.fault_ms:
            self._at(self.now + 1 + self.rng.randrange(2 * self.config.crash_every_ms), self._crash_someone)

    def _restart(self, node: Node) -> None:
        if node.core is None:
            self._start(node)

    def _cut_network(self) -> None:
        ids = list(self.nodes)
        self.rng.shuffle(ids)
        split = self.rng.randrange(1, len(ids))
        self.cut = {frozenset((a, b)) for a in ids[:split] for b in ids[split:]}
        self.partitions += 1
        self._at(self.now + 1 + self.rng.randrange(5_000), self._heal_network)
        if self.now < self.config.fault_ms:
            self._at(self.now + 1 + self.rng.randrange(2 * self.config.partition_every_ms), self._cut_network)

    def _heal_network(self) -> None:
        self.cut = set()

    def _heal_everything(self) -> None:
        self.cut = set()
        self.config = SimulationConfig(**{**self.config.__dict__, "drop": 0.0, "duplicate": 0.0})
        for node in self.nodes.values():
            if node.core is None:
                self._start(node)

    # -- the end -----------------------------------------------------------------------

    def _check_liveness(self) -> None:
        """The healed quorum commits a new record on every node. A record appended to a
        leader that loses its office before committing it may be lost, as Raft allows:
        then it is appended again to whichever leader there is."""
        attempt: dict[str, Any] = {}

        def committed_everywhere() -> bool:
            node = attempt.get("node")
            if node is not None and (node.core is not attempt["core"] or node.core.role is not Role.LEADER):
                attempt.clear()
            if not attempt:
                leaders = [n for n in self.nodes.values() if n.core is not None and n.core.role is Role.LEADER]
                if not leaders:
                    return False
                node = max(leaders, key=lambda n: n.core.epoch if n.core else -1)
                assert node.core is not None
                last, output = node.core.append(self.now, [b"final-%d" % self.events])
                attempt.update(node=node, core=node.core, offset=last)
                self._carry_out(node, output)
            return all(n.core is not None and (n.core.high_watermark or 0) > attempt["offset"] for n in self.nodes.values())

        if not self._run_until(self.now + self.config.settle_ms, committed_everywhere):
            roles = {n.node_id: (n.core.role.value, n.core.epoch) if n.core else None for n in self.nodes.values()}
            self.fail(f"no record committed on every node within {self.config.settle_ms} ms of healing: {roles}")

    def _check_acknowledged(self) -> None:
        values = [e.value for e in self.committed_log if not e.control]
        if len(values) != len(set(values)):
            self.fail("a record is committed twice")
        lost = self.acknowledged - set(values)
        if lost:
            self.fail(f"{len(lost)} acknowledged record(s) lost, e.g. {sorted(lost)[:3]}")

