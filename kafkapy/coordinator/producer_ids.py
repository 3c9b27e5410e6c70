"""Producer ids, handed out from blocks the controller reserves for this broker.

A block is reserved by a committed ProducerIdsRecord, so an id is never given twice,
even across restarts (unused ids of a block are simply skipped).
"""

from __future__ import annotations

from collections.abc import Callable

BLOCK_SIZE = 1000


class ProducerIdManager:
    def __init__(self, reserve_block: Callable[[int], int]) -> None:
        """reserve_block(size) commits a reservation and returns the block's first id."""
        self._reserve_block = reserve_block
        self._next = 0
        self._end = 0

    def generate(self) -> int:
        if self._next >= self._end:
            self._next = self._reserve_block(BLOCK_SIZE)
            self._end = self._next + BLOCK_SIZE
        producer_id = self._next
        self._next += 1
        return producer_id
