"""What bounds the connections a broker serves and the request bytes it holds, as Kafka's
ConnectionQuotas and request memory pool do. Plain counting: the accept loops and the
connections ask and report; waiting is theirs."""

from __future__ import annotations

from collections.abc import Mapping


class ConnectionQuotas:
    """max.connections (broker-wide: a connection over it waits to be accepted) and
    max.connections.per.ip with its overrides (a connection over it is closed at once).
    The protected listener, the inter-broker one when there are several, is exempt from
    the broker-wide limit so that replication never waits behind clients."""

    def __init__(self, max_connections: int, max_per_ip: int, per_ip_overrides: Mapping[str, int]) -> None:
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.per_ip_overrides = dict(per_ip_overrides)
        self.total = 0
        self._per_ip: dict[str, int] = {}

    def slot_available(self, protected_listener: bool) -> bool:
        return protected_listener or self.total < self.max_connections

    def admit(self, address: str) -> bool:
        """Counts a newly accepted connection from address, unless that address already
        has as many as it may (then it is refused and not counted)."""
        count = self._per_ip.get(address, 0)
        if count >= self.limit_for(address):
            return False
        self._per_ip[address] = count + 1
        self.total += 1
        return True

    def released(self, address: str) -> None:
        count = self._per_ip[address] - 1
        if count:
            self._per_ip[address] = count
        else:
            del self._per_ip[address]
        self.total -= 1

    def limit_for(self, address: str) -> int:
        return self.per_ip_overrides.get(address, self.max_per_ip)


class RequestMemory:
    """queued.max.request.bytes: bytes of requests read and not yet answered. Like Kafka's
    pool it is not strict: while any memory is left a frame may take all it declares,
    which lets a request as large as socket.request.max.bytes through; once none is left,
    connections stop reading new requests until some is released."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.available = capacity

    @property
    def exhausted(self) -> bool:
        return self.available <= 0

    def take(self, n: int) -> None:
        self.available -= n

    def release(self, n: int) -> bool:
        """Returns True when this release ends an exhaustion: readers waiting may go on."""
        was_exhausted = self.exhausted
        self.available += n
        return was_exhausted and not self.exhausted
