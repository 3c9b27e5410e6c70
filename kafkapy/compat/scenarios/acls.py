"""Authorization as a client meets it: ACLs refuse a producer, a consumer group, a topic's
metadata; prefixed ACLs; DENY over ALLOW; super users. Each scenario creates the ACLs it
needs on resources of its own, for every principal (User:*), so that it holds whoever its
client authenticates as, and removes them when it ends. Against a broker without an
authorizer (SECURITY_DISABLED) it is skipped; its client needs the right to create topics
and ACLs (an open cluster, or a principal allowed them)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from ..adapters.base import AclEntry, BrokerError, GroupConsumer, Membership, Record
from ..checks import assert_equal, assert_same_records, end_offsets, once_it_works, refused_with
from ..registry import Context, NotApplicable, scenario

EVERYONE = "User:*"
TOPIC, GROUP = "TOPIC", "GROUP"
LITERAL, PREFIXED = "LITERAL", "PREFIXED"
ALLOW, DENY = "ALLOW", "DENY"
RECORDS = [Record(b"k%d" % i, b"v%d" % i, partition=0) for i in range(5)]
# Long enough for a consumer to find its coordinator and be answered JoinGroup.
GROUP_ERROR_S = 20.0


def acl(resource_type: str, name: str, operation: str, permission: str = ALLOW, pattern: str = LITERAL) -> AclEntry:
    return AclEntry(resource_type, name, pattern, EVERYONE, "*", operation, permission)


@contextlib.contextmanager
def acls_in_force(ctx: Context, *acls: AclEntry) -> Iterator[None]:
    """The ACLs, created for the block and deleted after it."""
    try:
        ctx.client.create_acls(acls)
    except BrokerError as e:
        if e.name == "SECURITY_DISABLED":
            raise NotApplicable("the broker has no authorizer (CreateAcls answers SECURITY_DISABLED)") from e
        raise
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the scenario's own failure is the one to report
            ctx.client.delete_acls(acls)
        raise
    ctx.client.delete_acls(acls)


def refused(call: Callable[[], object], error: str, what: str) -> None:
    """call() refused with error, once the ACLs have reached the broker it asks (a cluster
    spreads them through its metadata log)."""

    def attempt() -> None:
        with refused_with(error):
            call()

    once_it_works(attempt, what)


def polled_until_refused(consumer: GroupConsumer) -> None:
    deadline = time.monotonic() + GROUP_ERROR_S
    while time.monotonic() < deadline:
        consumer.poll(0.5)


@scenario("acls.producer_without_write", needs_authorizer=True)
def producer_without_write(ctx: Context) -> None:
    """A topic whose ACLs allow READ but not WRITE: the producer's records are refused with
    TOPIC_AUTHORIZATION_FAILED, and nothing is written."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)
    with acls_in_force(ctx, acl(TOPIC, topic, "READ")):
        refused(lambda: ctx.client.produce(topic, RECORDS), "TOPIC_AUTHORIZATION_FAILED", "producing without WRITE")
        assert_equal(ctx.client.watermarks(topic, 0), (0, 0), "(earliest, latest) offsets of the refused topic")


@scenario("acls.consumer_without_group_read", needs_authorizer=True)
def consumer_without_group_read(ctx: Context) -> None:
    """A consumer may read the topic but only describe its group: joining the group is
    refused with GROUP_AUTHORIZATION_FAILED."""
    topic = ctx.topic()
    group = f"{topic}-group"
    ctx.create_topic(topic, 1)
    with acls_in_force(ctx, acl(TOPIC, topic, "READ"), acl(GROUP, group, "DESCRIBE")):
        def join() -> None:
            consumer = ctx.client.group_consumer(Membership(group, topic))
            try:
                polled_until_refused(consumer)
            finally:
                with contextlib.suppress(Exception):  # a consumer never admitted may fail to leave
                    consumer.close()

        refused(join, "GROUP_AUTHORIZATION_FAILED", "joining a group without READ")


@scenario("acls.topic_visibility", needs_authorizer=True)
def topic_visibility(ctx: Context) -> None:
    """Listing topics shows one the client may describe and leaves out one it may not;
    naming the hidden one is refused with TOPIC_AUTHORIZATION_FAILED."""
    shown, hidden = ctx.topic(), ctx.topic()
    for topic in (shown, hidden):
        ctx.create_topic(topic, 1)
    with acls_in_force(ctx, acl(TOPIC, shown, "DESCRIBE"), acl(TOPIC, hidden, "DESCRIBE", DENY)):
        def hidden_from_listing() -> None:
            names = ctx.client.topic_names()
            assert shown in names and hidden not in names, (
                f"listed: the describable topic {shown in names}, the hidden one {hidden in names}")

        once_it_works(hidden_from_listing, "listing topics")
        refused(lambda: ctx.client.partitions(hidden), "TOPIC_AUTHORIZATION_FAILED", "describing the hidden topic")
        assert_equal([p.index for p in ctx.client.partitions(shown)], [0], "partitions of the describable topic")


@scenario("acls.prefixed", needs_authorizer=True)
def prefixed(ctx: Context) -> None:
    """A PREFIXED ALLOW of WRITE covers a topic whose name starts with the prefix, and not
    one whose name only resembles it (which its literal READ leaves closed to writes)."""
    base = ctx.topic()
    covered, outside = f"{base}-in-1", f"{base}-inx"
    for topic in (covered, outside):
        ctx.create_topic(topic, 1)
    with acls_in_force(ctx, acl(TOPIC, f"{base}-in-", "WRITE", pattern=PREFIXED), acl(TOPIC, outside, "READ")):
        written = once_it_works(lambda: ctx.client.produce(covered, RECORDS), "producing under the prefix")
        assert_equal([r.offset for r in written], list(range(len(RECORDS))), "offsets written under the prefix")
        refused(lambda: ctx.client.produce(outside, RECORDS), "TOPIC_AUTHORIZATION_FAILED",
                "producing outside the prefix")


@scenario("acls.deny_overrides_allow", needs_authorizer=True)
def deny_overrides_allow(ctx: Context) -> None:
    """ALLOW of ALL and DENY of WRITE on one topic: writes are refused, while what ALL
    allows besides (describing it, listing its offsets) still works."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)
    with acls_in_force(ctx, acl(TOPIC, topic, "ALL"), acl(TOPIC, topic, "WRITE", DENY)):
        refused(lambda: ctx.client.produce(topic, RECORDS), "TOPIC_AUTHORIZATION_FAILED", "producing despite the DENY")
        assert_equal(ctx.client.watermarks(topic, 0), (0, 0), "(earliest, latest) offsets, which ALL allows listing")


@scenario("acls.super_user", as_super_user=True)
def super_user(ctx: Context) -> None:
    """A DENY of ALL to every principal does not stop a super user: it produces to the
    topic and reads the records back."""
    topic = ctx.topic()
    ctx.create_topic(topic, 1)
    with acls_in_force(ctx, acl(TOPIC, topic, "ALL", DENY)):
        written = ctx.client.produce(topic, RECORDS)
        assert_same_records(ctx.client.consume(topic, end_offsets(written)), written)
