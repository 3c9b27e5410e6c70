"""Planning a consumer group's offset reset, as Kafka's kafka-consumer-groups.sh plans it:
the new offset of each partition from its log start and end offsets, the group's committed
offset and, to a timestamp, the offset the broker found for it. Pure: the console asks
the cluster for the inputs, shows the plan as a preview, and commits it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum


class ResetStrategy(str, Enum):
    EARLIEST = "earliest"
    LATEST = "latest"
    TIMESTAMP = "timestamp"
    OFFSET = "offset"
    SHIFT = "shift"


@dataclass(frozen=True)
class PartitionPosition:
    log_start_offset: int
    log_end_offset: int
    committed: int | None
    offset_at_timestamp: int | None = None
    """The first offset with a timestamp at or after the reset's timestamp; None when no record has one."""


@dataclass(frozen=True)
class PlannedOffset:
    topic: str
    partition: int
    current: int | None
    new: int
    clamped: bool
    """The offset asked for was outside the partition's [log start, log end] and was brought within."""


class ResetPlanError(ValueError):
    """A reset that cannot be planned (shifting a partition that has no committed offset)."""


def plan_reset(strategy: ResetStrategy, positions: Mapping[tuple[str, int], PartitionPosition],
               amount: int = 0) -> list[PlannedOffset]:
    """The new offset of each partition. `amount` is the offset of OFFSET and the (signed)
    shift of SHIFT. Offsets outside a partition's range are clamped into it, as Kafka's
    tool does (out of range, a consumer would only fall back to auto.offset.reset)."""
    plan = []
    for (topic, partition), position in sorted(positions.items()):
        if strategy is ResetStrategy.EARLIEST:
            wanted = position.log_start_offset
        elif strategy is ResetStrategy.LATEST:
            wanted = position.log_end_offset
        elif strategy is ResetStrategy.OFFSET:
            wanted = amount
        elif strategy is ResetStrategy.TIMESTAMP:
            # No record at or after the timestamp: the consumer starts at the end, as with Kafka's tool.
            found = position.offset_at_timestamp
            wanted = position.log_end_offset if found is None or found < 0 else found
        else:
            if position.committed is None:
                raise ResetPlanError(f"cannot shift the offset of {topic}-{partition}: the group has no committed offset there")
            wanted = position.committed + amount
        new = min(max(wanted, position.log_start_offset), position.log_end_offset)
        plan.append(PlannedOffset(topic, partition, position.committed, new, new != wanted))
    return plan
