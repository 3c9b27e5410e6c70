"""Where new partitions' replicas go: distinct brokers, leaders spread evenly, racks
covered before any rack holds two replicas of a partition."""

from __future__ import annotations

from collections import Counter

import pytest

from kafkapy.metadata.image import BrokerImage, Endpoint
from kafkapy.metadata.placement import place_replicas, rack_alternated


def brokers(racks: dict[int, str | None]) -> list[BrokerImage]:
    return [BrokerImage(b, (Endpoint("PLAINTEXT", "127.0.0.1", 9090 + b),), rack, False, 0) for b, rack in racks.items()]


def test_the_ring_alternates_racks() -> None:
    ring = rack_alternated(brokers({1: "a", 2: "a", 3: "b", 4: "b", 5: "c"}))
    assert [b.node_id for b in ring] == [1, 3, 5, 2, 4]


@pytest.mark.parametrize("start", [0, 1, 4])
def test_leaders_spread_evenly_and_replicas_are_distinct(start: int) -> None:
    assignment = place_replicas(brokers({1: None, 2: None, 3: None, 4: None}), range(8), 3, start)
    assert sorted(assignment) == list(range(8))
    assert all(len(set(r)) == 3 for r in assignment.values())
    assert Counter(r[0] for r in assignment.values()) == {1: 2, 2: 2, 3: 2, 4: 2}
    # A broker's partitions do not all have the same followers.
    assert len({tuple(r[1:]) for r in assignment.values() if r[0] == 1}) == 2


def test_every_partition_covers_as_many_racks_as_it_has_replicas() -> None:
    cluster = brokers({1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "c"})
    racks = {b.node_id: b.rack for b in cluster}
    for partition, replicas in place_replicas(cluster, range(12), 3, 0).items():
        assert len({racks[r] for r in replicas}) == 3, (partition, replicas)
    for replicas in place_replicas(cluster, range(12), 5, 2).values():
        # Five replicas on three racks: no rack holds more than two.
        assert max(Counter(racks[r] for r in replicas).values()) == 2


def test_a_partition_range_continues_the_wheel() -> None:
    cluster = brokers({1: None, 2: None, 3: None})
    whole = place_replicas(cluster, range(6), 2, 1)
    assert {**place_replicas(cluster, range(3), 2, 1), **place_replicas(cluster, range(3, 6), 2, 1)} == whole
