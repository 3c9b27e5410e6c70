"""A follower's decisions on what its leader answers, sans-IO (Kafka's
AbstractFetcherThread): where to cut its log when the leader reports a diverging epoch,
what to keep of a fetched records set, where to go on when its fetch offset is out of
the leader's range."""

from __future__ import annotations

from dataclasses import dataclass

from ..log.leader_epochs import UNDEFINED, LeaderEpochCache
from ..wire.records import iter_headers


def truncation_offset(
    diverging_epoch: int, diverging_end_offset: int, epochs: LeaderEpochCache, log_end: int, high_watermark: int,
) -> int:
    """Where a follower truncates when the leader says its log for `diverging_epoch` ends
    at `diverging_end_offset` (KIP-320). When the follower knows that epoch, both logs
    agree below the smaller of the two ends; when it knows only earlier epochs, it cuts
    at the end of its largest one below, and its next fetch (from that epoch) tells
    whether more must go."""
    if diverging_end_offset == UNDEFINED:
        return min(high_watermark, log_end)
    if diverging_epoch == UNDEFINED:
        return min(diverging_end_offset, log_end)
    epoch, end_offset = epochs.end_offset_for(diverging_epoch, log_end)
    if epoch == UNDEFINED:
        return min(diverging_end_offset, log_end)
    if epoch != diverging_epoch:
        return min(end_offset, log_end)
    return min(end_offset, diverging_end_offset, log_end)


def whole_batches(records: bytes) -> bytes:
    """The complete batches a fetched records set begins with: the leader may cut the
    last one short at the fetch's size limit."""
    end = 0
    for position, header in iter_headers(records):
        end = position + header.size
    return records if end == len(records) else records[:end]


@dataclass(frozen=True)
class OutOfRange:
    """What a follower does when the leader answers OFFSET_OUT_OF_RANGE (Kafka's
    handleOutOfRangeError): `truncate_to` (its log runs past the leader's end) or
    `restart_at` (the leader's log now starts past its end); neither when the fetch may
    simply be tried again."""

    truncate_to: int | None = None
    restart_at: int | None = None


def out_of_range(log_end: int, leader_start: int, leader_end: int) -> OutOfRange:
    if leader_end < log_end:
        return OutOfRange(truncate_to=leader_end)
    if log_end < leader_start:
        return OutOfRange(restart_at=leader_start)
    return OutOfRange()
