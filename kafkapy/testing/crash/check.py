"""Recovery on a crash state, and the invariants it must keep.

Recovery is the broker's own: a BrokerServer started in this process on the state's
directory (logs recovered, metadata log and snapshots loaded, coordinators loaded from
their topics, transactions left prepared completed), then killed. What it recovered is
read from its objects, not over the network: the partitions' batches, the image's
topics, the group coordinator's committed offsets and the transaction coordinator's
transactions.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from ...config import BrokerConfig
from ...coordinator.transaction_metadata import TransactionState
from ...log.files import StorageError
from ...log.swaps import CLEANED_SUFFIX, SWAP_SUFFIX
from ...server import BrokerServer
from ...wire.records import CONTROL_COMMIT, control_type, decode_records
from .states import CrashState, materialise
from .workload import BROKER_SETTINGS, COMPACTED, DOOMED, GROUP, PLAIN, RETAINED, Acked, Workload

_RECOVERY_TIMEOUT_S = 30.0
_SETTLED_POLL_S = 0.01
_UNFINISHED = (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT)
_DATA_TOPICS = (PLAIN, RETAINED, DOOMED, COMPACTED)
# What a clean leaves midway (Kafka's CleanedFileSuffix and SwapFileSuffix): recovery
# finishes or drops each, so none may be left once a log is open.
_HALF_SWAPPED = (CLEANED_SUFFIX, SWAP_SUFFIX)


@dataclass
class PartitionData:
    log_start: int
    end: int
    records: list[tuple[int, bytes | None, int, bool]] = field(default_factory=list)
    """(offset, value, producer id, transactional) of each data record."""
    markers: list[tuple[int, int, bool]] = field(default_factory=list)
    """(offset, producer id, commit) of each transaction marker."""
    aborted_index: list[tuple[int, int, int]] = field(default_factory=list)
    """(producer id, first offset, last offset) of each aborted transaction read_committed fetches are told of."""
    keys: dict[int, bytes | None] = field(default_factory=dict)
    """The key of each data record, by offset."""
    files: list[str] = field(default_factory=list)
    """The names in the partition's directory once its log was open."""

    def fates(self) -> dict[bytes | None, str]:
        """Each value's fate as a read_committed consumer sees it: "plain", "committed",
        "aborted" or "open" (a transaction with no marker after it yet)."""
        fates: dict[bytes | None, str] = {}
        for offset, value, producer_id, transactional in self.records:
            if not transactional:
                fates[value] = "plain"
                continue
            marker = next((commit for at, pid, commit in self.markers if pid == producer_id and at > offset), None)
            fates[value] = "open" if marker is None else "committed" if marker else "aborted"
        return fates


@dataclass
class Recovered:
    topics: set[str]
    partitions: dict[tuple[str, int], PartitionData]
    offsets: dict[tuple[str, int], int]
    transactions: dict[str, tuple[TransactionState, int, set[tuple[str, int]]]]


def _config(data_dir: Path) -> BrokerConfig:
    # No cleaner: what recovery left in the partition directories stays as it left it.
    return BrokerConfig({**BROKER_SETTINGS, "listeners": "PLAINTEXT://127.0.0.1:0", "log.dirs": str(data_dir),
                         "log.cleaner.enable": False})


async def _recover(data_dir: Path) -> Recovered:
    server = BrokerServer(_config(data_dir))
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(_RECOVERY_TIMEOUT_S):
            await tg.start(server.run)
            broker = server.broker
            assert broker is not None
            groups, transactions = broker.groups, broker.transactions
            # Loaded, and every transaction found prepared has had its markers written.
            while not (all(runtime.is_active(0) or not runtime.topic_ready() for runtime in (groups, transactions))
                       and not any(t.state in _UNFINISHED for t in transactions.coordinator.transactions.values())):
                await anyio.sleep(_SETTLED_POLL_S)
        partitions = {}
        for tp, log in broker.replicas.logs.logs.items():
            if tp.topic not in _DATA_TOPICS:
                continue
            data = PartitionData(log.log_start_offset, log.next_offset, files=sorted(p.name for p in log.directory.iterdir()))
            for header, batch in log.iter_batches(log.log_start_offset):
                for record in decode_records(batch, header):
                    if header.is_control:
                        data.markers.append((record.offset, header.producer_id, control_type(record) == CONTROL_COMMIT))
                    else:
                        data.records.append((record.offset, record.value, header.producer_id, header.is_transactional))
                        data.keys[record.offset] = record.key
            data.aborted_index = [(t.producer_id, t.first_offset, t.last_offset)
                                  for t in log.aborted_transactions(log.log_start_offset, log.next_offset)]
            partitions[(tp.topic, tp.partition)] = data
        offsets = {(topic, partition): committed.committed_offset
                   for topic, by_partition in groups.coordinator.offsets.of_group(GROUP).items()
                   for partition, committed in by_partition.items()}
        recovered = Recovered(
            set(broker.metadata.image.topics), partitions, offsets,
            {tid: (t.state, t.producer_id, {(tp[0], tp[1]) for tp in t.partitions})
             for tid, t in transactions.coordinator.transactions.items()},
        )
        server.kill()
    return recovered


def violations(workload: Workload, state: CrashState, recovered: Recovered) -> list[str]:
    """What the recovered broker lost or made up, given what was acknowledged before the crash."""
    point = state.crash_point
    found: list[str] = []
    deleted = {name for _, mark, name in workload.deleted if mark <= point}
    deleting = {name for requested, _, name in workload.deleted if requested <= point}
    for mark, name in workload.created:
        if mark <= point and name not in deleting and name not in recovered.topics:
            found.append(f"topic {name} was created (acknowledged at {mark}) and is gone")
    for name in deleted:
        if name in recovered.topics:
            found.append(f"topic {name} was deleted and is back")
    for acked in workload.acked:
        data = recovered.partitions.get((acked.topic, acked.partition))
        if acked.mark > point or acked.topic in deleted:
            continue
        if data is None:
            found.append(f"partition {acked.topic}-{acked.partition} is gone, with acknowledged offset {acked.offset}")
            continue
        if acked.offset < data.log_start:
            continue  # deleted by retention
        if acked.topic == COMPACTED:
            found += _compacted_violation(acked, data)
            continue
        value = next((v for o, v, _, _ in data.records if o == acked.offset), None)
        if value != acked.value:
            found.append(f"{acked.topic}-{acked.partition} offset {acked.offset} (acknowledged at {acked.mark}): "
                         f"{acked.value!r} expected, found {value!r}")
    for (topic, partition), data in recovered.partitions.items():
        values = [v for _, v, _, _ in data.records if v is not None]  # tombstones all look alike
        twice = {v for v in values if values.count(v) > 1}
        if twice:
            found.append(f"{topic}-{partition} holds these twice: {sorted(map(repr, twice))}")
        offsets = [o for o, _, _, _ in data.records]
        if any(later <= earlier for earlier, later in zip(offsets, offsets[1:], strict=False)):
            found.append(f"{topic}-{partition} has offsets out of order or twice: {offsets}")
        half_swapped = [name for name in data.files if name.endswith(_HALF_SWAPPED)]
        if half_swapped:
            found.append(f"{topic}-{partition} keeps half-swapped segment files after recovery: {half_swapped}")
    latest: dict[tuple[str, int], int] = {}
    for mark, topic, partition, offset in workload.commits:
        if mark <= point:
            latest[(topic, partition)] = offset
    for tp, offset in latest.items():
        if recovered.offsets.get(tp, -1) < offset:
            found.append(f"group offset of {tp} was committed as {offset}, recovered as {recovered.offsets.get(tp)}")
    for tp, offset in recovered.offsets.items():
        data = recovered.partitions.get(tp)
        if data is not None and offset > data.end:
            found.append(f"group offset of {tp} is {offset}, past the end of its data ({data.end})")
    found += _transaction_violations(workload, point, recovered)
    return found


def _compacted_violation(acked: Acked, data: PartitionData) -> list[str]:
    """An acknowledged record of a compacted topic may be cleaned away only for a later
    record of its key; otherwise it, value or tombstone, is there as acknowledged."""
    if any(key == acked.key and offset > acked.offset for offset, key in data.keys.items()):
        return []
    value = next((v for o, v, _, _ in data.records if o == acked.offset), b"<missing>")
    if acked.offset in data.keys and data.keys[acked.offset] == acked.key and value == acked.value:
        return []
    return [f"{acked.topic}-{acked.partition} key {acked.key!r}: its latest acknowledged record, offset "
            f"{acked.offset} (at {acked.mark}), {acked.value!r} expected, found {value!r} and no later record of the key"]


def _transaction_violations(workload: Workload, point: int, recovered: Recovered) -> list[str]:
    found = []
    fates: dict[bytes | None, str] = {}
    for data in recovered.partitions.values():
        fates.update(data.fates())
    for txn in workload.transactions:
        for record in txn.records:
            fate = fates.get(record.value)
            if txn.committed and txn.mark <= point and fate != "committed":
                found.append(f"{record.value!r} of a transaction committed at {txn.mark} is {fate or 'missing'}")
            if not txn.committed and fate == "committed":
                found.append(f"{record.value!r} of an aborted transaction is committed")
    ongoing = {(pid, tp) for state, pid, tps in recovered.transactions.values() if state == TransactionState.ONGOING
               for tp in tps}
    for tp, data in recovered.partitions.items():
        for offset, value, producer_id, transactional in data.records:
            if fates.get(value) == "aborted" and not any(
                    pid == producer_id and first <= offset <= last for pid, first, last in data.aborted_index):
                found.append(f"{tp} offset {offset} was aborted, and the transaction index does not say so: "
                             "read_committed consumers get it")
            if transactional and fates.get(value) == "open" and (producer_id, tp) not in ongoing:
                found.append(f"{tp} offset {offset} is in a transaction of producer {producer_id} that "
                             "the coordinator does not have open: it will never end")
    return found


def _leaf(error: BaseException) -> str:
    """The error that stopped recovery, out of the task groups it crossed, and where it was raised."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    place = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return f"{type(error).__name__}: {error}{place}"


@dataclass
class Outcome:
    state: CrashState
    problems: list[str]


def check_state(workload: Workload, state: CrashState, scratch: Path) -> Outcome:
    """Materialises the state, recovers it and checks it."""
    directory = Path(tempfile.mkdtemp(prefix="state-", dir=scratch))
    try:
        materialise(workload.ops, state, directory)
        try:
            recovered = anyio.run(_recover, directory)
        except StorageError as e:
            if any(mark <= state.crash_point for mark, _ in workload.created):
                return Outcome(state, [f"recovery refused to start: {e}"])
            return Outcome(state, [])  # nothing acknowledged yet: refusing is allowed
        except Exception as e:  # noqa: BLE001 - any failure to recover is what we report
            return Outcome(state, [f"recovery failed: {_leaf(e)}"])
        return Outcome(state, violations(workload, state, recovered))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def check_states(workload: Workload, states: Iterable[CrashState], scratch: Path) -> Iterator[Outcome]:
    quiet = logging.getLogger("kafkapy")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # recovery's warnings about torn tails are expected, by the thousand
    try:
        for state in states:
            yield check_state(workload, state, scratch)
    finally:
        quiet.setLevel(level)

