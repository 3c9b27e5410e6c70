"""The Jepsen-style checker finds each kind of broken promise in a history."""

from kafkapy.testing.jepsen import History, check
from kafkapy.wire.records import BatchHeader


def history(sent: int, acknowledged: list[int]) -> History:
    h = History(sent=sent)
    h.acknowledged = {seq: (seq % 2, seq // 2) for seq in acknowledged}
    return h


def test_a_faithful_read_passes() -> None:
    verdict = check(history(4, [0, 1, 2]), [(0, 0, b"0"), (0, 1, b"2"), (1, 0, b"1"), (1, 1, b"3")])
    assert verdict.ok, verdict.summary()  # "3" was never acknowledged: it may be there


def test_an_acknowledged_record_missing_is_lost() -> None:
    verdict = check(history(3, [0, 1, 2]), [(0, 0, b"0"), (1, 0, b"1")])
    assert verdict.lost == [2] and not verdict.ok


def test_a_record_read_twice_is_duplicated_even_if_never_acknowledged() -> None:
    verdict = check(history(3, [0]), [(0, 0, b"0"), (0, 1, b"2"), (0, 2, b"2")])
    assert verdict.duplicated == [2] and verdict.lost == []


def test_a_value_never_sent_is_reported() -> None:
    verdict = check(history(2, [0, 1]), [(0, 0, b"0"), (1, 0, b"1"), (1, 1, b"7"), (1, 2, b"junk")])
    assert verdict.unexpected == ["7", "junk"]


def test_a_record_after_a_later_one_in_its_partition_is_out_of_order() -> None:
    verdict = check(history(5, [0, 2, 4]), [(0, 0, b"0"), (0, 1, b"4"), (0, 2, b"2")])
    assert verdict.out_of_order == [(2, 4)] and not verdict.ok


def batch(base_offset: int, records: int, producer_id: int, epoch: int, base_sequence: int) -> BatchHeader:
    return BatchHeader(base_offset=base_offset, batch_length=100, partition_leader_epoch=0, magic=2, crc=0, attributes=0,
                       last_offset_delta=records - 1, base_timestamp=0, max_timestamp=0, producer_id=producer_id,
                       producer_epoch=epoch, base_sequence=base_sequence, records_count=records)


# Partition 0 holds "0", "2", "4" in a batch of producer 7 epoch 0 (sequences 0-2), then
# "2", "4" again at offsets 3 and 4.
READ_TWICE = [(0, 0, b"0"), (0, 1, b"2"), (0, 2, b"4"), (0, 3, b"2"), (0, 4, b"4")]


def test_a_copy_with_the_same_producer_epoch_and_sequence_is_the_brokers_duplicate() -> None:
    h = history(5, [0, 2])
    h.failed = {4}
    # The second copy is the tail of the same batch appended again: the broker should
    # have recognised sequences 1-2 of epoch 0.
    batches = {0: [batch(0, 3, 7, 0, 0), batch(3, 2, 7, 0, 1)]}
    verdict = check(h, READ_TWICE, batches)
    assert verdict.broker_duplicated == [2, 4] and verdict.client_duplicated == [] and not verdict.ok
    first, second = verdict.duplicates
    assert first.kind == "same epoch and sequence" and first.status == "acknowledged" and second.status == "failed"
    assert [(c.partition, c.offset, c.producer_id, c.producer_epoch, c.base_sequence, c.sequence) for c in first.copies] == [
        (0, 1, 7, 0, 0, 1), (0, 3, 7, 0, 1, 1)]
    assert verdict.out_of_order == [(2, 4)]  # the broker's copy counts where it lands


def test_a_copy_sent_again_under_a_bumped_epoch_is_the_clients_and_not_held_against_the_broker() -> None:
    h = history(5, [0, 2, 4])
    # librdkafka bumped the epoch and renumbered what it still held from sequence 0: the
    # broker cannot tell those records from new ones (nor would Kafka).
    batches = {0: [batch(0, 3, 7, 0, 0), batch(3, 2, 7, 1, 0)]}
    verdict = check(h, READ_TWICE, batches)
    assert verdict.client_duplicated == [2, 4] and verdict.broker_duplicated == []
    assert {d.kind for d in verdict.duplicates} == {"another epoch"}
    assert verdict.out_of_order == [] and verdict.ok, verdict.details()
    assert "another epoch" in verdict.details() and "epoch 1 base sequence 0" in verdict.details()


def test_a_copy_from_another_producer_is_the_clients() -> None:
    verdict = check(history(5, [0]), READ_TWICE, {0: [batch(0, 3, 7, 0, 0), batch(3, 2, 8, 0, 0)]})
    assert {d.kind for d in verdict.duplicates} == {"another producer"} and verdict.ok


def test_copies_whose_batches_are_unknown_count_against_the_broker() -> None:
    verdict = check(history(5, [0]), READ_TWICE, {0: [batch(0, 3, 7, 0, 0)]})
    assert verdict.broker_duplicated == [2, 4] and not verdict.ok
    without_producer = check(history(5, [0]), READ_TWICE, {0: [batch(0, 3, -1, -1, -1), batch(3, 2, -1, -1, -1)]})
    assert without_producer.broker_duplicated == [2, 4]


def test_a_clients_copy_does_not_hide_a_real_reordering() -> None:
    read = [(0, 0, b"0"), (0, 1, b"4"), (0, 2, b"2"), (0, 3, b"4")]
    verdict = check(history(5, [0, 2, 4]), read, {0: [batch(0, 1, 7, 0, 0), batch(1, 2, 7, 0, 2), batch(3, 1, 7, 1, 0)]})
    assert verdict.client_duplicated == [4] and verdict.out_of_order == [(2, 4)] and not verdict.ok
