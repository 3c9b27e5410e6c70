"""The crash-consistency checker: its model of what a power failure leaves (on small
traces whose answer is known), the log's durability under it, and a bounded run of the
whole checker (workload, crash states, recovery, invariants; the log cleaner's swaps
among them); benchmarks/crash_states.py
runs many more states."""

import os
import random
from pathlib import Path

import pytest

from helpers import client_batch, crash, open_log, stored_batches
from kafkapy.log.files import fsync_directory, replace_file
from kafkapy.testing.crash.states import CrashState, least_and_most, materialise, random_state
from kafkapy.testing.crash.trace import Op, Recorder, Write


def states_at_end(ops: list[Op], randoms: int = 30) -> list[CrashState]:
    least, most = least_and_most(ops, len(ops))
    rng = random.Random(7)
    return [least, most, *(random_state(ops, len(ops), rng) for _ in range(randoms))]


def built(ops: list[Op], state: CrashState, into: Path) -> Path:
    into.mkdir()
    materialise(ops, state, into)
    return into


def create_and_write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_a_new_file_fsynced_is_lost_until_its_directory_is_fsynced(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with Recorder(root) as recorder:
        create_and_write(root / "f", b"data")
        before = list(recorder.ops)
        fsync_directory(root)
    least, most = least_and_most(before, len(before))
    assert not (built(before, least, tmp_path / "least") / "f").exists()
    assert (built(before, most, tmp_path / "most") / "f").read_bytes() == b"data"
    least_after, _ = least_and_most(recorder.ops, len(recorder.ops))
    assert (built(recorder.ops, least_after, tmp_path / "synced") / "f").read_bytes() == b"data"


def test_unsynced_writes_survive_as_a_prefix_and_the_last_one_may_be_torn(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with Recorder(root) as recorder:
        create_and_write(root / "f", b"aaaa")
        fsync_directory(root)
        fd = os.open(root / "f", os.O_WRONLY)
        os.pwrite(fd, b"bbbb", 4)
        os.pwritev(fd, [b"cc", b"cc"], 8)
        os.close(fd)
    ops = recorder.ops
    last_write = max(i for i, op in enumerate(ops) if isinstance(op, Write))
    seen = {built(ops, state, tmp_path / f"s{i}").joinpath("f").read_bytes() for i, state in enumerate(states_at_end(ops))}
    assert seen <= {b"aaaabbbbcccc"[:n] for n in range(4, 13)}  # never less than was fsynced, never a hole
    assert {b"aaaa", b"aaaabbbbcccc"} <= seen
    torn = CrashState(len(ops), tuple((group, 2) for group in [("file", ops[last_write].inode)]), (last_write, 3))
    assert built(ops, torn, tmp_path / "torn").joinpath("f").read_bytes() == b"aaaabbbbccc"


def test_replace_file_leaves_the_old_content_or_the_new_at_every_crash_point(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with Recorder(root) as recorder:
        replace_file(root / "checkpoint", b"old\n")
        replace_file(root / "checkpoint", b"new\n")
    ops, rng = recorder.ops, random.Random(3)
    first_done = next(i for i, op in enumerate(ops) if i > 0 and op == ops[-1]) + 1  # the first directory fsync
    for point in range(len(ops) + 1):
        for n, state in enumerate([*least_and_most(ops, point), *(random_state(ops, point, rng) for _ in range(5))]):
            path = built(ops, state, tmp_path / f"p{point}-{n}") / "checkpoint"
            allowed = {b"old\n", b"new\n"} if point >= first_done else {None, b"old\n", b"new\n"}
            assert (path.read_bytes() if path.exists() else None) in allowed, state.describe(ops)


def test_a_flushed_partition_log_keeps_its_records_when_unsynced_names_are_lost(tmp_path):
    """Regression: a new partition's directory and a rolled segment's file were never
    fsynced into their directories, so a power failure after the flush that acknowledged
    a record could lose the whole partition, or the records of its newest segment."""
    root = tmp_path / "root"
    root.mkdir()
    with Recorder(root) as recorder:
        log = open_log(root / "topic-0")
        log.append(client_batch(3), 0)
        log.flush(0)
        log.roll(0)
        log.append(client_batch(2), 0)
        log.flush(0)
        crash(log)
    least, _ = least_and_most(recorder.ops, len(recorder.ops))
    recovered = open_log(built(recorder.ops, least, tmp_path / "state") / "topic-0")
    assert [base for base, _ in stored_batches(recovered)] == [0, 3]
    assert recovered.next_offset == 5


@pytest.mark.timeout(120)
def test_bounded_crash_states_of_the_workload_all_recover_whole(tmp_path):
    pytest.importorskip("confluent_kafka")
    from kafkapy.testing.crash.check import check_states
    from kafkapy.testing.crash.states import sample_states
    from kafkapy.testing.crash.workload import clean_points, run_workload

    workload = run_workload(tmp_path / "data", records_per_producer=6)
    assert workload.acked and workload.commits and len(workload.transactions) == 2
    swapping = clean_points(workload.ops)
    assert len(workload.cleaned) == 2 and swapping, "the cleaner swapped cleaned segments in, round after round"
    rng = random.Random(20240601)
    states = list(sample_states(workload.ops, 45, rng))
    # And where a crash leaves a clean's swap half done.
    states += sample_states(workload.ops, 24, rng, swapping)
    states.append(least_and_most(workload.ops, len(workload.ops))[0])
    outcomes = list(check_states(workload, states, tmp_path))
    assert len(outcomes) == 70
    failed = [f"{o.state.describe(workload.ops)}\n" + "\n".join(o.problems) for o in outcomes if o.problems]
    assert not failed, "\n\n".join(failed[:3])


def test_a_flushed_segment_keeps_its_aborted_transactions_when_unsynced_writes_are_lost(tmp_path):
    """Regression: the transaction index was appended to and never fsynced, while the
    producer snapshot a roll takes told recovery not to rebuild it: after a power failure
    read_committed consumers were given the aborted records."""
    from kafkapy.log.transaction_index import AbortedTxn, TransactionIndex

    root = tmp_path / "root"
    root.mkdir()
    entry = AbortedTxn(producer_id=7, first_offset=3, last_offset=5, last_stable_offset=3)
    with Recorder(root) as recorder:
        index = TransactionIndex(root / "00000000000000000000.txnindex")
        index.append(entry)
        index.flush()
    least, _ = least_and_most(recorder.ops, len(recorder.ops))
    recovered = TransactionIndex(built(recorder.ops, least, tmp_path / "state") / "00000000000000000000.txnindex")
    recovered.load()
    assert recovered.entries == [entry]
