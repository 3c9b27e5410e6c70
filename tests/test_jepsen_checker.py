"""The Jepsen-style checker finds each kind of broken promise in a history."""

from kafkapy.testing.jepsen import History, check


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
