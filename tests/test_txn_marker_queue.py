"""The sans-IO queue of transaction markers: routed to each partition's leader of the
moment, retried and dropped as Kafka's TransactionMarkerChannelManager does, complete
once every partition has its marker."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from kafkapy.coordinator.txn_marker_queue import NO_LEADER, MarkerEntry, TxnMarkerQueue
from kafkapy.coordinator.txn_markers import MarkerRequest

E = ErrorCode
A0, A1, B0 = ("a", 0), ("a", 1), ("b", 0)


def marker(transactional_id: str = "t", producer_id: int = 7, partitions: tuple = (A0, A1, B0)) -> MarkerRequest:
    return MarkerRequest(transactional_id, producer_id, 3, 5, True, partitions)


def routed(requests: dict[int, list[MarkerEntry]]) -> dict[int, set[tuple[str, int]]]:
    return {broker: {tp for entry in entries for tp in entry.partitions} for broker, entries in requests.items()}


def test_markers_are_batched_per_leader_and_the_transaction_completes_with_the_last_partition():
    queue = TxnMarkerQueue()
    queue.add(marker())
    queue.add(marker("u", 8, (A0,)))
    requests, completed = queue.requests({A0: 1, A1: 2, B0: 1}.get)
    assert completed == []
    assert routed(requests) == {1: {A0, B0}, 2: {A1}}
    assert len(requests[1]) == 2  # one entry per transaction, in one request to broker 1
    assert queue.requests({A0: 1, A1: 2, B0: 1}.get) == ({}, [])  # in flight: not sent twice

    done = queue.answered(requests[1], {7: {A0: E.none, B0: E.none}, 8: {A0: E.none}})
    assert done == [marker("u", 8, (A0,))]
    assert queue.answered(requests[2], {7: {A1: E.none}}) == [marker()]
    assert len(queue) == 0


def test_a_partition_without_a_leader_waits_and_a_gone_one_is_dropped():
    queue = TxnMarkerQueue()
    queue.add(marker())
    requests, _ = queue.requests({A0: NO_LEADER, A1: 2, B0: None}.get)
    assert routed(requests) == {2: {A1}}
    assert queue.answered(requests[2], {7: {A1: E.none}}) == []
    assert queue.has_unsent
    requests, _ = queue.requests({A0: 3}.get)
    assert routed(requests) == {3: {A0}}
    assert queue.answered(requests[3], {7: {A0: E.none}}) == [marker()]


def test_retriable_errors_go_again_to_the_leader_of_then():
    queue = TxnMarkerQueue()
    queue.add(marker(partitions=(A0, A1)))
    requests, _ = queue.requests({A0: 1, A1: 1}.get)
    assert queue.answered(requests[1], {7: {A0: E.not_leader_or_follower, A1: E.none}}) == []
    requests, _ = queue.requests({A0: 2, A1: 1}.get)
    assert routed(requests) == {2: {A0}}
    # A deleted topic answers UNKNOWN_TOPIC_OR_PARTITION; the retry finds it gone and ends.
    assert queue.answered(requests[2], {7: {A0: E.unknown_topic_or_partition}}) == []
    assert queue.requests({}.get) == ({}, [marker(partitions=(A0, A1))])


def test_an_unreachable_broker_sends_its_markers_back_to_the_queue():
    queue = TxnMarkerQueue()
    queue.add(marker(partitions=(A0,)))
    requests, _ = queue.requests({A0: 1}.get)
    queue.unreachable(requests[1])
    assert queue.has_unsent
    requests, _ = queue.requests({A0: 2}.get)
    assert queue.answered(requests[2], {7: {A0: E.none}}) == [marker(partitions=(A0,))]


def test_a_fenced_marker_gives_the_transaction_up():
    for fenced in (E.invalid_producer_epoch, E.transaction_coordinator_fenced):
        queue = TxnMarkerQueue()
        queue.add(marker())
        requests, _ = queue.requests({A0: 1, A1: 2, B0: 1}.get)
        assert queue.answered(requests[1], {7: {A0: fenced, B0: E.none}}) == []
        assert len(queue) == 0
        # The other broker's late answer changes nothing.
        assert queue.answered(requests[2], {7: {A1: E.none}}) == []


def test_a_partition_that_cannot_hold_a_marker_counts_as_done():
    queue = TxnMarkerQueue()
    queue.add(marker(partitions=(A0, A1)))
    requests, _ = queue.requests({A0: 1, A1: 1}.get)
    assert queue.answered(requests[1], {7: {A0: E.unsupported_for_message_format, A1: E.none}}) == [
        marker(partitions=(A0, A1))]


def test_an_answer_for_markers_replaced_since_is_ignored():
    queue = TxnMarkerQueue()
    first = marker(partitions=(A0,))
    queue.add(first)
    requests, _ = queue.requests({A0: 1}.get)
    again = MarkerRequest("t", 7, 4, 5, False, (A0,))  # the transaction's markers, written again after a reload
    queue.add(again)
    assert queue.answered(requests[1], {7: {A0: E.none}}) == []
    requests, _ = queue.requests({A0: 1}.get)
    assert queue.answered(requests[1], {7: {A0: E.none}}) == [again]
    assert first != again
