"""The sans-IO Partition: high watermark, ISR proposals and roles, on a fake clock."""

from kafkapy.replication.partition import IsrProposal, Partition, Registration, Role, RoleChange

LAG_MS = 30_000


def leader_of(isr=(1, 2, 3), log_end=10, now=0, high_watermark=0, epoch=5) -> Partition:
    p = Partition(1, LAG_MS, high_watermark)
    assert p.apply(Registration((1, 2, 3), isr, 1, epoch, 7), log_end, now) is RoleChange.BECAME_LEADER
    return p


def test_the_high_watermark_is_the_lowest_log_end_of_the_isr_and_never_goes_back():
    p = leader_of()
    assert p.high_watermark == 0  # the followers' positions are unknown yet
    p.follower_fetched(2, 10, 10, 1)
    assert not p.maybe_advance_high_watermark(10, 1)
    p.follower_fetched(3, 6, 10, 1)
    assert p.maybe_advance_high_watermark(10, 1) and p.high_watermark == 6
    p.follower_fetched(3, 10, 12, 2)
    p.maybe_advance_high_watermark(12, 2)
    assert p.high_watermark == 10  # follower 2 is still at 10
    # A follower fetching from an earlier offset (it truncated) never moves the high watermark back.
    p.follower_fetched(2, 4, 12, 3)
    assert not p.maybe_advance_high_watermark(12, 3) and p.high_watermark == 10


def test_a_leader_alone_in_the_isr_commits_at_once():
    p = leader_of(isr=(1,), log_end=10, high_watermark=3)
    assert p.high_watermark == 10
    assert p.maybe_advance_high_watermark(15, 1) and p.high_watermark == 15


def test_a_caught_up_follower_outside_the_isr_is_waited_for_unless_ineligible():
    p = leader_of(isr=(1, 2), log_end=10)
    p.follower_fetched(2, 10, 10, 0)
    p.follower_fetched(3, 10, 10, 0)
    p.maybe_advance_high_watermark(10, 0)
    assert p.high_watermark == 10
    p.follower_fetched(2, 20, 20, 1)
    p.follower_fetched(3, 15, 20, 1)  # caught up to where the leader ended at its previous fetch
    p.maybe_advance_high_watermark(20, 1)
    assert p.high_watermark == 15
    p.maybe_advance_high_watermark(20, 2, ineligible=frozenset({3}))
    assert p.high_watermark == 20


def test_a_follower_that_has_not_caught_up_for_the_lag_time_is_proposed_out():
    p = leader_of(log_end=10, now=1_000)
    p.follower_fetched(2, 10, 10, 2_000)
    p.follower_fetched(3, 4, 10, 2_000)  # behind, and never caught up since becoming leader at 1000
    assert p.isr_shrink(10, 1_000 + LAG_MS) is None
    proposal = p.isr_shrink(10, 1_000 + LAG_MS + 1)
    assert proposal == IsrProposal(5, 7, (1, 2))
    # One proposal in flight at a time, and the high watermark still waits for the maximal ISR.
    assert p.isr_shrink(10, 1_000 + LAG_MS + 2) is None
    p.maybe_advance_high_watermark(10, 1_000 + LAG_MS + 2)
    assert p.high_watermark == 4
    # The image brings the new ISR: now only follower 2 counts.
    assert p.apply(Registration((1, 2, 3), (1, 2), 1, 5, 8), 10, 40_000) is RoleChange.NONE
    assert p.pending is None and p.isr == (1, 2)
    assert p.maybe_advance_high_watermark(10, 40_000) and p.high_watermark == 10


def test_a_follower_fetching_at_the_leaders_previous_end_stays_caught_up():
    p = leader_of(log_end=10, now=0)
    for now, leader_end in ((10_000, 20), (25_000, 30), (50_000, 40)):
        p.follower_fetched(2, leader_end - 10, leader_end, now)  # always one fetch behind a moving end
        p.follower_fetched(3, leader_end, leader_end, now)
    assert p.isr_shrink(40, 50_000) is None
    assert p.followers[2].last_caught_up_ms == 25_000


def test_a_follower_joins_once_it_reaches_the_high_watermark_within_the_leaders_epoch():
    p = leader_of(isr=(1, 2), log_end=10, high_watermark=8)
    p.follower_fetched(2, 10, 10, 0)
    p.maybe_advance_high_watermark(10, 0)
    assert p.high_watermark == 10
    p.follower_fetched(3, 9, 12, 0)
    assert p.isr_expansion() is None  # below the high watermark, and below where epoch 5 began (10)
    p.follower_fetched(3, 10, 12, 1)
    assert p.isr_expansion(ineligible=frozenset({3})) is None
    proposal = p.isr_expansion()
    assert proposal == IsrProposal(5, 7, (1, 2, 3)) and p.maximal_isr == (1, 2, 3)
    assert p.isr_expansion() is None
    p.proposal_failed(proposal)
    assert p.pending is None and p.isr_expansion() == proposal


def test_roles_follow_the_leader_epoch_and_stale_registrations_are_ignored():
    p = Partition(2, LAG_MS, high_watermark=4)
    assert p.apply(Registration((1, 2, 3), (1, 2, 3), 1, 3, 3), 10, 0) is RoleChange.BECAME_FOLLOWER
    assert (p.role, p.leader, p.leader_epoch) == (Role.FOLLOWER, 1, 3)
    assert not p.follower_fetched(3, 10, 10, 0)  # a follower keeps no follower state
    assert p.leader_high_watermark(9, log_end_offset=7) and p.high_watermark == 7
    assert p.apply(Registration((1, 2, 3), (2, 3), 2, 4, 4), 10, 0) is RoleChange.BECAME_LEADER
    assert p.is_leader and p.leader_epoch_start_offset == 10 and p.high_watermark == 7
    assert p.apply(Registration((1, 2, 3), (1, 2, 3), 1, 3, 3), 10, 0) is RoleChange.NONE
    assert p.is_leader and p.leader_epoch == 4
    assert not p.follower_fetched(4, 10, 10, 0)  # not a replica of the partition
    # The same broker named leader again starts a new epoch: leader afresh, followers' positions unknown.
    p.follower_fetched(3, 10, 10, 0)
    assert p.apply(Registration((1, 2, 3), (2, 3), 2, 5, 5), 10, 0) is RoleChange.BECAME_LEADER
    assert p.followers[3].log_end_offset == -1
