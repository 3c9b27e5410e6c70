"""What the transaction coordinator hands its shell when a transaction ends: the markers
to write. Apart from the coordinator so that the shell that sends them, set up at every
broker's start, does not import the coordinator, which comes with the first transaction."""

from __future__ import annotations

from dataclasses import dataclass

TopicPartition = tuple[str, int]

CONSUMER_OFFSETS_TOPIC = "__consumer_offsets"


@dataclass(frozen=True)
class MarkerRequest:
    """Transaction markers for the shell to write (a WriteTxnMarkers of one entry), and
    to report with `markers_written` once all are written. A partition whose topic is
    gone is skipped, as Kafka skips partitions without a leader."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    commit: bool
    partitions: tuple[tuple[str, int], ...]
    """(topic, partition), the `__consumer_offsets` ones AddOffsetsToTxn added included."""
