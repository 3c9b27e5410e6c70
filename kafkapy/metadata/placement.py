"""Where a new partition's replicas go, roughly as Kafka's StripedReplicaPlacer puts them:
leaders go round the brokers, each partition's replicas on distinct brokers and, when
brokers name racks, on as many racks as there are replicas before any rack holds two."""

from __future__ import annotations

from collections.abc import Sequence

from .image import BrokerImage


def rack_alternated(brokers: Sequence[BrokerImage]) -> list[BrokerImage]:
    """The brokers taken one rack at a time (racks in name order, brokers in id order
    within a rack), so that neighbours in the list are on different racks."""
    by_rack: dict[str, list[BrokerImage]] = {}
    for broker in sorted(brokers, key=lambda b: b.node_id):
        by_rack.setdefault(broker.rack or "", []).append(broker)
    racks = [by_rack[r] for r in sorted(by_rack)]
    alternated = []
    for i in range(max(len(r) for r in racks)):
        alternated += [rack[i] for rack in racks if i < len(rack)]
    return alternated


def place_replicas(
    brokers: Sequence[BrokerImage], partitions: range, factor: int, start: int,
) -> dict[int, list[int]]:
    """Replica lists for `partitions` over `brokers` (at least `factor` of them), the first
    replica of each being its preferred leader. `start` turns the wheel, so that topics do
    not all put their first leader on the same broker."""
    ring = rack_alternated(brokers)
    count = len(ring)
    assignment = {}
    for p in partitions:
        first = (start + p) % count
        # Each pass over the ring moves the followers along by one more, so a broker's
        # partitions do not all share the same followers.
        shift = 1 + ((start + p) // count) % max(count - 1, 1)
        order = [ring[(first + shift + k) % count] for k in range(count)]
        chosen = [ring[first]]
        racks_used = {ring[first].rack}
        while len(chosen) < factor:
            remaining = [b for b in order if b not in chosen]
            fresh = [b for b in remaining if b.rack not in racks_used]
            if not fresh:  # every rack that has a broker left holds a replica: start another round
                racks_used, fresh = set(), remaining
            chosen.append(fresh[0])
            racks_used.add(fresh[0].rack)
        assignment[p] = [b.node_id for b in chosen]
    return assignment
