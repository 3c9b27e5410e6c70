"""The metadata quorum of a cluster: KRaft over the Raft shell, seen as the metadata layer
and the controller see a quorum. The active controller is the Raft leader once its
epoch's first record is committed: by then every record of earlier epochs has been
handed to the state machine, so decisions are made on the whole image."""

from __future__ import annotations

from ..broker.controller_service import NotController
from ..clock import Clock
from ..raft.core import Role
from ..raft.local import Appended
from ..raft.output import NO_LEADER, CommitListener, NotLeader
from .quorum import QuorumServer


class RaftMetadataQuorum:
    def __init__(self, server: QuorumServer, clock: Clock) -> None:
        self.server = server
        self.clock = clock

    @property
    def on_commit(self) -> CommitListener | None:
        return self.server.on_commit

    @on_commit.setter
    def on_commit(self, listener: CommitListener | None) -> None:
        self.server.on_commit = listener

    @property
    def end_offset(self) -> int:
        core = self.server.core
        return core.log.end_offset if core is not None else 0

    @property
    def leader_id(self) -> int:
        core = self.server.core
        return core.leader_id if core is not None else NO_LEADER

    @property
    def leader_epoch(self) -> int:
        core = self.server.core
        return core.epoch if core is not None else -1

    def is_caught_up_leader(self) -> bool:
        core = self.server.core
        # A leader's high watermark is unknown until its LeaderChange record commits.
        return core is not None and core.role is Role.LEADER and core.high_watermark is not None

    def knows_high_watermark(self) -> bool:
        """Whether this node has learnt what is committed: then its image is the cluster's, up to there."""
        core = self.server.core
        return core is not None and core.high_watermark is not None

    async def append(self, values: list[bytes]) -> Appended:
        try:
            last = await self.server.append(values)
        except NotLeader as e:
            raise NotController(e.leader_id) from e
        return Appended(last, self.clock.wall_ms(), sum(len(v) for v in values))
