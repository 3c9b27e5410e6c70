"""The sans-IO transaction coordinator, driven as the broker's shell would drive it, with a
FakeClock. Requests are real kio entities of the version asked for; every reply is built
into the kio response of that version and encoded, and every record is decoded back."""

from __future__ import annotations

import datetime
from typing import Any

import anyio
import pytest
from kio.schema.errors import ErrorCode

from group_harness import Token, encodes
from kafkapy.clock import FakeClock
from kafkapy.config import BrokerConfig
from kafkapy.coordinator.java_hash import java_string_hash
from kafkapy.coordinator.producer_ids import ProducerIdManager
from kafkapy.coordinator.records.framing import encode_key
from kafkapy.coordinator.records.transaction_state import (
    TransactionLogKey,
    TransactionLogValue,
    TransactionTopicPartitions,
    decode_transaction_log_key,
    decode_transaction_log_value,
    encode_transaction_log_key,
    encode_transaction_log_value,
)
from kafkapy.coordinator.transaction_coordinator import TransactionCoordinator, TxnResult
from kafkapy.coordinator.transaction_metadata import TransactionState
from kafkapy.coordinator.txn_markers import MarkerRequest
from kafkapy.wire.build import build
from kafkapy.wire.protocol import request_type

E = ErrorCode
S = TransactionState

INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN = 22, 24, 25, 26
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 65, 66

NUM_PARTITIONS = 50
FIRST_PRODUCER_ID = 1000
BLOCK_SIZE = 1000
TIMEOUT_MS = 60_000
ABORT_CHECK_MS = 10_000  # Kafka's default transaction.abort.timed.out.transaction.cleanup.interval.ms
ID_EXPIRATION_CHECK_MS = 3_600_000
START_WALL_MS = 1_700_000_000_000
OFFSETS_PARTITION = 7
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

Partitions = dict[str, list[int]]


class Harness:
    def __init__(self, config: dict[str, object] | None = None) -> None:
        self.clock = FakeClock(wall_ms=START_WALL_MS)
        self.config = BrokerConfig(config or {})
        self.blocks_reserved = 0
        self.coordinator = self._new_coordinator()
        self.records: list[tuple[int, bytes, bytes | None]] = []
        self.replies: dict[Token, dict[str, Any]] = {}
        self.markers: list[MarkerRequest] = []
        self.last = TxnResult()

    def _new_coordinator(self) -> TransactionCoordinator:
        self.producer_ids = ProducerIdManager(self._reserve_block)
        return TransactionCoordinator(self.config, self.clock, NUM_PARTITIONS, self.producer_ids)

    async def _reserve_block(self, size: int) -> int:
        # The controller never hands out a block twice, across restarts too.
        first = FIRST_PRODUCER_ID + self.blocks_reserved * size
        self.blocks_reserved += 1
        return first

    # Plumbing

    def apply(self, result: TxnResult) -> TxnResult:
        for partition, key, value in result.records:
            transactional_id = decode_transaction_log_key(key).transactional_id
            assert partition == self.coordinator.partition_for(transactional_id)
            if value is not None:
                assert value[:2] == b"\x00\x00", "Kafka writes version 0 values at transaction.version 0"
                decode_transaction_log_value(value)
        self.records.extend(result.records)
        for token, response in result.replies:
            assert isinstance(token, Token)
            assert token not in self.replies, f"{token} answered twice"
            encodes(token.api_key, token.version, response)
            self.replies[token] = response
        self.markers.extend(result.markers)
        self.last = result
        return result

    def _call(self, api_key: int, version: int, name: str, invoke: Any) -> dict[str, Any]:
        token = Token(api_key, version, name)
        self.apply(invoke(token))
        assert token in self.replies, f"{token} was not answered at once"
        return self.replies[token]

    def tick(self, advance_ms: int = 0) -> TxnResult:
        self.clock.advance(advance_ms)
        return self.apply(self.coordinator.tick())

    def write_markers(self) -> list[MarkerRequest]:
        """Writes every pending marker, as the shell would, and reports each."""
        written, self.markers = self.markers, []
        for marker in written:
            self.apply(self.coordinator.markers_written(marker))
        return written

    def restart(self) -> TxnResult:
        """A new coordinator loaded from the records written so far, as after a broker
        restart; markers not reported yet are forgotten."""
        self.markers = []
        self.coordinator = self._new_coordinator()
        for partition, key, value in self.records:
            self.coordinator.replay(partition, key, value)
        loaded = TxnResult()
        for partition in range(NUM_PARTITIONS):
            result = self.apply(self.coordinator.loaded(partition))
            loaded.records += result.records
            loaded.replies += result.replies
            loaded.markers += result.markers
        return loaded

    def replay_value(self, transactional_id: str, value: TransactionLogValue) -> None:
        self.coordinator.replay(self.coordinator.partition_for(transactional_id),
                                encode_transaction_log_key(TransactionLogKey(transactional_id=transactional_id)),
                                encode_transaction_log_value(value))

    def values(self, transactional_id: str) -> list[TransactionLogValue | None]:
        """The values written for a transactional id, in order (None for a tombstone)."""
        return [decode_transaction_log_value(value) for _, key, value in self.records
                if decode_transaction_log_key(key).transactional_id == transactional_id]

    def last_value(self, transactional_id: str) -> TransactionLogValue | None:
        return self.values(transactional_id)[-1]

    def state(self, transactional_id: str) -> str:
        return self.coordinator.transactions[transactional_id].state.value

    # Requests

    def init(self, transactional_id: str, *, timeout_ms: int = TIMEOUT_MS, version: int = 5, producer_id: int = -1,
             producer_epoch: int = -1, **extra: Any) -> dict[str, Any]:
        request = build(request_type(INIT_PRODUCER_ID, version), {
            "transactional_id": transactional_id, "transaction_timeout": timeout_ms, "producer_id": producer_id,
            "producer_epoch": producer_epoch, **extra,
        })
        # As the InitProducerId handler: a block of ids is reserved ahead of need.
        anyio.run(self.producer_ids.reserve_if_wanted)
        return self._call(INIT_PRODUCER_ID, version, f"init {transactional_id}",
                          lambda token: self.coordinator.init_producer_id(version, request, token))

    def begin(self, transactional_id: str, **kwargs: Any) -> tuple[int, int]:
        response = self.init(transactional_id, **kwargs)
        assert response["error_code"] is E.none
        return response["producer_id"], response["producer_epoch"]

    def add(self, transactional_id: str, producer_id: int, producer_epoch: int, partitions: Partitions, *,
            version: int = 3, partition_errors: dict[tuple[str, int], ErrorCode] | None = None,
            ) -> dict[tuple[str, int], ErrorCode]:
        request = build(request_type(ADD_PARTITIONS_TO_TXN, version), {
            "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": producer_id,
            "v3_and_below_producer_epoch": producer_epoch,
            "v3_and_below_topics": [{"name": t, "partitions": ps} for t, ps in partitions.items()],
        })
        response = self._call(ADD_PARTITIONS_TO_TXN, version, f"add {transactional_id}",
                              lambda token: self.coordinator.add_partitions_to_txn(version, request, token, partition_errors))
        return _partition_errors(response["results_by_topic_v3_and_below"])

    def add_batch(self, transactions: list[dict[str, Any]], *, version: int = 5,
                  partition_errors: dict[tuple[str, int], ErrorCode] | None = None,
                  ) -> list[tuple[str, dict[tuple[str, int], ErrorCode]]]:
        """AddPartitionsToTxn v4+: (transactional id, {(topic, partition): error}) per transaction."""
        request = build(request_type(ADD_PARTITIONS_TO_TXN, version), {"transactions": [
            {**t, "topics": [{"name": name, "partitions": ps} for name, ps in t["topics"].items()]} for t in transactions
        ]})
        response = self._call(ADD_PARTITIONS_TO_TXN, version, "add batch",
                              lambda token: self.coordinator.add_partitions_to_txn(version, request, token, partition_errors))
        assert response["error_code"] is E.none
        return [(r["transactional_id"], _partition_errors(r["topic_results"])) for r in response["results_by_transaction"]]

    def add_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int, *, version: int = 3,
                    group_partition: int = OFFSETS_PARTITION) -> ErrorCode:
        request = build(request_type(ADD_OFFSETS_TO_TXN, version), {
            "transactional_id": transactional_id, "producer_id": producer_id, "producer_epoch": producer_epoch,
            "group_id": "group",
        })
        response = self._call(ADD_OFFSETS_TO_TXN, version, f"add offsets {transactional_id}",
                              lambda token: self.coordinator.add_offsets_to_txn(version, request, token, group_partition))
        return response["error_code"]

    def end(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool, *,
            version: int = 3) -> dict[str, Any]:
        request = build(request_type(END_TXN, version), {
            "transactional_id": transactional_id, "producer_id": producer_id, "producer_epoch": producer_epoch,
            "committed": commit,
        })
        return self._call(END_TXN, version, f"end {transactional_id}",
                          lambda token: self.coordinator.end_txn(version, request, token))

    def end_error(self, *args: Any, **kwargs: Any) -> ErrorCode:
        return self.end(*args, **kwargs)["error_code"]

    def describe(self, *transactional_ids: str) -> list[dict[str, Any]]:
        request = build(request_type(DESCRIBE_TRANSACTIONS, 0), {"transactional_ids": list(transactional_ids)})
        response = self.coordinator.describe_transactions(0, request)
        encodes(DESCRIBE_TRANSACTIONS, 0, response)
        return response["transaction_states"]

    def list(self, *, version: int = 2, **filters: Any) -> dict[str, Any]:
        request = build(request_type(LIST_TRANSACTIONS, version), filters)
        response = self.coordinator.list_transactions(version, request)
        encodes(LIST_TRANSACTIONS, version, response)
        return response

    def listed(self, **kwargs: Any) -> dict[str, tuple[str, int]]:
        """{transactional id: (state, producer id)}."""
        response = self.list(**kwargs)
        assert response["error_code"] is E.none
        return {t["transactional_id"]: (t["transaction_state"], t["producer_id"]) for t in response["transaction_states"]}

    # Whole flows

    def open_transaction(self, transactional_id: str, partitions: Partitions, **init_kwargs: Any) -> tuple[int, int]:
        producer_id, epoch = self.begin(transactional_id, **init_kwargs)
        assert set(self.add(transactional_id, producer_id, epoch, partitions).values()) == {E.none}
        return producer_id, epoch


def _partition_errors(topic_results: list[dict[str, Any]]) -> dict[tuple[str, int], ErrorCode]:
    return {(t["name"], p["partition_index"]): p["partition_error_code"] for t in topic_results
            for p in t["results_by_partition"]}


def log_value(producer_id: int, epoch: int, state: TransactionState, *, partitions: Partitions | None = None,
              timeout_ms: int = TIMEOUT_MS, updated_ms: int = START_WALL_MS, started_ms: int = -1) -> TransactionLogValue:
    """A TransactionLogValue as Kafka writes it: null partitions exactly when Empty."""
    topics = None if state is S.EMPTY else tuple(
        TransactionTopicPartitions(topic=t, partition_ids=tuple(ps)) for t, ps in sorted((partitions or {}).items())
    )
    return TransactionLogValue(producer_id=producer_id, producer_epoch=epoch, transaction_timeout_ms=timeout_ms,
                               transaction_status=state.status, transaction_partitions=topics,
                               transaction_last_update_timestamp_ms=updated_ms, transaction_start_timestamp_ms=started_ms)


# Routing


def test_partition_for_is_kafkas_abs_of_java_hash_code():
    h = Harness()
    assert h.coordinator.partition_for("hello") == 99162322 % NUM_PARTITIONS
    assert java_string_hash("orders") == -1008770331
    assert h.coordinator.partition_for("orders") == 1008770331 % NUM_PARTITIONS
    # Utils.abs maps Integer.MIN_VALUE to 0.
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert h.coordinator.partition_for("polygenelubricants") == 0


# InitProducerId


@pytest.mark.parametrize("version", range(0, 7))
def test_init_producer_id_for_a_new_transactional_id_records_an_empty_transaction(version):
    h = Harness()
    response = h.init("tx", version=version, timeout_ms=30_000)
    assert response == {"throttle_time": 0, "error_code": E.none, "producer_id": FIRST_PRODUCER_ID, "producer_epoch": 0,
                        "ongoing_txn_producer_id": -1, "ongoing_txn_producer_epoch": -1}
    assert h.values("tx") == [log_value(FIRST_PRODUCER_ID, 0, S.EMPTY, timeout_ms=30_000)]
    assert h.state("tx") == "Empty"


def test_init_producer_id_again_bumps_the_epoch_and_takes_the_new_timeout():
    h = Harness()
    assert h.begin("tx") == (FIRST_PRODUCER_ID, 0)
    h.clock.advance(5)
    assert h.begin("tx", timeout_ms=20_000) == (FIRST_PRODUCER_ID, 1)
    assert h.last_value("tx") == log_value(FIRST_PRODUCER_ID, 1, S.EMPTY, timeout_ms=20_000, updated_ms=START_WALL_MS + 5)
    # Each transactional id has its own producer id.
    assert h.begin("other") == (FIRST_PRODUCER_ID + 1, 0)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"transactional_id": ""}, E.invalid_request),
    ({"timeout_ms": 0}, E.invalid_transaction_timeout),
    ({"timeout_ms": -1}, E.invalid_transaction_timeout),
    ({"timeout_ms": 900_001}, E.invalid_transaction_timeout),  # above transaction.max.timeout.ms
    ({"producer_id": 5}, E.invalid_request),  # a producer id without its epoch
    ({"producer_epoch": 5}, E.invalid_request),
    ({"version": 6, "enable2_pc": True}, E.transactional_id_authorization_failed),
    ({"version": 6, "keep_prepared_txn": True}, E.unsupported_version),
])
def test_init_producer_id_refuses_invalid_requests_without_writing(kwargs, error):
    h = Harness()
    transactional_id = kwargs.pop("transactional_id", "tx")
    response = h.init(transactional_id, **kwargs)
    assert (response["error_code"], response["producer_id"], response["producer_epoch"]) == (error, -1, -1)
    assert h.records == []
    assert h.coordinator.transactions == {}


def test_the_largest_timeout_allowed_is_transaction_max_timeout_ms():
    h = Harness({"transaction.max.timeout.ms": 1_000})
    assert h.init("tx", timeout_ms=1_001)["error_code"] is E.invalid_transaction_timeout
    assert h.begin("tx", timeout_ms=1_000) == (FIRST_PRODUCER_ID, 0)


# A whole transaction


def test_commit_goes_ongoing_prepare_commit_complete_commit():
    h = Harness()
    producer_id, epoch = h.begin("tx")
    h.clock.advance(100)
    started_ms = h.clock.wall_ms()
    assert h.add("tx", producer_id, epoch, {"a": [0, 1]}) == {("a", 0): E.none, ("a", 1): E.none}
    assert h.last_value("tx") == log_value(producer_id, epoch, S.ONGOING, partitions={"a": [0, 1]},
                                           updated_ms=started_ms, started_ms=started_ms)

    # Partitions already in the transaction: answered at once, nothing recorded.
    records_before = len(h.records)
    assert h.add("tx", producer_id, epoch, {"a": [1]}) == {("a", 1): E.none}
    assert len(h.records) == records_before

    h.clock.advance(100)
    assert h.add("tx", producer_id, epoch, {"b": [3]}) == {("b", 3): E.none}
    assert h.add_offsets("tx", producer_id, epoch) is E.none
    assert h.last_value("tx") == log_value(producer_id, epoch, S.ONGOING, partitions={
        "__consumer_offsets": [OFFSETS_PARTITION], "a": [0, 1], "b": [3]}, updated_ms=h.clock.wall_ms(), started_ms=started_ms)

    # EndTxn is answered with its PrepareCommit, before any marker is written.
    h.clock.advance(100)
    response = h.end("tx", producer_id, epoch, commit=True, version=5)
    assert response == {"throttle_time": 0, "error_code": E.none, "producer_id": producer_id, "producer_epoch": epoch}
    assert h.last.replies and [decode_transaction_log_value(v).transaction_status for _, _, v in h.last.records] == [
        S.PREPARE_COMMIT.status]
    assert h.last_value("tx") == log_value(producer_id, epoch, S.PREPARE_COMMIT, partitions={
        "__consumer_offsets": [OFFSETS_PARTITION], "a": [0, 1], "b": [3]}, updated_ms=h.clock.wall_ms(), started_ms=started_ms)
    assert h.markers == [MarkerRequest("tx", producer_id, epoch, 0, True,
                                       (("__consumer_offsets", OFFSETS_PARTITION), ("a", 0), ("a", 1), ("b", 3)))]
    assert h.state("tx") == "PrepareCommit"

    h.clock.advance(100)
    h.write_markers()
    assert h.last_value("tx") == log_value(producer_id, epoch, S.COMPLETE_COMMIT, partitions={},
                                           updated_ms=h.clock.wall_ms(), started_ms=started_ms)
    assert h.state("tx") == "CompleteCommit"
    assert h.markers == []

    # The next transaction of the same producer starts afresh.
    h.clock.advance(100)
    assert h.add("tx", producer_id, epoch, {"c": [0]}) == {("c", 0): E.none}
    assert h.last_value("tx") == log_value(producer_id, epoch, S.ONGOING, partitions={"c": [0]},
                                           updated_ms=h.clock.wall_ms(), started_ms=h.clock.wall_ms())


def test_abort_goes_ongoing_prepare_abort_complete_abort():
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"a": [0]})
    assert h.end_error("tx", producer_id, epoch, False) is E.none
    assert h.last_value("tx").transaction_status == S.PREPARE_ABORT.status
    assert h.markers == [MarkerRequest("tx", producer_id, epoch, 0, False, (("a", 0),))]
    h.write_markers()
    assert h.last_value("tx") == log_value(producer_id, epoch, S.COMPLETE_ABORT, partitions={},
                                           started_ms=START_WALL_MS)
    # A new session from CompleteAbort goes back to Empty.
    assert h.begin("tx") == (producer_id, epoch + 1)
    assert h.state("tx") == "Empty"


def test_a_transaction_without_partitions_completes_without_markers():
    h = Harness()
    producer_id, epoch = h.begin("tx")
    assert h.add("tx", producer_id, epoch, {}) == {}
    assert h.state("tx") == "Ongoing"
    assert h.end_error("tx", producer_id, epoch, True) is E.none
    assert [v.transaction_status for v in h.values("tx")] == [
        S.EMPTY.status, S.ONGOING.status, S.PREPARE_COMMIT.status, S.COMPLETE_COMMIT.status]
    assert h.markers == []
    assert h.state("tx") == "CompleteCommit"


def test_pending_markers_answer_concurrent_transactions():
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"a": [0]})
    assert h.end_error("tx", producer_id, epoch, True) is E.none
    records_before = len(h.records)
    assert h.add("tx", producer_id, epoch, {"a": [1]}) == {("a", 1): E.concurrent_transactions}
    assert h.add_offsets("tx", producer_id, epoch) is E.concurrent_transactions
    assert h.init("tx")["error_code"] is E.concurrent_transactions
    assert h.init("tx", producer_id=producer_id, producer_epoch=epoch)["error_code"] is E.concurrent_transactions
    # A retried EndTxn waits too; the opposite outcome is a state error.
    assert h.end_error("tx", producer_id, epoch, True) is E.concurrent_transactions
    assert h.end_error("tx", producer_id, epoch, False) is E.invalid_txn_state
    assert len(h.records) == records_before

    h.write_markers()
    assert h.add("tx", producer_id, epoch, {"a": [1]}) == {("a", 1): E.none}


@pytest.mark.parametrize("commit", [True, False])
def test_end_txn_retried_after_completion_is_answered_none(commit):
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"a": [0]})
    assert h.end_error("tx", producer_id, epoch, commit) is E.none
    h.write_markers()
    records_before = len(h.records)
    response = h.end("tx", producer_id, epoch, commit, version=5)
    assert (response["error_code"], response["producer_id"], response["producer_epoch"]) == (E.none, producer_id, epoch)
    assert h.end_error("tx", producer_id, epoch, not commit) is E.invalid_txn_state
    assert len(h.records) == records_before and h.markers == []


def test_end_txn_errors():
    h = Harness()
    producer_id, epoch = h.begin("tx")
    # Nothing was added: there is no transaction to end.
    response = h.end("tx", producer_id, epoch, True, version=5)
    assert (response["error_code"], response["producer_id"], response["producer_epoch"]) == (E.invalid_txn_state, -1, -1)
    assert h.end_error("", producer_id, epoch, True) is E.invalid_request
    assert h.end_error("unknown", producer_id, epoch, True) is E.invalid_producer_id_mapping
    assert h.end_error("tx", producer_id + 1, epoch, True) is E.invalid_producer_id_mapping
    h.add("tx", producer_id, epoch, {"a": [0]})
    for version in (2, 3, 4, 5):
        assert h.end_error("tx", producer_id, epoch + 1, True, version=version) is E.producer_fenced
    for version in (0, 1):
        assert h.end_error("tx", producer_id, epoch + 1, True, version=version) is E.invalid_producer_epoch
    assert h.state("tx") == "Ongoing"


def test_add_partitions_errors_answer_every_partition():
    h = Harness()
    producer_id, epoch = h.begin("tx")
    records_before = len(h.records)
    partitions = {"a": [0, 1], "b": [2]}
    for transactional_id, pid, error in [("", producer_id, E.invalid_request),
                                         ("unknown", producer_id, E.invalid_producer_id_mapping),
                                         ("tx", producer_id + 1, E.invalid_producer_id_mapping)]:
        assert h.add(transactional_id, pid, epoch, partitions) == dict.fromkeys([("a", 0), ("a", 1), ("b", 2)], error)
    for version, error in [(0, E.invalid_producer_epoch), (1, E.invalid_producer_epoch), (2, E.producer_fenced),
                           (3, E.producer_fenced)]:
        assert set(h.add("tx", producer_id, epoch - 1, partitions, version=version).values()) == {error}
    assert len(h.records) == records_before
    assert h.state("tx") == "Empty"


def test_add_offsets_adds_the_groups_offsets_partition():
    h = Harness()
    producer_id, epoch = h.begin("tx")
    assert h.add_offsets("tx", producer_id, epoch, group_partition=3) is E.none
    assert h.coordinator.transactions["tx"].partitions == {("__consumer_offsets", 3)}
    assert h.state("tx") == "Ongoing"
    records_before = len(h.records)
    assert h.add_offsets("tx", producer_id, epoch, group_partition=3) is E.none
    assert len(h.records) == records_before
    assert h.add_offsets("other", producer_id, epoch) is E.invalid_producer_id_mapping
    assert h.add_offsets("tx", producer_id + 1, epoch) is E.invalid_producer_id_mapping
    assert h.add_offsets("tx", producer_id, epoch + 1, version=1) is E.invalid_producer_epoch
    assert h.add_offsets("tx", producer_id, epoch + 1, version=4) is E.producer_fenced


def test_partitions_the_shell_refused_fail_the_whole_transaction():
    h = Harness()
    producer_id, epoch = h.begin("tx")
    records_before = len(h.records)
    errors = h.add("tx", producer_id, epoch, {"a": [0, 1], "gone": [0]},
                   partition_errors={("gone", 0): E.unknown_topic_or_partition, ("elsewhere", 0): E.unknown_topic_or_partition})
    assert errors == {("a", 0): E.operation_not_attempted, ("a", 1): E.operation_not_attempted,
                      ("gone", 0): E.unknown_topic_or_partition}
    assert len(h.records) == records_before
    assert h.state("tx") == "Empty"
    # Errors for partitions the request does not name change nothing.
    assert h.add("tx", producer_id, epoch, {"a": [0]}, partition_errors={("gone", 0): E.unknown_topic_or_partition}) == {
        ("a", 0): E.none}
    # Batched, only the transactions naming a refused partition fail.
    other_id, other_epoch = h.begin("other")
    results = h.add_batch([
        {"transactional_id": "tx", "producer_id": producer_id, "producer_epoch": epoch, "topics": {"a": [2], "gone": [0]}},
        {"transactional_id": "other", "producer_id": other_id, "producer_epoch": other_epoch, "topics": {"a": [2]}},
    ], partition_errors={("gone", 0): E.unknown_topic_or_partition})
    assert results == [("tx", {("a", 2): E.operation_not_attempted, ("gone", 0): E.unknown_topic_or_partition}),
                       ("other", {("a", 2): E.none})]
    assert h.coordinator.transactions["tx"].partitions == {("a", 0)}


# AddPartitionsToTxn v4+ (from brokers)


def test_batched_add_partitions_adds_and_verifies_per_transaction():
    h = Harness()
    pid_a, epoch_a = h.open_transaction("a", {"t": [0]})
    pid_b, epoch_b = h.begin("b")
    results = h.add_batch([
        {"transactional_id": "a", "producer_id": pid_a, "producer_epoch": epoch_a, "verify_only": True,
         "topics": {"t": [0, 1]}},
        {"transactional_id": "b", "producer_id": pid_b, "producer_epoch": epoch_b, "verify_only": False,
         "topics": {"u": [5]}},
        {"transactional_id": "c", "producer_id": 1, "producer_epoch": 0, "verify_only": True, "topics": {"t": [0]}},
        {"transactional_id": "a", "producer_id": pid_a, "producer_epoch": epoch_a + 1, "verify_only": True,
         "topics": {"t": [0]}},
    ], version=4)
    assert results == [
        ("a", {("t", 0): E.none, ("t", 1): E.transaction_abortable}),
        ("b", {("u", 5): E.none}),
        ("c", {("t", 0): E.invalid_producer_id_mapping}),
        ("a", {("t", 0): E.producer_fenced}),
    ]
    # Verifying adds nothing; adding records the partition.
    assert h.coordinator.transactions["a"].partitions == {("t", 0)}
    assert h.last_value("b") == log_value(pid_b, epoch_b, S.ONGOING, partitions={"u": [5]}, started_ms=START_WALL_MS)
    verified = h.add_batch([{"transactional_id": "b", "producer_id": pid_b, "producer_epoch": epoch_b, "verify_only": True,
                             "topics": {"u": [5, 6]}}])
    assert verified == [("b", {("u", 5): E.none, ("u", 6): E.transaction_abortable})]


def test_verifying_during_pending_markers_answers_concurrent_transactions():
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"t": [0]})
    h.end("tx", producer_id, epoch, True)
    verify = {"transactional_id": "tx", "producer_id": producer_id, "producer_epoch": epoch, "verify_only": True,
              "topics": {"t": [0]}}
    assert h.add_batch([verify]) == [("tx", {("t", 0): E.concurrent_transactions})]
    h.write_markers()
    # Completed: the partition is no longer in a transaction.
    assert h.add_batch([verify]) == [("tx", {("t", 0): E.transaction_abortable})]


# Fencing


def test_a_second_init_producer_id_fences_the_zombie_and_aborts_its_transaction():
    h = Harness()
    producer_id, zombie_epoch = h.open_transaction("tx", {"a": [0], "b": [1]})

    response = h.init("tx")
    assert (response["error_code"], response["producer_id"], response["producer_epoch"]) == (
        E.concurrent_transactions, -1, -1)
    # The abort is recorded under the fenced epoch, which nobody is given.
    assert h.last_value("tx") == log_value(producer_id, zombie_epoch + 1, S.PREPARE_ABORT,
                                           partitions={"a": [0], "b": [1]}, started_ms=START_WALL_MS)
    assert h.markers == [MarkerRequest("tx", producer_id, zombie_epoch + 1, 0, False, (("a", 0), ("b", 1)))]

    # The zombie is fenced from now on.
    assert h.add("tx", producer_id, zombie_epoch, {"c": [0]}) == {("c", 0): E.producer_fenced}
    assert h.end_error("tx", producer_id, zombie_epoch, True) is E.producer_fenced
    assert h.end_error("tx", producer_id, zombie_epoch, True, version=1) is E.invalid_producer_epoch
    # The new producer retries until the abort is complete.
    assert h.init("tx")["error_code"] is E.concurrent_transactions

    h.write_markers()
    assert h.state("tx") == "CompleteAbort"
    assert h.begin("tx") == (producer_id, zombie_epoch + 2)
    assert h.end_error("tx", producer_id, zombie_epoch, False) is E.producer_fenced


def test_init_producer_id_resumes_its_own_session_kip_360():
    h = Harness()
    producer_id, _ = h.begin("tx")
    # The producer asks to resume its epoch 0: bumped to 1, remembering 0.
    assert h.begin("tx", producer_id=producer_id, producer_epoch=0) == (producer_id, 1)
    # Its retry (the response was lost) gets the same epoch, not another bump.
    assert h.begin("tx", producer_id=producer_id, producer_epoch=0) == (producer_id, 1)
    assert [v.producer_epoch for v in h.values("tx")] == [0, 1, 1]
    assert h.begin("tx", producer_id=producer_id, producer_epoch=1) == (producer_id, 2)
    # An epoch older than the last one is another producer's.
    assert h.init("tx", producer_id=producer_id, producer_epoch=0)["error_code"] is E.producer_fenced
    assert h.init("tx", producer_id=producer_id, producer_epoch=0, version=3)["error_code"] is E.invalid_producer_epoch
    assert h.init("tx", producer_id=producer_id + 7, producer_epoch=2)["error_code"] is E.producer_fenced
    # A new producer instance (no epoch given) fences the old one's retries.
    assert h.begin("tx") == (producer_id, 3)
    assert h.init("tx", producer_id=producer_id, producer_epoch=2)["error_code"] is E.producer_fenced


def test_a_producer_whose_transaction_timed_out_cannot_resume():
    h = Harness()
    producer_id, _ = h.begin("tx")
    assert h.begin("tx", producer_id=producer_id, producer_epoch=0) == (producer_id, 1)
    h.add("tx", producer_id, 1, {"a": [0]})
    h.tick(TIMEOUT_MS + ABORT_CHECK_MS)
    h.write_markers()
    # The fence forgets the epoch the producer had before its last bump, so neither
    # that nor its current epoch resumes.
    assert h.init("tx", producer_id=producer_id, producer_epoch=0)["error_code"] is E.producer_fenced
    assert h.init("tx", producer_id=producer_id, producer_epoch=1)["error_code"] is E.producer_fenced
    assert h.begin("tx") == (producer_id, 3)


def test_init_producer_id_with_a_producer_id_for_an_unknown_transactional_id_starts_afresh():
    # The transactional id expired while its producer was idle.
    h = Harness()
    assert h.begin("tx", producer_id=555, producer_epoch=3) == (FIRST_PRODUCER_ID, 0)


def test_an_exhausted_epoch_rotates_the_producer_id():
    h = Harness()
    h.replay_value("tx", log_value(42, 32765, S.EMPTY))
    assert h.begin("tx") == (42, 32766)
    # 32766 is the last epoch a producer may have: the next session gets a new producer id.
    assert h.begin("tx") == (FIRST_PRODUCER_ID, 0)
    assert h.last_value("tx") == log_value(FIRST_PRODUCER_ID, 0, S.EMPTY)


def test_a_retried_rotation_is_recognized_by_the_previous_producer_id():
    h = Harness()
    h.replay_value("tx", log_value(42, 32766, S.COMPLETE_COMMIT, partitions={}))
    # An older epoch of the exhausted producer id is fenced, not rotated.
    assert h.init("tx", producer_id=42, producer_epoch=32765)["error_code"] is E.producer_fenced
    assert h.begin("tx", producer_id=42, producer_epoch=32766) == (FIRST_PRODUCER_ID, 0)
    assert h.begin("tx", producer_id=42, producer_epoch=32766) == (FIRST_PRODUCER_ID, 0)
    assert h.init("tx", producer_id=43, producer_epoch=32766)["error_code"] is E.producer_fenced


def test_fencing_an_exhausted_epoch_leads_to_a_new_producer_id():
    h = Harness()
    h.replay_value("tx", log_value(42, 32766, S.ONGOING, partitions={"a": [0]}, started_ms=START_WALL_MS))
    assert h.init("tx")["error_code"] is E.concurrent_transactions
    assert h.markers == [MarkerRequest("tx", 42, 32767, 0, False, (("a", 0),))]
    h.write_markers()
    assert h.begin("tx") == (FIRST_PRODUCER_ID, 0)


# Timeouts


def test_a_transaction_past_its_timeout_is_aborted_with_an_epoch_bump():
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"a": [0]}, timeout_ms=20_000)
    assert h.coordinator.next_deadline() == ABORT_CHECK_MS
    assert h.tick(ABORT_CHECK_MS).records == []
    # Exactly at its timeout the transaction is not over yet; it is found at the next check.
    assert h.tick(ABORT_CHECK_MS).records == []
    assert h.state("tx") == "Ongoing"
    assert h.coordinator.next_deadline() == 3 * ABORT_CHECK_MS
    h.tick(ABORT_CHECK_MS)
    assert h.last_value("tx") == log_value(producer_id, epoch + 1, S.PREPARE_ABORT, partitions={"a": [0]},
                                           timeout_ms=20_000, updated_ms=h.clock.wall_ms(), started_ms=START_WALL_MS)
    assert h.markers == [MarkerRequest("tx", producer_id, epoch + 1, 0, False, (("a", 0),))]
    # The timed-out producer is fenced.
    assert h.end_error("tx", producer_id, epoch, True) is E.producer_fenced
    assert h.add("tx", producer_id, epoch, {"a": [0]}) == {("a", 0): E.producer_fenced}
    h.write_markers()
    assert h.state("tx") == "CompleteAbort"
    # Later checks leave completed transactions alone.
    assert h.tick(ABORT_CHECK_MS).records == []


def test_only_ongoing_transactions_time_out():
    h = Harness()
    h.begin("empty", timeout_ms=1_000)
    producer_id, epoch = h.open_transaction("preparing", {"a": [0]}, timeout_ms=1_000)
    h.end("preparing", producer_id, epoch, True)
    records_before = len(h.records)
    h.tick(ABORT_CHECK_MS)
    assert len(h.records) == records_before
    assert (h.state("empty"), h.state("preparing")) == ("Empty", "PrepareCommit")


# Transactional id expiration


def test_idle_transactional_ids_expire_with_a_tombstone():
    h = Harness({"transactional.id.expiration.ms": 60_000, "transaction.max.timeout.ms": 10_000_000})
    h.begin("idle")
    producer_id, epoch = h.open_transaction("committed", {"a": [0]})
    h.end("committed", producer_id, epoch, True)
    h.write_markers()
    h.open_transaction("ongoing", {"a": [1]}, timeout_ms=5_000_000)
    # Idle for exactly the expiration time at the check: expired; one millisecond less: kept.
    h.clock.advance(ID_EXPIRATION_CHECK_MS - 60_000)
    h.begin("boundary")
    h.clock.advance(1)
    h.begin("recent")
    result = h.tick(60_000 - 1)
    assert h.clock.monotonic_ms() == ID_EXPIRATION_CHECK_MS
    assert sorted(decode_transaction_log_key(key).transactional_id for _, key, value in result.records
                  if value is None) == ["boundary", "committed", "idle"]
    assert sorted(h.coordinator.transactions) == ["ongoing", "recent"]
    assert h.last_value("idle") is None
    assert [d["error_code"] for d in h.describe("idle", "recent")] == [E.transactional_id_not_found, E.none]
    # Forgotten for good: a restart does not bring it back, and it starts afresh.
    h.restart()
    assert sorted(h.coordinator.transactions) == ["ongoing", "recent"]
    assert h.begin("idle")[1] == 0


# Restarts


def test_restart_mid_transaction_then_abort():
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"a": [0, 2]})
    assert h.add_offsets("tx", producer_id, epoch) is E.none
    before = h.describe("tx")
    assert h.restart().records == []
    assert h.describe("tx") == before
    assert h.end_error("tx", producer_id, epoch, False) is E.none
    assert h.markers == [MarkerRequest("tx", producer_id, epoch, 0, False,
                                       (("__consumer_offsets", OFFSETS_PARTITION), ("a", 0), ("a", 2)))]
    h.write_markers()
    assert h.state("tx") == "CompleteAbort"


def test_restart_mid_transaction_then_time_out():
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"a": [0]})
    h.clock.advance(TIMEOUT_MS)
    h.restart()
    assert h.state("tx") == "Ongoing"
    assert h.coordinator.next_deadline() == h.clock.monotonic_ms() + ABORT_CHECK_MS
    h.tick(ABORT_CHECK_MS)
    assert h.markers == [MarkerRequest("tx", producer_id, epoch + 1, 0, False, (("a", 0),))]
    assert h.end_error("tx", producer_id, epoch, True) is E.producer_fenced


def test_restart_before_markers_are_written_writes_them_again():
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"a": [0]})
    h.end("tx", producer_id, epoch, True)
    lost = h.markers
    loaded = h.restart()
    assert loaded.markers == lost
    assert h.end_error("tx", producer_id, epoch, True) is E.concurrent_transactions
    h.write_markers()
    assert h.last_value("tx").transaction_status == S.COMPLETE_COMMIT.status
    assert h.end_error("tx", producer_id, epoch, True) is E.none
    # After a clean restart nothing is pending, and epochs carry on.
    assert h.restart().markers == []
    assert h.begin("tx") == (producer_id, epoch + 1)


def test_replay_skips_unknown_record_types_and_applies_tombstones():
    h = Harness()
    h.begin("tx")
    h.restart()
    h.coordinator.replay(0, encode_key(5, TransactionLogKey(transactional_id="tx")), b"\x00\x05future")
    assert h.state("tx") == "Empty"
    h.coordinator.replay(h.coordinator.partition_for("tx"),
                         encode_transaction_log_key(TransactionLogKey(transactional_id="tx")), None)
    assert h.coordinator.transactions == {}


# Markers


def test_markers_reported_for_another_session_or_twice_change_nothing():
    h = Harness()
    producer_id, epoch = h.open_transaction("tx", {"a": [0]})
    h.end("tx", producer_id, epoch, False)
    (marker,) = h.markers
    stale = MarkerRequest("tx", producer_id, epoch - 1, 0, False, marker.partitions)
    assert h.apply(h.coordinator.markers_written(stale)).records == []
    assert h.apply(h.coordinator.markers_written(MarkerRequest("tx", producer_id, epoch, 0, True, marker.partitions))).records == []
    assert h.state("tx") == "PrepareAbort"
    assert len(h.apply(h.coordinator.markers_written(marker)).records) == 1
    assert h.apply(h.coordinator.markers_written(marker)).records == []
    assert h.apply(h.coordinator.markers_written(MarkerRequest("gone", 1, 0, 0, True, ()))).records == []


# DescribeTransactions, ListTransactions


def test_describe_transactions():
    h = Harness()
    h.begin("empty", timeout_ms=5_000)
    h.clock.advance(1_000)
    producer_id, epoch = h.open_transaction("tx", {"b": [4, 1], "a": [0]})
    empty, tx, unknown, blank = h.describe("empty", "tx", "unknown", "")
    assert empty == {"error_code": E.none, "transactional_id": "empty", "transaction_state": "Empty",
                     "transaction_timeout": 5_000, "transaction_start_time": EPOCH - datetime.timedelta(milliseconds=1),
                     "producer_id": FIRST_PRODUCER_ID, "producer_epoch": 0, "topics": []}
    assert tx == {"error_code": E.none, "transactional_id": "tx", "transaction_state": "Ongoing",
                  "transaction_timeout": TIMEOUT_MS,
                  "transaction_start_time": EPOCH + datetime.timedelta(milliseconds=START_WALL_MS + 1_000),
                  "producer_id": producer_id, "producer_epoch": epoch,
                  "topics": [{"topic": "a", "partitions": [0]}, {"topic": "b", "partitions": [1, 4]}]}
    assert (unknown["error_code"], unknown["transactional_id"]) == (E.transactional_id_not_found, "unknown")
    assert (blank["error_code"], blank["transactional_id"]) == (E.invalid_request, "")


def test_list_transactions_filters():
    h = Harness()
    h.begin("empty")
    h.clock.advance(10_000)
    h.open_transaction("old", {"a": [0]})
    h.clock.advance(10_000)
    producer_id, epoch = h.open_transaction("new", {"a": [1]})
    h.end("new", producer_id, epoch, True)
    h.clock.advance(5_000)
    assert h.listed() == {"empty": ("Empty", FIRST_PRODUCER_ID), "old": ("Ongoing", FIRST_PRODUCER_ID + 1),
                          "new": ("PrepareCommit", producer_id)}
    assert h.listed(producer_id_filters=[FIRST_PRODUCER_ID + 1, 99]) == {"old": ("Ongoing", FIRST_PRODUCER_ID + 1)}
    assert set(h.listed(state_filters=["Ongoing", "PrepareCommit"])) == {"old", "new"}
    response = h.list(state_filters=["Ongoing", "Bogus"])
    assert response["unknown_state_filters"] == ["Bogus"]
    assert [t["transactional_id"] for t in response["transaction_states"]] == ["old"]
    # Known states no transaction is in, and unknown ones alone, match nothing.
    assert h.listed(state_filters=["Dead", "PrepareEpochFence"]) == {}
    assert h.listed(state_filters=["Bogus"]) == {}
    # v1: running for longer than the duration; an Empty id counts from the epoch, as in Kafka.
    assert set(h.listed(version=1, duration_filter=4_999)) == {"empty", "old", "new"}
    assert set(h.listed(version=1, duration_filter=5_000)) == {"empty", "old"}
    assert set(h.listed(version=1, duration_filter=15_000)) == {"empty"}
    assert set(h.listed(version=1, duration_filter=-1)) == {"empty", "old", "new"}
    # v2: a regular expression the whole transactional id matches.
    assert set(h.listed(transactional_id_pattern="o.d|ne")) == {"old"}
    assert set(h.listed(transactional_id_pattern="")) == {"empty", "old", "new"}
    invalid = h.list(transactional_id_pattern="(")
    assert (invalid["error_code"], invalid["transaction_states"]) == (E.invalid_regular_expression, [])


def test_markers_carry_the_leader_epoch_of_the_transaction_state_partition():
    h = Harness()
    partition = h.coordinator.partition_for("tx")
    h.coordinator.set_coordinator_epoch(partition, 4)
    h.coordinator.set_coordinator_epoch((partition + 1) % NUM_PARTITIONS, 9)  # another partition's epoch is not this one's
    producer_id, epoch = h.open_transaction("tx", {"a": [0]})
    h.end("tx", producer_id, epoch, commit=False)
    assert [m.coordinator_epoch for m in h.markers] == [4]
    # A new leader epoch after the partition moved here again: the markers written from now on carry it.
    h.coordinator.set_coordinator_epoch(partition, 6)
    h.write_markers()
    producer_id, epoch = h.open_transaction("tx", {"a": [0]})
    h.end("tx", producer_id, epoch, commit=True)
    assert [m.coordinator_epoch for m in h.markers] == [6]
