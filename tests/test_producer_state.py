import pytest
from kio.schema.errors import ErrorCode

from kafkapy.log.producer_state import ProducerStateError, ProducerStateManager
from kafkapy.wire.records import Record, encode_batch, read_header

PID = 7


def batch(offset, seq, count=1, epoch=0, pid=PID, transactional=False, timestamp=1000):
    records = [Record(offset + i, timestamp, b"k", b"v") for i in range(count)]
    data = encode_batch(records, producer_id=pid, producer_epoch=epoch, base_sequence=seq, transactional=transactional)
    return read_header(data)


def control(offset, epoch=0, pid=PID):
    data = encode_batch([Record(offset, 1000, b"\0\0\0\0", b"\0\0\0\0\0\0")], producer_id=pid, producer_epoch=epoch,
                        transactional=True, control=True)
    return read_header(data)


@pytest.fixture
def state(tmp_path):
    return ProducerStateManager(tmp_path)


def test_in_order_sequences_are_accepted_and_gaps_refused(state):
    state.check([batch(0, 0, count=3)], from_client=True)
    state.apply(batch(0, 0, count=3))
    state.check([batch(3, 3)], from_client=True)
    with pytest.raises(ProducerStateError) as e:
        state.check([batch(3, 5)], from_client=True)
    assert e.value.code == ErrorCode.out_of_order_sequence_number


def test_sequences_of_one_request_are_checked_against_each_other(state):
    state.apply(batch(0, 0))
    state.check([batch(1, 1), batch(2, 2)], from_client=True)
    with pytest.raises(ProducerStateError):
        state.check([batch(1, 1), batch(2, 3)], from_client=True)


def test_a_retried_batch_is_found_among_the_last_five(state):
    for i in range(7):
        state.apply(batch(i * 2, i * 2, count=2))
    found = state.duplicate(batch(99, 8, count=2))
    assert (found.first_offset, found.last_offset) == (8, 9)
    assert state.duplicate(batch(99, 2, count=2)) is None  # older than the last five
    assert state.duplicate(batch(99, 8, count=2, epoch=1)) is None


def test_an_older_epoch_is_fenced(state):
    state.apply(batch(0, 0, epoch=3))
    with pytest.raises(ProducerStateError) as e:
        state.check([batch(1, 1, epoch=2)], from_client=True)
    assert e.value.code == ErrorCode.invalid_producer_epoch


def test_a_new_epoch_must_start_at_sequence_zero(state):
    state.apply(batch(0, 0, epoch=0))
    state.check([batch(1, 0, epoch=1)], from_client=True)
    with pytest.raises(ProducerStateError) as e:
        state.check([batch(1, 5, epoch=1)], from_client=True)
    assert e.value.code == ErrorCode.out_of_order_sequence_number


def test_an_unknown_producer_may_start_anywhere(state):
    # Its state may have been removed by retention or expiry (KIP-360).
    state.check([batch(0, 42)], from_client=True)


def test_transactions_open_and_close_and_move_the_first_unstable_offset(state):
    state.apply(batch(0, 0))
    assert state.first_unstable_offset is None
    state.apply(batch(1, 1, transactional=True))
    state.apply(batch(2, 2, transactional=True))
    state.apply(batch(3, 0, pid=9, transactional=True))
    assert state.first_unstable_offset == 1
    done = state.apply(control(4), marker=(True, 0))
    assert (done.producer_id, done.first_offset, done.last_offset, done.aborted) == (PID, 1, 4, True)
    assert state.first_unstable_offset == 3


def test_plain_writes_inside_an_open_transaction_are_refused(state):
    state.apply(batch(0, 0, transactional=True))
    with pytest.raises(ProducerStateError) as e:
        state.check([batch(1, 1)], from_client=True)
    assert e.value.code == ErrorCode.invalid_txn_state


def test_markers_of_an_older_epoch_or_coordinator_are_refused(state):
    state.apply(batch(0, 0, epoch=2, transactional=True))
    state.apply(control(1, epoch=2), marker=(False, 5))
    with pytest.raises(ProducerStateError) as e:
        state.check_marker(PID, 1, 5)
    assert e.value.code == ErrorCode.invalid_producer_epoch
    with pytest.raises(ProducerStateError) as e:
        state.check_marker(PID, 2, 4)
    assert e.value.code == ErrorCode.transaction_coordinator_fenced


def test_snapshots_round_trip_and_corrupt_ones_are_skipped(state, tmp_path):
    state.apply(batch(0, 0, count=2))
    state.apply(batch(2, 0, pid=9, transactional=True))
    state.take_snapshot()
    state.apply(batch(3, 2))
    state.take_snapshot()
    newest = state.snapshot_path(4)
    newest.write_bytes(newest.read_bytes()[:-1] + b"\xff")
    loaded = ProducerStateManager(tmp_path)
    assert loaded.load_snapshot(at_most=10)
    assert loaded.last_map_offset == 3
    assert not newest.exists()
    assert loaded.producers[PID].last_seq == 1
    assert loaded.first_unstable_offset == 2
    assert loaded.duplicate(batch(99, 0, count=2)).last_offset == 1


def test_idle_producers_expire_unless_in_a_transaction(state):
    state.apply(batch(0, 0, timestamp=1_000))
    state.apply(batch(1, 0, pid=9, transactional=True, timestamp=1_000))
    state.remove_expired(now_ms=100_000, expiration_ms=50_000)
    assert set(state.producers) == {9}


def test_an_open_transaction_of_the_same_epoch_needs_no_verification(state):
    assert not state.has_ongoing_transaction(PID, 0)
    state.apply(batch(0, 0, transactional=True))
    assert state.has_ongoing_transaction(PID, 0)
    assert not state.has_ongoing_transaction(PID, 1)
    state.apply(control(1), (False, 0))
    assert not state.has_ongoing_transaction(PID, 0)


def test_a_verification_guard_is_shared_until_a_batch_or_marker_of_the_producer_drops_it(state):
    guard = state.start_verification(PID, 0, now_ms=1000)
    assert state.start_verification(PID, 0, now_ms=1001) is guard  # a second produce shares the verification
    assert state.verification_guard(PID) is guard
    state.apply(batch(0, 0, transactional=True))  # the transaction began: the guard is spent
    assert state.verification_guard(PID) is None

    late = state.start_verification(PID, 0, now_ms=1002)
    state.apply(control(1), (True, 0))  # the transaction ended while a batch was being verified
    assert state.verification_guard(PID) is None
    assert state.start_verification(PID, 0, now_ms=1003) is not late


def test_verifications_expire_with_idle_producers(state):
    state.start_verification(PID, 0, now_ms=1000)
    state.start_verification(PID + 1, 0, now_ms=5000)
    state.remove_expired(now_ms=6000, expiration_ms=2000)
    assert state.verification_guard(PID) is None
    assert state.verification_guard(PID + 1) is not None
