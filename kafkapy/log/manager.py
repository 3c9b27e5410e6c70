"""The partition logs of this node, spread over its log directories.

Keeps Kafka's on-disk conventions: one directory per partition named topic-partition,
checkpoint files for recovery points and log start offsets, a clean-shutdown marker,
deleted partitions renamed to a `-delete` directory and removed after a delay so that
reads already under way finish from the open files, and partitions the metadata does not
assign here (stray) renamed to a `-stray` directory and kept.
"""

from __future__ import annotations

import base64
import logging
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .config import LogConfig
from .files import CheckpointError, StorageError, fsync_directory, read_checkpoint_file, replace_file
from .partition import PartitionLog
from .segment import OpenSegmentFiles

if TYPE_CHECKING:
    from .cleaner import LogToClean

CLEAN_SHUTDOWN = ".kafka_cleanshutdown"
RECOVERY_POINTS = "recovery-point-offset-checkpoint"
LOG_START_OFFSETS = "log-start-offset-checkpoint"
CLEANER_OFFSETS = "cleaner-offset-checkpoint"
HIGH_WATERMARKS = "replication-offset-checkpoint"
PARTITION_METADATA = "partition.metadata"
DELETE_SUFFIX = "-delete"
STRAY_SUFFIX = "-stray"
_MAX_FILE_NAME = 255
METADATA_PARTITION = ("__cluster_metadata", 0)

# Named apart from the many local variables called log (a partition's).
_logger = logging.getLogger(__name__)


class TopicPartition(NamedTuple):
    # A tuple rather than a frozen dataclass: it keys the dictionaries of every produce
    # and fetch, and a tuple is built and hashed in C.
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


def read_checkpoint(path: Path) -> dict[TopicPartition, int]:
    """A per-partition offset checkpoint; raises CheckpointError if it is malformed."""
    def entry(fields: list[str]) -> tuple[TopicPartition, int]:
        topic, partition, offset = fields
        if not topic:
            raise ValueError("no topic")
        return TopicPartition(topic, int(partition)), int(offset)

    return dict(read_checkpoint_file(path, entry))


def read_checkpoint_or_rebuild(path: Path, rebuilt_how: str) -> dict[TopicPartition, int]:
    """A checkpoint Kafka does without when it cannot read it: logged, and empty."""
    try:
        return read_checkpoint(path)
    except CheckpointError as e:
        _logger.warning("Ignoring an unreadable checkpoint, %s; %s", e, rebuilt_how)
        return {}


def write_checkpoint(path: Path, entries: dict[TopicPartition, int]) -> None:
    lines = ["0", str(len(entries))] + [f"{tp.topic} {tp.partition} {o}" for tp, o in sorted(entries.items())]
    replace_file(path, ("\n".join(lines) + "\n").encode())


def parse_partition_dir(name: str) -> TopicPartition | None:
    topic, sep, partition = name.rpartition("-")
    if not sep or not partition.isdigit() or not topic:
        return None
    return TopicPartition(topic, int(partition))


def set_aside_name(tp: TopicPartition, suffix: str) -> str:
    """`topic-partition.<random id>suffix`, Kafka's name for a partition directory set
    aside (deleted, or stray); the topic is cut short for the name to fit a file name."""
    tail = f"-{tp.partition}.{uuid.uuid4().hex}{suffix}"
    return tp.topic[: _MAX_FILE_NAME - len(tail)] + tail


def kafka_uuid(value: uuid.UUID) -> str:
    """A Uuid as Kafka prints it: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


class LogManager:
    def __init__(self, dirs: list[Path], max_open_segment_files: int | None = None) -> None:
        """`max_open_segment_files` bounds the files of segments other than the active ones
        that every log together keeps open (None: no bound)."""
        self.dirs = [Path(d) for d in dirs]
        self.open_segment_files = OpenSegmentFiles(max_open_segment_files) if max_open_segment_files is not None else None
        # Log directories taken offline by an I/O error (what failed), and the partitions
        # they held: as Kafka, they stay offline until a restart, whatever the error was.
        self.offline_dirs: dict[Path, str] = {}
        self.offline_partitions: dict[TopicPartition, Path] = {}
        # Told of each directory going offline, with the partitions it held.
        self.dir_failure_listeners: list[Callable[[Path, list[TopicPartition]], None]] = []
        self.logs: dict[TopicPartition, PartitionLog] = {}
        self._dir_of: dict[TopicPartition, Path] = {}
        # How many partitions each directory holds, kept with _dir_of: a new partition goes
        # to the least loaded one without counting them all again (10,000 partitions).
        self._partitions_in: Counter[Path] = Counter()
        self._pending_deletes: list[tuple[int, Path, PartitionLog]] = []
        self.clean_shutdown = True
        self._recovery_points: dict[TopicPartition, int] = {}
        self._log_start_offsets: dict[TopicPartition, int] = {}
        self._high_watermarks: dict[TopicPartition, int] = {}
        self._found: dict[TopicPartition, Path] = {}
        # Per log directory: where the last clean of each compacted partition stopped.
        self._cleaner_offsets: dict[Path, dict[TopicPartition, int]] = {d: {} for d in self.dirs}
        self._cleaning: dict[TopicPartition, PartitionLog] = {}
        self._uncleanable: set[TopicPartition] = set()

    def startup(self) -> None:
        """Looks at the directories: which partitions exist, and whether the last stop was clean."""
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
            marker = d / CLEAN_SHUTDOWN
            if marker.exists():
                marker.unlink()
            elif any(self._partition_dirs(d)):
                self.clean_shutdown = False
            # As Kafka: without recovery points an unclean stop recovers every segment, and
            # without log start offsets each log starts at its first segment; but high
            # watermarks it cannot read take the log directory offline.
            self._recovery_points.update(read_checkpoint_or_rebuild(
                d / RECOVERY_POINTS, "logs not stopped cleanly are recovered from their first segment"))
            self._log_start_offsets.update(read_checkpoint_or_rebuild(
                d / LOG_START_OFFSETS, "each log starts at its first segment"))
            self._cleaner_offsets[d] = read_checkpoint_or_rebuild(
                d / CLEANER_OFFSETS, "compacted logs are cleaned from their start")
            try:
                self._high_watermarks.update(read_checkpoint(d / HIGH_WATERMARKS))
            except CheckpointError as e:
                raise StorageError(
                    f"the high watermarks of {d} cannot be read ({e}). Restore the file, or delete it to start every "
                    "partition's high watermark at its log start offset (consumers see records again as replicas "
                    "confirm them)") from None
            for child in d.iterdir():
                if child.is_dir() and child.name.endswith(DELETE_SUFFIX):
                    shutil.rmtree(child, ignore_errors=True)
            for tp, path in self._partition_dirs(d):
                self._found[tp] = path

    @staticmethod
    def _partition_dirs(d: Path) -> Iterator[tuple[TopicPartition, Path]]:
        for child in d.iterdir():
            if child.is_dir():
                tp = parse_partition_dir(child.name)
                if tp is not None:
                    yield tp, child

    def existing(self) -> set[TopicPartition]:
        """Partitions that have a directory on disk, opened or not (the metadata log aside)."""
        return (set(self._found) | set(self.logs)) - {TopicPartition(*METADATA_PARTITION)}

    def has_directory(self, tp: TopicPartition) -> bool:
        return tp in self._found or tp in self.logs

    def get(self, tp: TopicPartition) -> PartitionLog | None:
        return self.logs.get(tp)

    @property
    def online_dirs(self) -> list[Path]:
        return [d for d in self.dirs if d not in self.offline_dirs]

    def fail_dir(self, directory: Path, error: OSError, during: str) -> None:
        """Takes a log directory offline after an I/O error in it, as Kafka's
        LogDirFailureChannel and handleLogDirFailure do: its logs are closed where they
        are (nothing more is written or fsynced there: a failed fsync is never retried,
        for the pages it covered may be gone), their partitions are offline, and the
        listeners are told. The other directories go on serving."""
        if directory in self.offline_dirs:
            return
        self.offline_dirs[directory] = f"{during}: {error}"
        lost = sorted(tp for tp, d in self._dir_of.items() if d == directory)
        lost += sorted(tp for tp, path in self._found.items() if path.parent == directory)
        _logger.error("Log directory %s is offline: %s failed (%s). Its %d partition(s) answer KAFKA_STORAGE_ERROR "
                      "until a restart; the other log directories are still served", directory, during, error, len(lost))
        for tp in lost:
            self._found.pop(tp, None)
            self._forget_dir_of(tp)
            self._uncleanable.discard(tp)
            log = self.logs.pop(tp, None)
            if log is not None:
                log.abandon()
            self.offline_partitions[tp] = directory
        for _, _, log in [entry for entry in self._pending_deletes if entry[1].parent == directory]:
            log.abandon()
        self._pending_deletes = [entry for entry in self._pending_deletes if entry[1].parent != directory]
        for listener in self.dir_failure_listeners:
            listener(directory, lost)

    def open(self, tp: TopicPartition, config: LogConfig, now_ms: int, topic_id: uuid.UUID | None = None) -> PartitionLog:
        """The partition's log: loaded (and recovered) from disk, or created empty."""
        log = self.logs.get(tp)
        if log is not None:
            return log
        directory = self._found.pop(tp, None)
        if directory is None:
            directory = self._least_loaded_dir() / str(tp)
        try:
            return self._open_in(directory, tp, config, now_ms, topic_id)
        except OSError as e:
            self._found[tp] = directory  # offline with the rest of its directory
            self.fail_dir(directory.parent, e, f"opening {tp}")
            raise

    def _open_in(self, directory: Path, tp: TopicPartition, config: LogConfig, now_ms: int, topic_id: uuid.UUID | None) -> PartitionLog:
        log = PartitionLog.open(
            directory,
            config,
            now_ms,
            log_start_offset=self._log_start_offsets.get(tp, 0),
            recovery_point=self._recovery_points.get(tp, 0),
            clean_shutdown=self.clean_shutdown,
            open_files=self.open_segment_files,
        )
        if tp != TopicPartition(*METADATA_PARTITION):
            # As Kafka: the checkpointed high watermark, or 0 when there is none, so a
            # restart neither exposes records never committed nor hides committed ones.
            log.high_watermark = min(max(self._high_watermarks.get(tp, 0), log.log_start_offset), log.next_offset)
        if topic_id is not None:
            meta = directory / PARTITION_METADATA
            if not meta.exists():
                replace_file(meta, f"version: 0\ntopic_id: {kafka_uuid(topic_id)}\n".encode())
        self.logs[tp] = log
        self._forget_dir_of(tp)
        self._dir_of[tp] = directory.parent
        self._partitions_in[directory.parent] += 1
        return log

    def _forget_dir_of(self, tp: TopicPartition) -> None:
        directory = self._dir_of.pop(tp, None)
        if directory is not None:
            self._partitions_in[directory] -= 1

    def dir_of(self, tp: TopicPartition) -> Path | None:
        return self._dir_of.get(tp)

    def _least_loaded_dir(self) -> Path:
        online = self.online_dirs
        if not online:
            raise StorageError(f"every log directory is offline: {', '.join(map(str, self.dirs))}")
        return min(online, key=lambda d: self._partitions_in[d])

    def topic_id_on_disk(self, tp: TopicPartition) -> str | None:
        """The topic id in the partition.metadata of a partition not yet opened, as Kafka
        prints it; None when there is none."""
        directory = self._found.get(tp)
        try:
            text = (directory / PARTITION_METADATA).read_text() if directory else ""
        except FileNotFoundError:
            return None
        fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        return fields.get("topic_id")

    def set_aside_stray(self, tp: TopicPartition) -> tuple[Path, Path]:
        """Renames a partition directory not yet opened to a `-stray` one, as Kafka does
        with a log the metadata does not assign to this node, and forgets it: it is kept
        for an operator to look at, never deleted. Returns (old path, new path)."""
        directory = self._found.pop(tp)
        self._forget(tp, directory.parent)
        stray = directory.with_name(set_aside_name(tp, STRAY_SUFFIX))
        directory.rename(stray)
        fsync_directory(directory.parent)
        return directory, stray

    def _forget(self, tp: TopicPartition, log_dir: Path) -> None:
        """Drops what the checkpoints said of a partition going away, so that a new one
        of the same name starts from nothing."""
        for offsets in (self._recovery_points, self._log_start_offsets, self._high_watermarks):
            offsets.pop(tp, None)
        cleaner_offsets = self._cleaner_offsets.get(log_dir, {})
        if cleaner_offsets.pop(tp, None) is not None:
            write_checkpoint(log_dir / CLEANER_OFFSETS, cleaner_offsets)

    def delete(self, tp: TopicPartition, now_ms: int, delay_ms: int) -> None:
        """Renames the partition away at once and removes its files after delay_ms."""
        log = self.logs.pop(tp, None)
        self._forget_dir_of(tp)
        self._uncleanable.discard(tp)
        directory = log.directory if log else self._found.pop(tp, None)
        if directory is None:
            return
        self._forget(tp, directory.parent)
        graveyard = directory.with_name(set_aside_name(tp, DELETE_SUFFIX))
        if log is not None and tp in self._cleaning:
            # The clean under way reads its segments in a worker thread: their files stay
            # open, for a file closed while idle could not be found by its old name again.
            for segment in log.segments:
                segment.keep_open_within(None)
        directory.rename(graveyard)
        if log is not None:
            log.directory = graveyard
            for segment in log.segments:
                segment.directory = graveyard
            self._pending_deletes.append((now_ms + delay_ms, graveyard, log))
        else:
            shutil.rmtree(graveyard, ignore_errors=True)

    def expire_producers(self, now_ms: int, expiration_ms: int) -> None:
        """Forgets idle producers in every log (producer.id.expiration.ms)."""
        for log in self.logs.values():
            log.producers.remove_expired(now_ms, expiration_ms)

    def enforce_retention(self, now_ms: int) -> int:
        """Deletes the segments retention says must go, in every log but those being
        cleaned (the next pass gets them); returns how many."""
        deleted = 0
        for tp, log in list(self.logs.items()):
            if tp == TopicPartition(*METADATA_PARTITION) or tp in self._cleaning or self.logs.get(tp) is not log:
                continue
            expired = log.expired_segments(now_ms)
            try:
                log.delete_segments(expired, now_ms)
            except OSError as e:
                self.fail_dir(log.directory.parent, e, f"deleting segments of {tp} (retention)")
                continue
            deleted += len(expired)
        return deleted

    def remove_deleted(self, now_ms: int, force: bool = False) -> None:
        """Removes the files of deleted partitions and segments whose delay has passed."""
        for tp, log in list(self.logs.items()):
            try:
                log.remove_retired(now_ms, force)
            except OSError as e:
                self.fail_dir(log.directory.parent, e, f"removing deleted segments of {tp}")
        keep = []
        cleaning = [id(log) for log in self._cleaning.values()]
        for due, path, log in self._pending_deletes:
            # A clean under way still reads the files: they go once it is done.
            if force or (due <= now_ms and id(log) not in cleaning):
                for segment in log.segments:
                    segment.close()
                shutil.rmtree(path, ignore_errors=True)
            else:
                keep.append((due, path, log))
        self._pending_deletes = keep

    # Cleaning

    def grab_filthiest_compacted_log(self, now_ms: int) -> tuple[TopicPartition, LogToClean] | None:
        """The compacted log most in need of cleaning, now marked as being cleaned (until
        done_cleaning): retention leaves it alone meanwhile, and a deleted partition's
        files stay until the clean lets go of them."""
        candidates = [
            (tp, log, self._cleaner_offsets[self._dir_of[tp]].get(tp))
            for tp, log in self.logs.items()
            if log.config.compact and tp not in self._cleaning and tp not in self._uncleanable
            and tp != TopicPartition(*METADATA_PARTITION)
        ]
        if not candidates:
            return None
        # Imported at the first compacted log: a broker without one (no consumer group, no
        # transaction, no compacted topic yet) does without the cleaner.
        from .cleaner import filthiest

        picked = filthiest(candidates, now_ms)
        if picked is not None:
            self._cleaning[picked[0]] = picked[1].log
        return picked

    def done_cleaning(self, tp: TopicPartition, log: PartitionLog, end_offset: int | None) -> None:
        """Ends a clean of log: the next one starts at end_offset, written to the log
        directory's cleaner-offset-checkpoint. None for a clean that failed: as Kafka
        does, the partition is not cleaned again (until a restart)."""
        if self._cleaning.get(tp) is log:
            del self._cleaning[tp]
        if self.logs.get(tp) is not log:
            return  # deleted meanwhile
        if end_offset is None:
            self._uncleanable.add(tp)
            return
        directory = self._dir_of[tp]
        self._cleaner_offsets[directory][tp] = end_offset
        write_checkpoint(directory / CLEANER_OFFSETS, self._cleaner_offsets[directory])

    def checkpoint(self) -> None:
        """Writes each online directory's recovery points and log start offsets; a
        directory where that fails goes offline."""
        for d in self.online_dirs:
            in_dir = {tp: log for tp, log in self.logs.items() if self._dir_of.get(tp) == d}
            try:
                write_checkpoint(d / RECOVERY_POINTS, {tp: log.recovery_point for tp, log in in_dir.items()})
                write_checkpoint(d / LOG_START_OFFSETS, {tp: log.log_start_offset for tp, log in in_dir.items()})
            except OSError as e:
                self.fail_dir(d, e, "writing the recovery point and log start offset checkpoints")

    def high_watermark_checkpoints(self) -> list[tuple[Path, dict[TopicPartition, int]]]:
        """Each log directory's high watermarks as of now, to be written off the event loop
        with write_checkpoint (every replica.high.watermark.checkpoint.interval.ms)."""
        metadata = TopicPartition(*METADATA_PARTITION)
        return [(d / HIGH_WATERMARKS, {tp: log.high_watermark for tp, log in self.logs.items()
                                        if self._dir_of.get(tp) == d and tp != metadata}) for d in self.online_dirs]

    def abandon(self) -> None:
        """Lets go of every log as a killed process would: no flush, no checkpoint, no
        clean-shutdown marker, so the next start recovers."""
        for log in self.logs.values():
            log.abandon()
        self.logs.clear()

    def shutdown(self) -> None:
        """Flushes and closes every log, writes checkpoints and the clean-shutdown marker."""
        for path, entries in self.high_watermark_checkpoints():
            try:
                write_checkpoint(path, entries)
            except OSError as e:
                self.fail_dir(path.parent, e, "writing the high watermark checkpoint")
        for tp, log in list(self.logs.items()):
            try:
                log.close()
            except OSError as e:
                self.fail_dir(log.directory.parent, e, f"flushing and closing {tp}")
                continue
            log.recovery_point = log.next_offset
        self.checkpoint()
        self.remove_deleted(0, force=True)
        # An offline directory gets no marker: the next start recovers its logs.
        for d in self.online_dirs:
            (d / CLEAN_SHUTDOWN).touch()
        self.logs.clear()
