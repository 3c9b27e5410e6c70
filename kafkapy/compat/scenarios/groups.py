"""Consumer groups and committed offsets. Each member is a client in a child process of
its own, polling without pause as an application does, so that a scenario can kill one
(SIGKILL) as a crash would."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..adapters.base import (
    ASSIGNED,
    CONSUMER,
    COOPERATIVE_STICKY,
    MIN_SESSION_TIMEOUT_MS,
    RANGE,
    REVOKED,
    TIMEOUT_S,
    Client,
    Committed,
    Membership,
    Rebalance,
    Record,
)
from ..checks import assert_equal, assert_same_records, once_it_works, refused_with
from ..child import Channel, Child, record_from, record_message
from ..raw import commit_as_member
from ..registry import Context, scenario

PARTITIONS = 6
RECORDS = 600
SESSION_TIMEOUT_S = MIN_SESSION_TIMEOUT_MS / 1000
# Beyond a dead member's session timeout: for the survivors to hear of the rebalance at
# their next heartbeat and rejoin.
REJOIN_S = 5.0
# Long enough for a rebalance to reach every member (several heartbeat intervals).
QUIET_S = 3.0
# A static member's session outlasts its restart.
STATIC_SESSION_TIMEOUT_MS = 30_000
# Kafka's default offset.metadata.max.bytes is 4096.
TOO_LARGE_METADATA = "m" * 5000
INT32_MAX = 2**31 - 1


def member(client: Client, spec: dict[str, Any], channel: Channel) -> None:
    """The child's program: a group consumer that polls without pause, reporting every call
    of its rebalance listener and every record; commands: commit, member_id, close."""
    consumer = client.group_consumer(Membership(**spec))

    def commit(offsets: dict[str, list[Any]] | None) -> None:
        consumer.commit(None if offsets is None else {int(p): Committed(*c) for p, c in offsets.items()})

    actions = {"commit": commit, "member_id": lambda _: consumer.member_id()}
    reported = 0
    while True:
        records = consumer.poll(0.1)
        rebalances = consumer.rebalances[reported:]
        reported += len(rebalances)
        if rebalances:
            channel.emit({"rebalances": [[r.kind, sorted(r.partitions)] for r in rebalances]})
        if records:
            channel.emit({"records": [record_message(r) for r in records]})
        for command, argument in channel.commands():
            if command == "close":
                channel.answer(consumer.close)
                return
            # answer calls it at once, within this iteration.
            channel.answer(lambda: actions[command](argument))  # noqa: B023


class Member(Child):
    """A group member in a child process, as the parent sees it."""

    def __init__(self, ctx: Context, membership: Membership, name: str) -> None:
        super().__init__(f"{__name__}:member", ctx.client.name, ctx.client.bootstrap, dataclasses.asdict(membership), name,
                         ctx.client.security)

    @property
    def records(self) -> list[Record]:
        return [record_from(r) for e in self.events for r in e.get("records", ())]

    @property
    def rebalances(self) -> list[Rebalance]:
        return [Rebalance(kind, frozenset(partitions)) for e in self.events for kind, partitions in e.get("rebalances", ())]

    @property
    def assignment(self) -> frozenset[int]:
        """The partitions held now: what was assigned, less what was revoked or lost since."""
        held: frozenset[int] = frozenset()
        for r in self.rebalances:
            held = held | r.partitions if r.kind == ASSIGNED else held - r.partitions
        return held

    def commit(self, offsets: Mapping[int, Committed] | None = None) -> None:
        self.request("commit", None if offsets is None else {p: [c.offset, c.metadata] for p, c in offsets.items()})

    def member_id(self) -> str:
        return self.request("member_id")


def until(members: Sequence[Member], shortfall: Callable[[], str | None], timeout: float) -> None:
    """Waits until shortfall() is None (otherwise it says what is still missing, which a
    failure after timeout reports); fails at once if a member fails."""
    deadline = time.monotonic() + timeout
    while (missing := shortfall()) is not None:
        for m in members:
            m.check()
        assert time.monotonic() < deadline, f"after {timeout:g}s, {missing}"
        time.sleep(0.05)


def settle(members: Sequence[Member], partitions: int, timeout: float = TIMEOUT_S) -> list[frozenset[int]]:
    """The members' assignments once they split the partitions evenly, each partition to
    exactly one of them."""
    held: list[frozenset[int]] = []

    def uneven() -> str | None:
        held[:] = [m.assignment for m in members]
        sizes = [len(h) for h in held]
        if sum(sizes) == partitions and frozenset().union(*held) == frozenset(range(partitions)) and max(sizes) - min(sizes) <= 1:
            return None
        return f"the group does not share its {partitions} partitions evenly: " + ", ".join(
            f"{m.name} holds {sorted(h)}" for m, h in zip(members, held, strict=True))

    until(members, uneven, timeout)
    return held


def stable_assignor(ctx: Context, members: Sequence[Member], group: str) -> str:
    """The group's assignor, read once it is Stable: as in Kafka, a group only shows its
    protocol when settled (a cooperative group may rebalance twice in a row)."""
    described: list[Any] = []

    def unsettled() -> str | None:
        described[:] = [ctx.client.describe_group(group)]
        return None if described[0].state == "Stable" else f"the group is {described[0].state}, not Stable"

    until(members, unsettled, TIMEOUT_S)
    return described[0].assignor


def wait_consumed(members: Sequence[Member], expected: Sequence[Record], timeout: float = TIMEOUT_S) -> None:
    """Waits until the members have consumed every expected record between them."""
    wanted = {(r.partition, r.offset) for r in expected}

    def unconsumed() -> str | None:
        missing = wanted - {(r.partition, r.offset) for m in members for r in m.records}
        return f"{len(missing)} of {len(wanted)} records not consumed, first at (partition, offset) {sorted(missing)[:5]}" if missing else None

    until(members, unconsumed, timeout)


def spread(start: int, count: int) -> list[Record]:
    """Records numbered from start, round-robin over the partitions."""
    return [Record(b"k%d" % i, b"v%d" % i, partition=i % PARTITIONS) for i in range(start, start + count)]


def plain(records: Sequence[Record]) -> list[Record]:
    """The records as members report them: key, value and position."""
    return [Record(r.key, r.value, partition=r.partition, offset=r.offset) for r in records]


@scenario("groups.share_and_failover")
def share_and_failover(ctx: Context) -> None:
    """Three members share six partitions two each; when one leaves, the two others take its
    partitions at once; when one of them is killed (SIGKILL), the last takes them all within
    the session timeout. Each record is consumed exactly once (offsets committed before each change)."""
    topic = ctx.topic()
    ctx.create_topic(topic, PARTITIONS)
    membership = Membership(group=topic, topic=topic)
    with Member(ctx, membership, "leaving member") as leaving, Member(ctx, membership, "killed member") as killed, \
            Member(ctx, membership, "surviving member") as survivor:
        settle([leaving, killed, survivor], PARTITIONS)
        before = ctx.client.produce(topic, spread(0, RECORDS))
        wait_consumed([leaving, killed, survivor], before)
        for m in (leaving, killed, survivor):
            m.commit()

        leaving.close()
        settle([killed, survivor], PARTITIONS, timeout=SESSION_TIMEOUT_S)
        killed.kill()
        settle([survivor], PARTITIONS, timeout=SESSION_TIMEOUT_S + REJOIN_S)

        after = ctx.client.produce(topic, spread(RECORDS, RECORDS))
        wait_consumed([survivor], after)
        consumed = leaving.records + killed.records + survivor.records
    assert_same_records(consumed, plain(before + after), "the members")


def new_group(ctx: Context, partitions: int = PARTITIONS, **options: Any) -> Membership:
    """A new topic, and the membership of a group of its own (named after the topic) in it."""
    topic = ctx.topic()
    ctx.create_topic(topic, partitions)
    return Membership(group=topic, topic=topic, **options)


@scenario("groups.eager_range")
def eager_range(ctx: Context) -> None:
    """With the range assignor (the eager protocol), a second member's arrival makes the first
    revoke all six partitions, then each member gets a range of three."""
    membership = new_group(ctx, assignor=RANGE)
    with Member(ctx, membership, "first member") as first:
        settle([first], PARTITIONS)
        with Member(ctx, membership, "second member") as second:
            held = settle([first, second], PARTITIONS)
            assignor = stable_assignor(ctx, [first, second], membership.group)
    assert_equal(sorted(sorted(h) for h in held), [[0, 1, 2], [3, 4, 5]], "the members' partitions")
    revoked = [sorted(r.partitions) for r in first.rebalances if r.kind == REVOKED and r.partitions]
    assert revoked and revoked[0] == list(range(PARTITIONS)), f"the first member revoked {revoked}, not all six partitions first"
    assert_equal(assignor, RANGE, "the group's assignor")


@scenario("groups.cooperative_sticky")
def cooperative_sticky(ctx: Context) -> None:
    """With the cooperative-sticky assignor, a second member's arrival moves three partitions
    to it while the first keeps the other three throughout: it revokes only those that move."""
    membership = new_group(ctx, assignor=COOPERATIVE_STICKY)
    with Member(ctx, membership, "first member") as first:
        settle([first], PARTITIONS)
        with Member(ctx, membership, "second member") as second:
            _, moved = settle([first, second], PARTITIONS)
            assignor = stable_assignor(ctx, [first, second], membership.group)
    assigned = [sorted(r.partitions) for r in first.rebalances if r.kind == ASSIGNED and r.partitions]
    assert_equal(assigned, [list(range(PARTITIONS))], "partitions assigned to the first member")
    revoked = [sorted(r.partitions) for r in first.rebalances if r.kind != ASSIGNED and r.partitions]
    assert_equal(revoked, [sorted(moved)], "partitions the first member revoked")
    assert_equal(assignor, COOPERATIVE_STICKY, "the group's assignor")


@scenario("groups.static_member_restart")
def static_member_restart(ctx: Context) -> None:
    """A static member (group.instance.id) killed and restarted within its session timeout
    gets its partitions back without a rebalance: the other members' assignments never change."""
    membership = new_group(ctx, session_timeout_ms=STATIC_SESSION_TIMEOUT_MS)

    def static(n: int) -> Member:
        return Member(ctx, dataclasses.replace(membership, instance_id=f"static-{n}"), f"static member {n}")

    with static(1) as first, static(2) as restarted, static(3) as third:
        held = settle([first, restarted, third], PARTITIONS)
        unchanged = {m.name: m.rebalances for m in (first, third)}
        restarted.kill()
        with static(2) as back:
            back.wait_until(lambda: back.assignment, TIMEOUT_S, "assignment after the restart")
            time.sleep(QUIET_S)
            assert_equal(back.assignment, held[1], "partitions of the restarted member")
            assert_equal({m.name: m.rebalances for m in (first, third)}, unchanged, "rebalances of the other members")
            group = ctx.client.describe_group(membership.group)
    assert_equal(sorted((m.instance_id, sorted(p for _, p in m.assignment)) for m in group.members),
                 [(f"static-{n}", sorted(h)) for n, h in enumerate(held, 1)], "(instance id, partitions) of the described members")


COMMITTED = {0: Committed(7, ""), 1: Committed(13, "plain"), 2: Committed(1, "ünïcødé ✓ 鍵"), 3: Committed(20, "m" * 4000)}
PER_PARTITION = 20


def commit_then_resume(ctx: Context, between: Callable[[], None] | None = None) -> None:
    """A member commits COMMITTED in the middle of four partitions and leaves; the group's
    offsets list them with their metadata, and a new member starts exactly there. `between`
    runs after the commit."""
    membership = new_group(ctx, len(COMMITTED))
    acked = ctx.client.produce(membership.topic, [Record(b"k", b"%d" % i, partition=p)
                                                  for p in COMMITTED for i in range(PER_PARTITION)])
    with Member(ctx, membership, "committing member") as committing:
        settle([committing], len(COMMITTED))
        committing.commit(COMMITTED)
        committing.close()
    if between is not None:
        between()
    offsets = once_it_works(lambda: ctx.client.group_offsets(membership.group), "listing the group's offsets")
    assert_equal(offsets, {(membership.topic, p): c for p, c in COMMITTED.items()}, "the group's committed offsets")
    rest = [r for r in acked if r.offset >= COMMITTED[r.partition].offset]  # type: ignore[index,operator]
    with Member(ctx, membership, "resuming member") as resuming:
        wait_consumed([resuming], rest)
    assert_same_records(resuming.records, plain(rest), "the resuming member")


@scenario("groups.committed_offsets")
def committed_offsets(ctx: Context) -> None:
    """Offsets committed with metadata strings (empty, ASCII, non-ASCII, 4000 characters) are
    listed back with them, and a new member of the group resumes exactly at them, not at the
    earliest offset (its auto.offset.reset)."""
    commit_then_resume(ctx)


@scenario("groups.offsets_survive_restart", needs_broker_control=True)
def offsets_survive_restart(ctx: Context) -> None:
    """Committed offsets and their metadata survive a broker restart, and a new member resumes at them."""
    assert ctx.broker is not None
    commit_then_resume(ctx, ctx.broker.restart)


@scenario("groups.commit_refusals")
def commit_refusals(ctx: Context) -> None:
    """Commits for an unknown topic or partition are refused with UNKNOWN_TOPIC_OR_PARTITION,
    one with metadata over offset.metadata.max.bytes with OFFSET_METADATA_TOO_LARGE, and one
    from the member in another generation (over a bare connection) with ILLEGAL_GENERATION;
    none of them is stored, and a valid commit then is."""
    membership = new_group(ctx, 2)
    with Member(ctx, membership, "member") as m:
        settle([m], 2)
        with refused_with("UNKNOWN_TOPIC_OR_PARTITION"):
            ctx.client.alter_group_offsets(membership.group, {(ctx.topic(), 0): Committed(1)})
        with refused_with("UNKNOWN_TOPIC_OR_PARTITION"):
            ctx.client.alter_group_offsets(membership.group, {(membership.topic, 2): Committed(1)})
        with refused_with("OFFSET_METADATA_TOO_LARGE"):
            m.commit({0: Committed(1, TOO_LARGE_METADATA)})
        with refused_with("ILLEGAL_GENERATION"):
            commit_as_member(ctx.client.bootstrap, membership.group, m.member_id(), INT32_MAX, membership.topic, 0, 1,
                             ctx.client.security)
        assert_equal(ctx.client.group_offsets(membership.group), {}, "the group's offsets after refused commits")
        m.commit({1: Committed(5, "valid")})
        assert_equal(ctx.client.group_offsets(membership.group), {(membership.topic, 1): Committed(5, "valid")},
                     "the group's offsets after a valid commit")


@scenario("groups.consumer_protocol")
def consumer_protocol(ctx: Context) -> None:
    """Two members of a group of KIP-848's consumer protocol (group.protocol=consumer) get
    three partitions each from the broker's assignor and consume every record once."""
    membership = new_group(ctx, protocol=CONSUMER)
    with Member(ctx, membership, "first member") as first, Member(ctx, membership, "second member") as second:
        settle([first, second], PARTITIONS)
        acked = ctx.client.produce(membership.topic, spread(0, RECORDS))
        wait_consumed([first, second], acked)
    assert_same_records(first.records + second.records, plain(acked), "the members")


@scenario("groups.admin")
def admin(ctx: Context) -> None:
    """The admin calls on a group: listed and described (state, assignor, members and their
    partitions) while a member is in it, its offsets listed; not deleted while it has a
    member (NON_EMPTY_GROUP); once empty, its offsets altered, then deleted, and unknown after
    (GROUP_ID_NOT_FOUND)."""
    membership = new_group(ctx, 2)
    acked = ctx.client.produce(membership.topic, [Record(b"k", b"%d" % i, partition=i % 2) for i in range(20)])
    group, topic = membership.group, membership.topic
    with Member(ctx, membership, "member") as m:
        settle([m], 2)
        wait_consumed([m], acked)
        m.commit()
        assert_equal(ctx.client.list_groups().get(group), "Stable", "the listed state of the group")
        described = ctx.client.describe_group(group)
        assert_equal((described.state, described.assignor), ("Stable", RANGE), "(state, assignor) of the described group")
        assert_equal([(g.member_id, g.assignment) for g in described.members],
                     [(m.member_id(), frozenset({(topic, 0), (topic, 1)}))], "(member id, partitions) of the described members")
        assert_equal(ctx.client.group_offsets(group), {(topic, 0): Committed(10), (topic, 1): Committed(10)}, "the group's offsets")
        with refused_with("NON_EMPTY_GROUP"):
            ctx.client.delete_group(group)
        m.close()

    assert_equal(ctx.client.describe_group(group).state, "Empty", "the state of the group its member left")
    ctx.client.alter_group_offsets(group, {(topic, 0): Committed(3, "rewound")})
    assert_equal(ctx.client.group_offsets(group), {(topic, 0): Committed(3, "rewound"), (topic, 1): Committed(10)},
                 "the group's offsets after altering partition 0's")
    ctx.client.delete_group(group)
    assert group not in ctx.client.list_groups(), f"{group} is still listed after its deletion"
    with refused_with("GROUP_ID_NOT_FOUND"):
        ctx.client.delete_group(group)
