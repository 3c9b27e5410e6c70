"""The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups),
with the semantics of the classic-group part of Kafka's GroupMetadataManager.

A request may be answered later, in the Result of another call or of a timer: a JoinGroup
is parked until the rebalance completes, a follower's SyncGroup until the leader's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from ..clock import Clock
from ..config import BrokerConfig
from ..wire.build import ms
from . import group_records
from .classic_group import ClassicGroup, ClassicGroupMember, GroupError, GroupState, Protocols, Waiter, protocol_names
from .consumer_group import ConsumerGroup
from .group_refusals import AUTHORIZED_OPERATIONS_OMITTED
from .shard import GROUP_AUTHORIZED_OPERATIONS, GroupCoordinatorShard

# Kafka's internal default of how long a new member's parked JoinGroup may wait.
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000


@dataclass(frozen=True)
class _Join:
    """A JoinGroup request, normalized across versions."""

    waiter: Waiter
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    protocol_type: str
    protocols: Protocols
    session_timeout_ms: int
    rebalance_timeout_ms: int


def _join_response(
    version: int, error: ErrorCode, *, member_id: str, generation_id: int = -1, protocol_type: str | None = None,
    protocol_name: str | None = None, leader: str = "", skip_assignment: bool = False,
    members: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    # Before v7 the protocol name is not nullable; from v7 on, "no protocol" is null.
    if version < 7 and protocol_name is None:
        protocol_name = ""
    elif version >= 7 and protocol_name == "":
        protocol_name = None
    return {
        "throttle_time": 0, "error_code": error, "generation_id": generation_id, "protocol_type": protocol_type,
        "protocol_name": protocol_name, "leader": leader, "skip_assignment": skip_assignment,
        "member_id": member_id, "members": list(members),
    }


def _sync_response(
    error: ErrorCode, protocol_type: str | None = None, protocol_name: str | None = None, assignment: bytes = b"",
) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": error, "protocol_type": protocol_type, "protocol_name": protocol_name,
            "assignment": assignment}


def _leave_response(version: int, error: ErrorCode, members: list[dict[str, Any]]) -> dict[str, Any]:
    if version <= 2 and error is ErrorCode.none:
        # One member per request before v3: its error is the response's.
        error = next((m["error_code"] for m in members if m["error_code"] is not ErrorCode.none), ErrorCode.none)
    return {"throttle_time": 0, "error_code": error, "members": members}


class ClassicGroupProtocol:
    def __init__(self, shard: GroupCoordinatorShard, config: BrokerConfig, clock: Clock) -> None:
        self._shard = shard
        self._clock = clock
        self._initial_rebalance_delay_ms = config.int("group.initial.rebalance.delay.ms")
        self._min_session_timeout_ms = config.int("group.min.session.timeout.ms")
        self._max_session_timeout_ms = config.int("group.max.session.timeout.ms")
        self._max_group_size = config.int("group.max.size")

    def start_sessions(self, group: ClassicGroup) -> None:
        """A loaded group's members' sessions start now."""
        for member in group.members.values():
            self.schedule_heartbeat(group.group_id, member.member_id, member.session_timeout_ms)
        if len(group.members) > self._max_group_size:
            # group.max.size was lowered while the group was away: let its members go.
            self._prepare_rebalance(group)

    # JoinGroup

    def join_group(self, version: int, client_id: str, client_host: str, request: Any, token: object) -> None:
        session_timeout_ms = ms(request.session_timeout)
        join = _Join(
            waiter=Waiter(token, version),
            group_id=request.group_id,
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            client_id=client_id,
            # Kafka reports a client's address as Java's InetAddress prints it.
            client_host=f"/{client_host}",
            protocol_type=request.protocol_type,
            protocols=tuple((p.name, bytes(p.metadata)) for p in request.protocols),
            session_timeout_ms=session_timeout_ms,
            # v0 has no rebalance timeout: the session timeout serves as both.
            rebalance_timeout_ms=ms(getattr(request, "rebalance_timeout", request.session_timeout)),
        )
        if not join.group_id:
            self._reply_join(join.waiter, ErrorCode.invalid_group_id, member_id=join.member_id)
            return
        if not self._min_session_timeout_ms <= session_timeout_ms <= self._max_session_timeout_ms:
            self._reply_join(join.waiter, ErrorCode.invalid_session_timeout, member_id=join.member_id)
            return
        group = self._shard.groups.get(join.group_id)
        if isinstance(group, ConsumerGroup):
            if not group.is_empty():
                # Kafka would take the member into the consumer group (an online migration):
                # not supported here, the member is refused.
                self._reply_join(join.waiter, ErrorCode.inconsistent_group_protocol, member_id=join.member_id)
                return
            # An empty consumer group gives way to the classic group.
            self._shard.apply(join.group_id, group_records.consumer_group_tombstones(join.group_id, []))
            group = None
        is_new_group = group is None
        if group is None:
            if join.member_id:
                self._reply_join(join.waiter, ErrorCode.unknown_member_id, member_id=join.member_id)
                return
            group = self._shard.create_group(join.group_id)
        records_before = len(self._shard.out.records)
        if not group.accepts_joining_member(join.member_id, self._max_group_size):
            self._remove_member(group, join.member_id)
            self._reply_join(join.waiter, ErrorCode.group_max_size_reached, member_id="")
        elif not join.member_id:
            self._join_new_member(group, join)
        else:
            self._join_existing_member(group, join)
        if is_new_group and len(self._shard.out.records) == records_before:
            # A group that nothing else recorded yet is recorded as empty, so it exists in the log.
            self._shard.write(group.group_id, *group_records.empty_group_metadata(group))

    def _join_new_member(self, group: ClassicGroup, join: _Join) -> None:
        if not group.supports_protocols(join.protocol_type, protocol_names(join.protocols)):
            self._reply_join(join.waiter, ErrorCode.inconsistent_group_protocol, member_id="")
            return
        new_member_id = group.generate_member_id(join.client_id, join.group_instance_id)
        if join.group_instance_id is not None:
            existing_member_id = group.static_members.get(join.group_instance_id)
            if existing_member_id is not None:
                self._replace_static_member_then_rebalance_or_complete_join(group, join, existing_member_id, new_member_id)
            else:
                self._add_member_then_rebalance_or_complete_join(group, join, new_member_id)
        elif join.waiter.version >= 4:
            # The member must come back with this id; until then it is pending, and
            # expires like a member that stops heartbeating.
            group.add_pending_member(new_member_id)
            self.schedule_heartbeat(group.group_id, new_member_id, join.session_timeout_ms)
            self._reply_join(join.waiter, ErrorCode.member_id_required, member_id=new_member_id)
        else:
            self._add_member_then_rebalance_or_complete_join(group, join, new_member_id)

    def _join_existing_member(self, group: ClassicGroup, join: _Join) -> None:
        member_id = join.member_id
        if not group.supports_protocols(join.protocol_type, protocol_names(join.protocols)):
            self._reply_join(join.waiter, ErrorCode.inconsistent_group_protocol, member_id=member_id)
            return
        if member_id in group.pending_join_members:
            if join.group_instance_id is not None:
                # Pending members are dynamic by construction: Kafka fails such a request.
                self._reply_join(join.waiter, ErrorCode.unknown_server_error, member_id=member_id)
            else:
                self._add_member_then_rebalance_or_complete_join(group, join, member_id)
            return
        try:
            group.validate_member(member_id, join.group_instance_id)
        except GroupError as e:
            self._reply_join(join.waiter, e.code, member_id=member_id)
            return
        member = group.members[member_id]
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._update_member_then_rebalance_or_complete_join(group, member, join)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            if member.matches(join.protocols):
                # Most likely the member missed its JoinGroup response: send it again.
                self._reply_join(join.waiter, ErrorCode.none, **self._generation(group, member_id, group.is_leader(member_id)))
            else:
                self._update_member_then_rebalance_or_complete_join(group, member, join)
        elif group.is_leader(member_id) or not member.matches(join.protocols):  # Stable, as the group has members
            # A leader's JoinGroup always rebalances: it is how the leader asks for a
            # new assignment when something outside the member metadata changed.
            self._update_member_then_rebalance_or_complete_join(group, member, join)
        else:
            self._reply_join(join.waiter, ErrorCode.none, **self._generation(group, member_id, False))

    def _update_member_then_rebalance_or_complete_join(self, group: ClassicGroup, member: ClassicGroupMember, join: _Join) -> None:
        self._update_member(group, member, join)
        self._maybe_prepare_rebalance_or_complete_join(group)

    def _update_member(self, group: ClassicGroup, member: ClassicGroupMember, join: _Join) -> None:
        # A JoinGroup already parked for this member is superseded (its client gave up on it).
        self._complete_join(member, ErrorCode.rebalance_in_progress, member_id=member.member_id)
        group.update_member(member, join.protocols, join.rebalance_timeout_ms, join.session_timeout_ms, join.waiter)

    def _add_member_then_rebalance_or_complete_join(self, group: ClassicGroup, join: _Join, member_id: str) -> None:
        member = ClassicGroupMember(
            member_id, join.group_instance_id, join.client_id, join.client_host, join.rebalance_timeout_ms,
            join.session_timeout_ms, join.protocol_type, join.protocols, is_new=True,
        )
        if group.is_in(GroupState.PREPARING_REBALANCE) and group.previous_state is GroupState.EMPTY:
            group.new_member_added = True
        group.add(member, join.waiter)
        # A new member cannot heartbeat while its JoinGroup is parked, and a client that
        # gave up and retried would leave it behind: bound how long it may wait.
        self.schedule_heartbeat(group.group_id, member_id, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance_or_complete_join(group)

    def _replace_static_member_then_rebalance_or_complete_join(
        self, group: ClassicGroup, join: _Join, old_member_id: str, new_member_id: str,
    ) -> None:
        assert join.group_instance_id is not None
        leader_before = group.leader_id
        old = group.members[old_member_id]
        # Whoever still waits as the old member id is a duplicate instance: fence it.
        self._complete_join(old, ErrorCode.fenced_instance_id, member_id=old_member_id)
        self._complete_sync(old, ErrorCode.fenced_instance_id)
        self._shard.timers.cancel(("heartbeat", group.group_id, old_member_id))
        member = group.replace_static_member(join.group_instance_id, old_member_id, new_member_id)
        self.schedule_heartbeat(group.group_id, new_member_id, member.session_timeout_ms)
        group.update_member(member, join.protocols, join.rebalance_timeout_ms, join.session_timeout_ms, join.waiter)
        if group.is_in(GroupState.STABLE):
            if group.protocol_name == group.select_protocol():
                # The restarted instance takes its old place: record its new id, no rebalance.
                self._shard.write(group.group_id, *group_records.group_metadata(group, group.group_assignment()))
                if join.waiter.version >= 9:
                    # The leader learns it leads, but may keep the current assignment.
                    is_leader = group.is_leader(new_member_id)
                    self._complete_join(member, ErrorCode.none, skip_assignment=is_leader,
                                        **self._generation(group, new_member_id, is_leader))
                else:
                    self._complete_join(member, ErrorCode.none, **{**self._generation(group, new_member_id, False),
                                                                   "leader": leader_before or ""})
            else:
                self._maybe_prepare_rebalance_or_complete_join(group)
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            # The leader may be assigning to the old member id: assign again.
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join_phase(group)

    def _generation(self, group: ClassicGroup, member_id: str, with_members: bool) -> dict[str, Any]:
        """JoinGroup response fields describing the current generation to a member."""
        members = []
        if with_members:
            assert group.protocol_name is not None
            members = [
                {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata(group.protocol_name)}
                for m in group.members.values()
            ]
        return {"member_id": member_id, "generation_id": group.generation_id, "protocol_type": group.protocol_type,
                "protocol_name": group.protocol_name, "leader": group.leader_id or "", "members": members}

    # Rebalancing

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join_phase(group)

    def _prepare_rebalance(self, group: ClassicGroup) -> None:
        if group.is_in(GroupState.COMPLETING_REBALANCE):
            self._reset_and_propagate_assignment_with_error(group, ErrorCode.rebalance_in_progress)
        self._remove_sync_expiration(group)
        is_initial_rebalance = group.is_in(GroupState.EMPTY)
        if is_initial_rebalance:
            # A new group waits a little for more members, to avoid a rebalance per member.
            delay_ms = self._initial_rebalance_delay_ms
            remaining_ms = max(group.rebalance_timeout_ms() - delay_ms, 0)
            self._schedule_join(group.group_id, delay_ms, functools.partial(
                self._try_complete_initial_rebalance, group.group_id, delay_ms, remaining_ms))
        group.transition_to(GroupState.PREPARING_REBALANCE, self._clock.wall_ms())
        if not is_initial_rebalance:
            self._maybe_complete_join_else_schedule(group)

    def _maybe_complete_join_else_schedule(self, group: ClassicGroup) -> None:
        if group.has_all_members_joined():
            self._complete_join_phase(group)
        else:
            self._schedule_join(group.group_id, group.rebalance_timeout_ms(),
                                functools.partial(self._complete_join_phase_of, group.group_id))

    def _try_complete_initial_rebalance(self, group_id: str, delay_ms: int, remaining_ms: int) -> None:
        group = self._shard.classic_group(group_id)
        if group is None:
            return
        if group.new_member_added and remaining_ms != 0:
            # Someone joined during the delay: wait again, within the rebalance timeout.
            group.new_member_added = False
            new_delay_ms = min(self._initial_rebalance_delay_ms, remaining_ms)
            new_remaining_ms = max(remaining_ms - delay_ms, 0)
            self._schedule_join(group_id, new_delay_ms, functools.partial(
                self._try_complete_initial_rebalance, group_id, new_delay_ms, new_remaining_ms))
        else:
            self._complete_join_phase(group)

    def _maybe_complete_join_phase(self, group: ClassicGroup) -> None:
        if (
            group.is_in(GroupState.PREPARING_REBALANCE)
            and group.previous_state is not GroupState.EMPTY  # the initial rebalance ends by its timer
            and group.has_all_members_joined()
        ):
            self._complete_join_phase(group)

    def _complete_join_phase_of(self, group_id: str) -> None:
        group = self._shard.classic_group(group_id)
        if group is not None:
            self._complete_join_phase(group)

    def _complete_join_phase(self, group: ClassicGroup) -> None:
        """Ends the join phase: dynamic members that did not rejoin are removed, and the
        next generation starts with a selected protocol and leader."""
        self._shard.timers.cancel(("join", group.group_id))
        for member in group.not_yet_rejoined_members():
            if not member.is_static:
                self._remove_member(group, member.member_id)
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Nobody rejoined: wait until the session timeouts remove the silent members.
            self._schedule_join(group.group_id, group.rebalance_timeout_ms(),
                                functools.partial(self._complete_join_phase_of, group.group_id))
            return
        group.init_next_generation(self._clock.wall_ms())
        if group.is_in(GroupState.EMPTY):
            self._shard.write(group.group_id, *group_records.group_metadata(group, {}))
            return
        for member in list(group.members.values()):
            is_leader = group.is_leader(member.member_id)
            self._complete_join(member, ErrorCode.none, **self._generation(group, member.member_id, is_leader))
            self.schedule_heartbeat(group.group_id, member.member_id, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        # Members that do not send their SyncGroup within the rebalance timeout are removed.
        self._shard.timers.schedule(("sync", group.group_id), self._clock.monotonic_ms() + group.rebalance_timeout_ms(),
                                    functools.partial(self._expire_pending_sync, group.group_id, group.generation_id))

    def _expire_pending_sync(self, group_id: str, generation_id: int) -> None:
        group = self._shard.classic_group(group_id)
        if group is None or generation_id != group.generation_id:
            return
        if group.is_in(GroupState.COMPLETING_REBALANCE, GroupState.STABLE) and group.pending_sync_members:
            for member_id in list(group.pending_sync_members):
                self._remove_member(group, member_id)
            self._prepare_rebalance(group)

    def _remove_sync_expiration(self, group: ClassicGroup) -> None:
        group.pending_sync_members.clear()
        self._shard.timers.cancel(("sync", group.group_id))

    def _reset_and_propagate_assignment_with_error(self, group: ClassicGroup, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _set_and_propagate_assignment(self, group: ClassicGroup, assignment: dict[str, bytes]) -> None:
        for member in group.members.values():
            member.assignment = assignment.get(member.member_id, b"")
        self._propagate_assignment(group, ErrorCode.none)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode) -> None:
        ok = error is ErrorCode.none
        for member in group.members.values():
            if self._complete_sync(member, error, protocol_type=group.protocol_type if ok else None,
                                   protocol_name=group.protocol_name if ok else None, assignment=member.assignment):
                # The session restarts now: an expiry while the member waited was ignored.
                self.schedule_heartbeat(group.group_id, member.member_id, member.session_timeout_ms)

    # Members leaving, by request or by silence

    def _remove_member(self, group: ClassicGroup, member_id: str) -> None:
        """Removes a member (or pending member), answering its parked requests."""
        member = group.members.get(member_id)
        if member is not None:
            # The client retries its JoinGroup from scratch if it is still alive.
            self._complete_join(member, ErrorCode.unknown_member_id, member_id="")
            self._complete_sync(member, ErrorCode.unknown_member_id)
        self._shard.timers.cancel(("heartbeat", group.group_id, member_id))
        group.remove(member_id)

    def _expire_heartbeat(self, group_id: str, member_id: str) -> None:
        group = self._shard.classic_group(group_id)
        if group is None:
            return
        if member_id in group.pending_join_members:
            self._remove_member(group, member_id)
            if group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
                self._complete_join_phase(group)
            return
        member = group.members.get(member_id)
        if member is not None and not member.has_satisfied_heartbeat():
            self._remove_member(group, member_id)
            if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group)
            elif group.is_in(GroupState.PREPARING_REBALANCE) and group.has_all_members_joined():
                self._complete_join_phase(group)

    # SyncGroup

    def sync_group(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        protocol_type = getattr(request, "protocol_type", None)
        protocol_name = getattr(request, "protocol_name", None)
        if not request.group_id:
            self._shard.reply(waiter, _sync_response(ErrorCode.invalid_group_id))
            return
        if version >= 5 and (protocol_type is None or protocol_name is None):
            self._shard.reply(waiter, _sync_response(ErrorCode.inconsistent_group_protocol))
            return
        group = self._shard.groups.get(request.group_id)
        if group is None or group.is_empty():
            self._shard.reply(waiter, _sync_response(ErrorCode.unknown_member_id))
            return
        if isinstance(group, ConsumerGroup):
            refusal = group.classic_member_refusal(request.member_id, getattr(request, "group_instance_id", None))
            self._shard.reply(waiter, _sync_response(refusal))
            return
        member_id = request.member_id
        try:
            group.validate_sync(member_id, getattr(request, "group_instance_id", None), request.generation_id,
                                protocol_type, protocol_name)
        except GroupError as e:
            self._shard.reply(waiter, _sync_response(e.code))
            return
        if group.is_in(GroupState.PREPARING_REBALANCE):
            self._shard.reply(waiter, _sync_response(ErrorCode.rebalance_in_progress))
        elif group.is_in(GroupState.COMPLETING_REBALANCE):
            member = group.members[member_id]
            # A SyncGroup already parked for this member is superseded (its client gave up on it).
            self._complete_sync(member, ErrorCode.rebalance_in_progress)
            member.awaiting_sync = waiter
            self._remove_pending_sync_member(group, member_id)
            if group.is_leader(member_id):
                assignment = {a.member_id: bytes(a.assignment) for a in request.assignments}
                for other_id in group.members:
                    assignment.setdefault(other_id, b"")
                self._shard.write(group.group_id, *group_records.group_metadata(group, assignment))
                self._set_and_propagate_assignment(group, assignment)
                group.transition_to(GroupState.STABLE, self._clock.wall_ms())
        else:
            self._remove_pending_sync_member(group, member_id)
            self._shard.reply(waiter, _sync_response(ErrorCode.none, group.protocol_type, group.protocol_name,
                                                     group.members[member_id].assignment))

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            self._shard.timers.cancel(("sync", group.group_id))

    # Heartbeat

    def heartbeat(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        self._shard.reply(waiter, {"throttle_time": 0, "error_code": self._heartbeat_error(request)})

    def _heartbeat_error(self, request: Any) -> ErrorCode:
        if not request.group_id:
            return ErrorCode.invalid_group_id
        group = self._shard.groups.get(request.group_id)
        if group is None:
            return ErrorCode.unknown_member_id
        if isinstance(group, ConsumerGroup):
            return group.classic_member_refusal(request.member_id, getattr(request, "group_instance_id", None))
        try:
            group.validate_member(request.member_id, getattr(request, "group_instance_id", None))
        except GroupError as e:
            return e.code
        if request.generation_id != group.generation_id:
            return ErrorCode.illegal_generation
        member = group.members[request.member_id]
        self.schedule_heartbeat(group.group_id, member.member_id, member.session_timeout_ms)
        if group.is_in(GroupState.PREPARING_REBALANCE):
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    # LeaveGroup

    def leave_group(self, version: int, request: Any, token: object) -> None:
        waiter = Waiter(token, version)
        if version >= 3:
            identities = [(m.member_id, m.group_instance_id) for m in request.members]
        else:
            identities = [(request.member_id, None)]
        if not request.group_id:
            self._shard.reply(waiter, _leave_response(version, ErrorCode.invalid_group_id, []))
            return
        group = self._shard.groups.get(request.group_id)
        if group is None:
            responses = [_left(member_id, instance_id, ErrorCode.unknown_member_id) for member_id, instance_id in identities]
            self._shard.reply(waiter, _leave_response(version, ErrorCode.none, responses))
            return
        if isinstance(group, ConsumerGroup):
            # An admin removing a static member by instance id alone is not fenced for its member id.
            responses = [
                _left(member_id, instance_id, group.classic_member_refusal(member_id, instance_id) if member_id
                      else ErrorCode.unknown_member_id)
                for member_id, instance_id in identities
            ]
            self._shard.reply(waiter, _leave_response(version, ErrorCode.none, responses))
            return
        responses = [self._leave(group, member_id, instance_id) for member_id, instance_id in identities]
        if any(r["error_code"] is ErrorCode.none for r in responses):
            if group.is_in(GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group)
            elif group.is_in(GroupState.PREPARING_REBALANCE):
                self._maybe_complete_join_phase(group)
        self._shard.reply(waiter, _leave_response(version, ErrorCode.none, responses))

    def _leave(self, group: ClassicGroup, member_id: str, group_instance_id: str | None) -> dict[str, Any]:
        if not member_id:
            # An admin removing a static member by its instance id alone.
            static_member_id = group.static_members.get(group_instance_id) if group_instance_id is not None else None
            if static_member_id is None:
                return _left(member_id, group_instance_id, ErrorCode.unknown_member_id)
            self._remove_member(group, static_member_id)
        elif member_id in group.pending_join_members:
            self._remove_member(group, member_id)
        else:
            try:
                group.validate_member(member_id, group_instance_id)
            except GroupError as e:
                return _left(member_id, group_instance_id, e.code)
            self._remove_member(group, member_id)
        return _left(member_id, group_instance_id, ErrorCode.none)

    # DescribeGroups

    def describe_groups(self, version: int, request: Any) -> dict:
        with_operations = version >= 3 and getattr(request, "include_authorized_operations", False)
        described = [self._describe(version, group_id) for group_id in request.groups]
        for group in described:
            if with_operations and group["error_code"] is ErrorCode.none:
                group["authorized_operations"] = GROUP_AUTHORIZED_OPERATIONS
        return {"throttle_time": 0, "groups": described}

    def _describe(self, version: int, group_id: str) -> dict[str, Any]:
        group = self._shard.groups.get(group_id)
        if not isinstance(group, ClassicGroup):
            # From v6 a missing group is an error; before, it looks like a dead group. A
            # consumer group is missing to this API.
            message = f"Group {group_id} not found." if group is None else f"Group {group_id} is not a classic group."
            return {
                "error_code": ErrorCode.group_id_not_found if version >= 6 else ErrorCode.none,
                "error_message": message if version >= 6 else None,
                "group_id": group_id, "group_state": GroupState.DEAD.value, "protocol_type": "", "protocol_data": "",
                "members": [], "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
            }
        # The protocol, and the members' metadata for it, are only shown once settled.
        protocol = group.protocol_name if group.is_in(GroupState.STABLE) else None
        return {
            "error_code": ErrorCode.none, "error_message": None, "group_id": group_id, "group_state": group.state.value,
            "protocol_type": group.protocol_type or "", "protocol_data": protocol or "",
            "members": [
                {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
                 "client_host": m.client_host, "member_metadata": b"" if protocol is None else m.metadata(protocol),
                 "member_assignment": m.assignment}
                for m in group.members.values()
            ],
            "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED,
        }

    # Timers and replies

    def schedule_heartbeat(self, group_id: str, member_id: str, timeout_ms: int) -> None:
        self._shard.timers.schedule(("heartbeat", group_id, member_id), self._clock.monotonic_ms() + timeout_ms,
                                    functools.partial(self._expire_heartbeat, group_id, member_id))

    def _schedule_join(self, group_id: str, delay_ms: int, action: Callable[[], None]) -> None:
        self._shard.timers.schedule(("join", group_id), self._clock.monotonic_ms() + delay_ms, action)

    def _reply_join(self, waiter: Waiter, error: ErrorCode, **fields: Any) -> None:
        self._shard.reply(waiter, _join_response(waiter.version, error, **fields))

    def _complete_join(self, member: ClassicGroupMember, error: ErrorCode, **fields: Any) -> None:
        waiter, member.awaiting_join = member.awaiting_join, None
        if waiter is not None:
            self._reply_join(waiter, error, **fields)

    def _complete_sync(self, member: ClassicGroupMember, error: ErrorCode, **fields: Any) -> bool:
        """Answers the member's parked SyncGroup, if any; whether there was one."""
        waiter, member.awaiting_sync = member.awaiting_sync, None
        if waiter is None:
            return False
        self._shard.reply(waiter, _sync_response(error, **fields))
        return True


def _left(member_id: str, group_instance_id: str | None, error: ErrorCode) -> dict[str, Any]:
    return {"member_id": member_id, "group_instance_id": group_instance_id, "error_code": error}
