"""KIP-595 Raft as a plain object: messages and clock ticks in, what to do out.

`RaftCore` never performs I/O. Each call returns an `Output` that the I/O shell carries
out in field order: persist the quorum state, make the log operations durable, send
the messages, then hand the newly committed records to the state machine. Nothing of
a later field may happen before an earlier one is durable; that order is what makes a
granted vote or a fetched offset a promise.

What it implements, as Apache Kafka's KafkaRaftClient does:
- pull replication: followers and observers Fetch from the leader; the leader answers
  a fetch that names an offset and epoch its log does not have with the diverging
  epoch, and the follower truncates to it;
- the high watermark advances when a majority of voters has fetched past an offset,
  and only once the leader's own LeaderChange record (its epoch's first) is committed;
- elections with pre-vote (KIP-996) so a node cut off from the leader cannot disturb
  the quorum when it returns, randomized election timeouts, exponential backoff;
- check-quorum: a leader that has not been fetched from by a majority within 1.5 fetch
  timeouts resigns, so an isolated leader stops acting as one;
- BeginQuorumEpoch to announce a leader and EndQuorumEpoch for a graceful resignation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from kio.schema.errors import ErrorCode

from . import follower
from .log import OffsetAndEpoch, RaftLog
from .messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    DivergingEpoch,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Entry,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Message,
    SnapshotId,
    VoteRequest,
    VoteResponse,
)
from .output import (
    NO_LEADER,
    Append,
    DeleteBefore,
    NotLeader,
    Output,
    QuorumState,
    RaftConfig,
    Role,
    SaveSnapshot,
    Snapshot,
)
from .replicas import Replicas


class RaftCore:
    def __init__(
        self,
        node_id: int,
        voters: Sequence[int],
        log: RaftLog,
        state: QuorumState,
        config: RaftConfig,
        rng: random.Random,
        snapshot: Snapshot | None = None,
    ) -> None:
        self.node_id = node_id
        self.snapshot = snapshot
        self.voters = frozenset(voters)
        self.log = log
        self.config = config
        self.rng = rng
        self.epoch = state.epoch
        self.leader_id = state.leader_id
        self.voted_id = state.voted_id
        self._persisted = state
        self.role = Role.UNATTACHED
        self.high_watermark: int | None = None
        self._delivered = log.start_offset
        self._correlation = 0
        self._out = Output()
        # Deadlines in milliseconds of the clock the shell passes in; None when not running.
        self._election_deadline: int | None = None
        self._fetch_deadline: int | None = None
        self._check_quorum_deadline: int | None = None
        self._election_retries = 0
        self._heard_from_leader = False
        # Follower and observer: the fetch in flight (correlation, deadline, destination), or when to send the next.
        self._inflight_fetch: tuple[int, int, int] | None = None
        # Observer: the voters that left its last fetch to them unanswered (gone, or cut off).
        self._unanswered: set[int] = set()
        # The leader's snapshot being fetched, and the bytes so far.
        self._snapshot_download: tuple[SnapshotId, bytearray] | None = None
        self._next_fetch_ms: int | None = None
        # Prospective and candidate: the requests of this round, and the answers.
        self._vote_round: set[int] = set()
        self._granted: set[int] = set()
        self._rejected: set[int] = set()
        # Leader.
        self._epoch_start_offset = -1
        self.replicas = Replicas(node_id, self.voters)
        self._announce_deadline: int | None = None
        self._parked: dict[int, tuple[FetchRequest, int]] = {}
        # Fetches parked when this node stopped leading: answered once the new epoch and
        # leader are known, at the end of the call that ended the leadership.
        self._orphaned: list[tuple[int, FetchRequest]] = []

    # -- what the shell calls --------------------------------------------------

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voters

    @property
    def majority(self) -> int:
        return len(self.voters) // 2 + 1

    def start(self, now: int) -> Output:
        """Takes up the role the persisted state implies, as Kafka does on start-up."""
        self._out = Output()
        if self.leader_id == self.node_id:
            # A leader before the restart cannot know what it missed: it resigns its epoch.
            self._become_resigned(now)
        elif self.leader_id != NO_LEADER:
            self._become_follower(now, self.epoch, self.leader_id)
        else:
            self._become_unattached(now, self.epoch, self.voted_id)
        self._on_timers(now)  # a single voter elects itself at once
        return self._out

    def tick(self, now: int) -> Output:
        self._out = Output()
        self._on_timers(now)
        return self._finish()

    def receive(self, now: int, source: int, message: Message) -> Output:
        self._out = Output()
        match message:
            case VoteRequest():
                self._on_vote_request(now, source, message)
            case VoteResponse():
                self._on_vote_response(now, source, message)
            case BeginQuorumEpochRequest():
                self._on_begin_quorum_epoch(now, source, message)
            case BeginQuorumEpochResponse():
                if not self._maybe_newer_epoch(now, message.epoch, message.leader_id):
                    self.replicas.unannounced.discard(source)
            case EndQuorumEpochRequest():
                self._on_end_quorum_epoch(now, source, message)
            case EndQuorumEpochResponse():
                self._maybe_newer_epoch(now, message.epoch, message.leader_id)
            case FetchRequest():
                self._on_fetch_request(now, source, message)
            case FetchResponse():
                follower.on_fetch_response(self, now, message)
            case FetchSnapshotRequest():
                self._on_fetch_snapshot_request(now, source, message)
            case FetchSnapshotResponse():
                follower.on_fetch_snapshot_response(self, now, message)
        return self._finish()

    def append(self, now: int, values: Sequence[bytes]) -> tuple[int, Output]:
        """Appends records on the leader; returns the offset of the last one. They are
        committed when a later Output's high watermark passes it."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.epoch, self.leader_id)
        if not values:
            raise ValueError("nothing to append")
        self._out = Output()
        # One call, one batch: the batch followers store unchanged (see log.py).
        last = self._append_as_leader([Entry(self.epoch, v) for v in values])
        self._maybe_advance_high_watermark(now)
        self._complete_parked_fetches()
        return last, self._out

    def take_snapshot(self, end_offset: int, data: bytes) -> Output:
        """The state machine's state up to end_offset (committed, so not above the high
        watermark), to be saved and later sent to followers that fall behind the log start."""
        snapshot_id = self.snapshot_id_at(end_offset)
        self._out = Output()
        self.snapshot = Snapshot(snapshot_id, data)
        self._out.log.append(SaveSnapshot(self.snapshot))
        return self._out

    def snapshot_id_at(self, end_offset: int) -> SnapshotId:
        """The id of a snapshot ending at end_offset: its epoch is that of the last record it
        covers (the shell stamps it on the snapshot file's batches)."""
        if not self.log.start_offset <= end_offset <= (self.high_watermark or 0):
            raise ValueError(f"a snapshot must end in [{self.log.start_offset}, {self.high_watermark}], not at {end_offset}")
        if not self.log.is_batch_boundary(end_offset):
            # The log will start at the snapshot's end: that must not cut a batch (see log.py).
            raise ValueError(f"a snapshot must end at a batch boundary, not inside the batch holding {end_offset}")
        epoch = self.log.entry(end_offset - 1).epoch if end_offset > self.log.start_offset else self.log.start_epoch
        return SnapshotId(end_offset, epoch)

    def delete_log_before(self, offset: int) -> Output:
        """Lets the log start at offset, the end of a snapshot kept on disk, no newer than the
        newest (retention decides which, and when)."""
        if self.snapshot is None or offset > self.snapshot.snapshot_id.offset:
            raise ValueError(f"no snapshot covers the log below {offset}")
        self._out = Output()
        if offset > self.log.start_offset:
            self.log.delete_before(offset)
            self._out.log.append(DeleteBefore(offset))
        return self._out

    def resign(self, now: int) -> Output:
        """Gives up leadership gracefully (controlled shutdown): the voters are told to elect."""
        self._out = Output()
        if self.role is Role.LEADER:
            self._become_resigned(now)
        return self._finish()

    def next_deadline(self) -> int | None:
        """When `tick` next has something to do."""
        deadlines = [
            self._election_deadline, self._fetch_deadline, self._check_quorum_deadline,
            self._next_fetch_ms, self._announce_deadline,
            self._inflight_fetch[1] if self._inflight_fetch else None,
            *(deadline for _, deadline in self._parked.values()),
        ]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    # -- output ------------------------------------------------------------------

    def _finish(self) -> Output:
        """The Output of a call that may have ended this node's leadership. The shell answers
        each connection in request order, so a parked fetch left unanswered would hold up
        every later answer on it: as Kafka, each is told who leads now."""
        for replica, request in self._orphaned:
            self._send(replica, self._fetch_error(request, ErrorCode.not_leader_or_follower))
        self._orphaned.clear()
        return self._out

    def _send(self, destination: int, message: Message) -> None:
        self._out.send.append((destination, message))

    def _next_correlation(self) -> int:
        self._correlation += 1
        return self._correlation

    def _persist(self) -> None:
        state = QuorumState(self.epoch, self.leader_id, self.voted_id)
        if state != self._persisted:
            self._persisted = state
            self._out.state = state

    # -- transitions -------------------------------------------------------------

    def _reset_role(self, role: Role) -> None:
        self.role = role
        self._election_deadline = self._fetch_deadline = self._check_quorum_deadline = None
        self._inflight_fetch = None
        self._snapshot_download = None
        self._next_fetch_ms = None
        self._vote_round.clear()
        self._granted.clear()
        self._rejected.clear()
        self._announce_deadline = None
        self._orphaned.extend((replica, request) for replica, (request, _) in self._parked.items())
        self._parked.clear()
        self.replicas.clear()

    def _randomized_election_timeout(self) -> int:
        return self.config.election_timeout_ms + self.rng.randrange(self.config.election_timeout_ms)

    def _become_unattached(self, now: int, epoch: int, voted_id: int = NO_LEADER, timeout_ms: int | None = None) -> None:
        # A voter keeps the leader it knows of in this epoch: forgetting it would let a stale
        # candidate of the same epoch win its vote, and the epoch would have two leaders.
        # An observer forgets it, to look for the leader afresh.
        if epoch != self.epoch or not self.is_voter:
            self.leader_id = NO_LEADER
        self._reset_role(Role.UNATTACHED)
        self.epoch, self.voted_id = epoch, voted_id
        self._persist()
        if self.voters == {self.node_id}:
            self._election_deadline = now  # the only voter has nobody to wait for
        elif self.is_voter:
            self._election_deadline = now + (timeout_ms if timeout_ms is not None else self._randomized_election_timeout())
        else:
            self._next_fetch_ms = now  # an observer looks for the leader by asking a voter

    def _become_follower(self, now: int, epoch: int, leader_id: int) -> None:
        if epoch != self.epoch:
            self.voted_id = NO_LEADER
        self._reset_role(Role.FOLLOWER)
        self.epoch, self.leader_id = epoch, leader_id
        self._persist()
        self._election_retries = 0
        self._heard_from_leader = False
        self._fetch_deadline = now + self.config.fetch_timeout_ms
        follower.send_fetch(self, now)

    def _become_prospective(self, now: int) -> None:
        """KIP-996: ask for pre-votes before raising the epoch, so a node that cannot win
        (cut off, or with a stale log) does not force the others into a new epoch."""
        self._reset_role(Role.PROSPECTIVE)
        self._start_vote_round(now, pre_vote=True)

    def _become_candidate(self, now: int) -> None:
        self._reset_role(Role.CANDIDATE)
        self.epoch, self.leader_id, self.voted_id = self.epoch + 1, NO_LEADER, self.node_id
        self._persist()
        self._start_vote_round(now, pre_vote=False)

    def _start_vote_round(self, now: int, *, pre_vote: bool) -> None:
        self._granted.add(self.node_id)
        self._election_deadline = now + self._randomized_election_timeout()
        # A pre-vote names the prospective's current epoch (Kafka's replicaEpoch): a voter stranded
        # in a higher epoch than the leader's thereby brings the quorum up to it.
        for voter in sorted(self.voters - {self.node_id}):
            correlation = self._next_correlation()
            self._vote_round.add(correlation)
            request = VoteRequest(correlation, self.epoch, self.node_id, self.log.last_epoch, self.log.end_offset, pre_vote)
            self._send(voter, request)
        self._maybe_won_vote_round(now)

    def _become_leader(self, now: int) -> None:
        self._reset_role(Role.LEADER)
        self.leader_id = self.node_id
        self._persist()
        self._election_retries = 0
        self.high_watermark = None  # unknown until this epoch's first record is committed
        self.replicas.start_epoch()
        # Kafka's leader writes a LeaderChangeMessage first; committing it commits all before it.
        self._epoch_start_offset = self._append_as_leader([Entry(self.epoch, b"", control=True)])
        if len(self.voters) > 1:
            self._check_quorum_deadline = now + self._check_quorum_timeout()
        self._announce(now)
        self._maybe_advance_high_watermark(now)

    def _become_resigned(self, now: int) -> None:
        # The most caught-up followers first: they are the best successors.
        successors = self.replicas.most_caught_up_first()
        self._reset_role(Role.RESIGNED)
        self.leader_id = self.node_id
        self._persist()
        for voter in successors:
            self._send(voter, EndQuorumEpochRequest(self._next_correlation(), self.epoch, self.node_id, successors))
        self._election_deadline = now + (0 if self.voters == {self.node_id} else self._randomized_election_timeout())

    def _maybe_newer_epoch(self, now: int, epoch: int, leader_id: int) -> bool:
        """Every message names its sender's epoch: a newer one ends our role in ours."""
        if epoch > self.epoch:
            if leader_id >= 0 and leader_id != self.node_id:
                self._become_follower(now, epoch, leader_id)
            else:
                self._become_unattached(now, epoch)
            return True
        if epoch == self.epoch and leader_id >= 0 and self.leader_id == NO_LEADER and leader_id != self.node_id:
            self._become_follower(now, epoch, leader_id)
            return True
        return False

    def _check_quorum_timeout(self) -> int:
        return self.config.fetch_timeout_ms * 3 // 2

    # -- timers ------------------------------------------------------------------

    def _on_timers(self, now: int) -> None:
        if self._election_deadline is not None and now >= self._election_deadline:
            if self.role in (Role.PROSPECTIVE, Role.CANDIDATE):
                self._back_off(now)
            else:
                self._become_prospective(now)
            return
        if self._fetch_deadline is not None and now >= self._fetch_deadline:
            # No word from the leader within the fetch timeout: a voter stands for election,
            # an observer looks for the leader again.
            if self.is_voter:
                self._become_prospective(now)
            else:
                self._unanswered.add(self.leader_id)
                self._become_unattached(now, self.epoch)
            return
        if self._check_quorum_deadline is not None and now >= self._check_quorum_deadline:
            if self.replicas.check_quorum(self.majority):
                self._check_quorum_deadline = now + self._check_quorum_timeout()
            else:
                self._become_resigned(now)
                return
        if self._inflight_fetch is not None and now >= self._inflight_fetch[1]:
            follower.on_fetch_timeout(self, now)
        if self._next_fetch_ms is not None and now >= self._next_fetch_ms:
            follower.send_fetch(self, now)
        if self._announce_deadline is not None and now >= self._announce_deadline:
            self._announce(now)
        expired = [r for r, (_, deadline) in self._parked.items() if now >= deadline]
        for replica in expired:
            request, _ = self._parked.pop(replica)
            self._send(replica, self._fetch_response(request))

    def _back_off(self, now: int) -> None:
        """A lost round, or one with no answer by its deadline. With a leader known in this epoch
        the node follows it again (KIP-996); otherwise it waits a random, growing while."""
        if self.leader_id not in (NO_LEADER, self.node_id):
            self._become_follower(now, self.epoch, self.leader_id)
            return
        self._election_retries += 1
        # Kafka's binary exponential election backoff, with its 50 ms base.
        backoff = min(50 * self.rng.randrange(2 << min(20, self._election_retries - 1)), self.config.election_backoff_max_ms)
        self._become_unattached(now, self.epoch, self.voted_id, timeout_ms=backoff)

    def _announce(self, now: int) -> None:
        for voter in sorted(self.replicas.unannounced):
            self._send(voter, BeginQuorumEpochRequest(self._next_correlation(), self.epoch, self.node_id))
        self._announce_deadline = now + self.config.request_timeout_ms if self.replicas.unannounced else None

    # -- elections ---------------------------------------------------------------

    def _on_vote_request(self, now: int, source: int, request: VoteRequest) -> None:
        if request.epoch < self.epoch:
            self._send(source, VoteResponse(request.correlation, ErrorCode.fenced_leader_epoch, self.epoch,
                                            self.leader_id, False, request.pre_vote))
            return
        # As Kafka: a higher epoch in any vote request, a pre-vote's too, ends our role in ours.
        if request.epoch > self.epoch:
            self._become_unattached(now, request.epoch)
        granted = self._grants_pre_vote(request) if request.pre_vote else self._grants_vote(request)
        if granted and not request.pre_vote:
            self._become_unattached(now, self.epoch, request.candidate_id)
        response = VoteResponse(request.correlation, ErrorCode.none, self.epoch, self.leader_id, granted, request.pre_vote)
        self._send(source, response)

    def _grants_vote(self, request: VoteRequest) -> bool:
        return (
            self.is_voter
            and self.leader_id == NO_LEADER
            and self.voted_id in (NO_LEADER, request.candidate_id)
            and self.log.is_up_to_date(request.last_epoch, request.last_offset)
        )

    def _grants_pre_vote(self, request: VoteRequest) -> bool:
        # A follower that heard from its leader (within the fetch timeout, or it would have
        # left the follower role) refuses: the leader is alive. A pre-vote promises nothing,
        # so an earlier vote in this epoch does not stand in its way.
        leader_alive = self.role in (Role.LEADER, Role.RESIGNED) or (self.role is Role.FOLLOWER and self._heard_from_leader)
        return self.is_voter and not leader_alive and self.log.is_up_to_date(request.last_epoch, request.last_offset)

    def _on_vote_response(self, now: int, source: int, response: VoteResponse) -> None:
        if self._maybe_newer_epoch(now, response.epoch, response.leader_id):
            return
        if response.correlation not in self._vote_round:
            return
        self._vote_round.discard(response.correlation)
        (self._granted if response.granted else self._rejected).add(source)
        self._maybe_won_vote_round(now)

    def _maybe_won_vote_round(self, now: int) -> None:
        if len(self._granted) >= self.majority:
            if self.role is Role.PROSPECTIVE:
                self._become_candidate(now)
            else:
                self._become_leader(now)
        elif len(self._rejected) > len(self.voters) - self.majority:
            self._back_off(now)

    def _on_begin_quorum_epoch(self, now: int, source: int, request: BeginQuorumEpochRequest) -> None:
        if request.epoch < self.epoch:
            fenced = BeginQuorumEpochResponse(request.correlation, ErrorCode.fenced_leader_epoch, self.epoch, self.leader_id)
            self._send(source, fenced)
            return
        if request.epoch > self.epoch or self.leader_id == NO_LEADER:
            self._become_follower(now, request.epoch, request.leader_id)
        self._send(source, BeginQuorumEpochResponse(request.correlation, ErrorCode.none, self.epoch, self.leader_id))

    def _on_end_quorum_epoch(self, now: int, source: int, request: EndQuorumEpochRequest) -> None:
        if request.epoch < self.epoch:
            fenced = EndQuorumEpochResponse(request.correlation, ErrorCode.fenced_leader_epoch, self.epoch, self.leader_id)
            self._send(source, fenced)
            return
        if request.epoch > self.epoch:
            self._become_unattached(now, request.epoch)
        if self.role is Role.FOLLOWER and self.leader_id == request.leader_id:
            # The leader's preferred successors stand first; the others wait their turn.
            self._become_unattached(now, self.epoch, timeout_ms=self._successor_backoff(request.preferred_successors))
        self._send(source, EndQuorumEpochResponse(request.correlation, ErrorCode.none, self.epoch, self.leader_id))

    # -- replication: the leader -------------------------------------------------

    def _successor_backoff(self, successors: tuple[int, ...]) -> int:
        """Kafka's strict exponential backoff by place among the preferred successors: the first
        stands at once, each next one waits twice as long, the unlisted the longest."""
        position = successors.index(self.node_id) if self.node_id in successors else -1
        longest = self.config.election_backoff_max_ms
        if position == 0:
            return 0
        if position < 0:
            return longest
        return min(longest, (longest >> (len(successors) - 1)) << (position - 1))

    def _append_as_leader(self, entries: list[Entry]) -> int:
        base = self.log.end_offset
        self.log.append(entries)
        self._out.log.append(Append(base, tuple(entries)))
        return self.log.end_offset - 1

    def _on_fetch_request(self, now: int, source: int, request: FetchRequest) -> None:
        older = self._parked.pop(source, None)
        if older is not None:
            # The replica gave up waiting on it (it timed out, or was lost on the way back): its
            # answer is of no use, but the newer one's waits behind it on the connection.
            self._send(source, self._fetch_response(older[0], empty=True))
        if self.role is not Role.LEADER:
            self._send(source, self._fetch_error(request, ErrorCode.not_leader_or_follower))
            return
        if request.epoch != self.epoch:
            error = ErrorCode.fenced_leader_epoch if request.epoch < self.epoch else ErrorCode.unknown_leader_epoch
            self._send(source, self._fetch_error(request, error))
            return
        if self.snapshot is not None and (
            request.fetch_offset < self.log.start_offset or request.last_fetched_epoch < self.log.start_epoch
        ):
            # What the follower lacks, or where it diverges, lies below the log start: it
            # must load the snapshot first (KIP-630).
            self._send(source, FetchResponse(request.correlation, ErrorCode.none, self.epoch, self.node_id,
                                             self._high_watermark_or_unknown(), self.log.start_offset,
                                             request.fetch_offset, snapshot_id=self.snapshot.snapshot_id))
            return
        known = self.log.end_offset_for_epoch(request.last_fetched_epoch)
        if known.epoch != request.last_fetched_epoch or known.offset < request.fetch_offset:
            self._send(source, self._fetch_response(request, diverging=known))
            return
        self.replicas.fetched_to(source, request.fetch_offset)
        self.replicas.heard_from(now, source)
        self._maybe_advance_high_watermark(now)
        # As Kafka: answered at once when there is data, when the replica asked not to wait,
        # or when it does not know the high watermark yet (this very fetch may have moved it).
        if (request.fetch_offset < self.log.end_offset or request.max_wait_ms <= 0
                or request.high_watermark < self._high_watermark_or_unknown()):
            self._send(source, self._fetch_response(request))
        else:
            self._parked[source] = (request, now + request.max_wait_ms)

    def _high_watermark_or_unknown(self) -> int:
        return self.high_watermark if self.high_watermark is not None else -1

    def _on_fetch_snapshot_request(self, now: int, source: int, request: FetchSnapshotRequest) -> None:
        snapshot = self.snapshot
        if self.role is not Role.LEADER:
            error = ErrorCode.not_leader_or_follower
        elif request.epoch != self.epoch:
            error = ErrorCode.fenced_leader_epoch if request.epoch < self.epoch else ErrorCode.unknown_leader_epoch
        elif snapshot is None or snapshot.snapshot_id != request.snapshot_id:
            error = ErrorCode.snapshot_not_found
        elif not 0 <= request.position <= len(snapshot.data):
            error = ErrorCode.position_out_of_range
        else:
            self.replicas.heard_from(now, source)
            chunk = snapshot.data[request.position:request.position + max(request.max_bytes, 1)]
            self._send(source, FetchSnapshotResponse(request.correlation, ErrorCode.none, self.epoch, self.node_id,
                                                     request.snapshot_id, len(snapshot.data), request.position, chunk))
            return
        self._send(source, FetchSnapshotResponse(request.correlation, error, self.epoch, self.leader_id,
                                                 request.snapshot_id, -1, request.position))

    def _fetch_error(self, request: FetchRequest, error: ErrorCode) -> FetchResponse:
        return FetchResponse(request.correlation, error, self.epoch, self.leader_id, -1, self.log.start_offset,
                             request.fetch_offset)

    def _fetch_response(self, request: FetchRequest, diverging: OffsetAndEpoch | None = None, *,
                        empty: bool = False) -> FetchResponse:
        hw = self._high_watermark_or_unknown()
        if diverging is not None:
            return FetchResponse(request.correlation, ErrorCode.none, self.epoch, self.node_id, hw, self.log.start_offset,
                                 request.fetch_offset, diverging=DivergingEpoch(diverging.epoch, diverging.offset))
        if empty:
            return FetchResponse(request.correlation, ErrorCode.none, self.epoch, self.node_id, hw, self.log.start_offset,
                                 request.fetch_offset)
        batches = self.log.read_batches(request.fetch_offset, self.config.max_fetch_entries, self.config.max_fetch_bytes)
        return FetchResponse(request.correlation, ErrorCode.none, self.epoch, self.node_id, hw, self.log.start_offset,
                             request.fetch_offset, batches)

    def _complete_parked_fetches(self) -> None:
        for replica, (request, _) in list(self._parked.items()):
            del self._parked[replica]
            self._send(replica, self._fetch_response(request))

    def _maybe_advance_high_watermark(self, now: int) -> None:
        candidate = self.replicas.majority_end_offset(self.log.end_offset, self.majority)
        if candidate > self._epoch_start_offset and (self.high_watermark is None or candidate > self.high_watermark):
            self._set_high_watermark(candidate)
            # Followers learn the high watermark from fetch responses: answer the waiting ones.
            self._complete_parked_fetches()

    def _set_high_watermark(self, high_watermark: int) -> None:
        self.high_watermark = high_watermark
        self._out.high_watermark = high_watermark
        for offset, entry in self.log.values_between(self._delivered, high_watermark):
            if not entry.control:
                self._out.committed.append((offset, entry.value))
        self._delivered = max(self._delivered, high_watermark)
