"""Producer ids, handed out from blocks the controller reserves for this broker.

A block is reserved by a committed ProducerIdsRecord, so an id is never given twice,
even across restarts (unused ids of a block are simply skipped). Reserving is a round
trip to the controller, so it happens ahead of need, as Kafka's RPCProducerIdManager
does it: the next block is asked for once 90% of the current one is handed out, and
`generate` itself never waits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

BLOCK_SIZE = 1000
_PREFETCH_AT = 0.9


class NoProducerIdAvailable(Exception):
    """No block is here yet: the request is answered with a retriable error, as in Kafka."""


class ProducerIdManager:
    def __init__(self, reserve_block: Callable[[int], Awaitable[int]]) -> None:
        """reserve_block(size) commits a reservation and returns the block's first id."""
        self._reserve_block = reserve_block
        self._next = 0
        self._end = 0
        self._spare: tuple[int, int] | None = None
        self._reserving = anyio.Lock()

    def generate(self) -> int:
        if self._next >= self._end:
            if self._spare is None:
                raise NoProducerIdAvailable("no block of producer ids has been reserved yet")
            (self._next, self._end), self._spare = self._spare, None
        producer_id = self._next
        self._next += 1
        return producer_id

    @property
    def has_ids(self) -> bool:
        return self._next < self._end or self._spare is not None

    @property
    def wants_block(self) -> bool:
        """Whether a block should be reserved now: none is spare and the current one is mostly used."""
        used = 1 - (self._end - self._next) / BLOCK_SIZE
        return self._spare is None and used >= _PREFETCH_AT

    async def reserve_if_wanted(self) -> None:
        """Reserves the next block when it is wanted; concurrent callers share one reservation."""
        async with self._reserving:
            if self.wants_block:
                first = await self._reserve_block(BLOCK_SIZE)
                self._spare = (first, first + BLOCK_SIZE)
