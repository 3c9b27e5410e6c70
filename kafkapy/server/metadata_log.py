"""How every node keeps its metadata log (KIP-630), whichever quorum holds it: the
settings read from Kafka's keys, and the task that writes a snapshot when one is due and
then deletes the log it covers as retention allows."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio

from ..clock import Clock
from ..config import BrokerConfig
from ..log.config import LogConfig
from ..metadata.manager import MetadataManager, SnapshotPolicy
from ..raft.local import MetadataLogFailure
from ..raft.retention import MetadataRetention

log = logging.getLogger(__name__)

# Kafka's SnapshotGenerator looks at each commit; a poll this often is close enough for
# thresholds measured in megabytes and hours.
_SNAPSHOT_CHECK_S = 0.5


@dataclass(frozen=True)
class MetadataLogSettings:
    policy: SnapshotPolicy
    retention: MetadataRetention
    log_config: LogConfig


def metadata_log_settings(config: BrokerConfig) -> MetadataLogSettings:
    return MetadataLogSettings(
        SnapshotPolicy(
            max_bytes=config.int("metadata.log.max.record.bytes.between.snapshots"),
            max_interval_ms=config.int("metadata.log.max.snapshot.interval.ms"),
        ),
        MetadataRetention(config.int("metadata.max.retention.bytes"), config.int("metadata.max.retention.ms")),
        # As Kafka's KafkaMetadataLog: the log's own retention is off; snapshots drive it.
        LogConfig(segment_bytes=config.int("metadata.log.segment.bytes"), segment_ms=config.int("metadata.log.segment.ms"),
                  retention_ms=-1, retention_bytes=-1),
    )


async def take_metadata_snapshots(metadata: MetadataManager, clock: Clock) -> None:
    """A task of its own, so that a long snapshot write never holds up anything else."""
    while True:
        await anyio.sleep(_SNAPSHOT_CHECK_S)
        await snapshot_if_due(metadata, clock)


async def snapshot_if_due(metadata: MetadataManager, clock: Clock) -> None:
    """Writes a metadata snapshot when one is due (the quorum serialises the image and
    writes the file in a worker thread), then cleans what it covers."""
    job = metadata.snapshot_due(clock.wall_ms())
    if job is None:
        return
    try:
        # Shielded: a stop waits for the file rather than leaving a partial one.
        with anyio.CancelScope(shield=True):
            written = await metadata.write_snapshot(job)
    except MetadataLogFailure:
        return  # the node halts; the failure was logged where it happened
    except Exception:
        log.exception("Writing metadata snapshot %s failed", job.snapshot_id)
        return
    if written:
        log.info("Wrote metadata snapshot %s", job.snapshot_id)
        await metadata.clean_log(clock.wall_ms())
