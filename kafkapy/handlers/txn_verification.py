"""KIP-890 part 1, as Kafka's ReplicaManager and AddPartitionsToTxnManager do it: before a
leader appends a transactional producer's batch to a partition where that producer has
no transaction open (at its epoch), it asks the transaction coordinator, with
AddPartitionsToTxn (v4, verify_only), whether the partition is in the producer's
ongoing transaction, and refuses the batch if not. So a late or hanging batch cannot
open a transaction that its coordinator already ended.

A partition whose transaction is open here needs no asking: that open transaction is
the cached answer. The verification's guard, kept in the partition's producer state, is
dropped by a marker for the producer: a batch verified before that marker is refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from ..broker.broker_peers import PeerUnavailable
from ..coordinator.txn_markers import TopicPartition
from ..wire.build import build
from ..wire.protocol import request_type, response_type
from ..wire.records import iter_headers
from .context import Broker

ADD_PARTITIONS_TO_TXN = 24
# The first version that carries several transactions and verify_only: the brokers' own.
VERIFY_VERSION = 4
VERIFICATION_KEY = "transaction.partition.verification.enable"
# Retriable for the coordinator, but older producers would not retry a produce that
# failed with them: as Kafka, they are told NOT_ENOUGH_REPLICAS, which they retry
# without refreshing their metadata.
_TOLD_AS_NOT_ENOUGH_REPLICAS = frozenset({
    ErrorCode.concurrent_transactions, ErrorCode.network_exception, ErrorCode.coordinator_load_in_progress,
    ErrorCode.coordinator_not_available, ErrorCode.not_coordinator,
})


@dataclass
class Verification:
    """The outcome of verifying one produce request's transactional batches."""

    producer_id: int = -1
    producer_epoch: int = -1
    errors: dict[TopicPartition, ErrorCode] = field(default_factory=dict)
    guards: dict[TopicPartition, object] = field(default_factory=dict)

    def refusal(self, broker: Broker, topic: str | None, partition: int) -> tuple[ErrorCode, str] | None:
        """Why the partition's batch must not be appended, if it must not; to be asked
        right before the append, with no await in between."""
        tp = (topic or "", partition)
        error = self.errors.get(tp)
        if error is ErrorCode.invalid_txn_state:
            return error, "Partition was not added to the transaction"
        if error in _TOLD_AS_NOT_ENOUGH_REPLICAS:
            return ErrorCode.not_enough_replicas, (
                f"Unable to verify the partition has been added to the transaction. Underlying error: {error.name}")
        if error is not None:
            return error, f"Transaction verification failed: {error.name}"
        guard = self.guards.get(tp)
        log = broker.replicas.get(*tp) if guard is not None else None
        if log is None:
            return None  # verified, not to be verified, or gone: the produce says which
        producers = log.producers
        if producers.has_ongoing_transaction(self.producer_id, self.producer_epoch) or producers.verification_guard(self.producer_id) is guard:
            return None
        return ErrorCode.invalid_txn_state, "The transaction ended while the partition was being verified"


async def verify_transactional_batches(broker: Broker, version: int, request: Any) -> Verification:
    """Asks the transaction coordinator about the partitions of the request whose batch
    would open a transaction here."""
    verification = Verification()
    transactional_id = getattr(request, "transactional_id", None)
    if not transactional_id or not broker.replicas.broker_config(broker.image).bool(VERIFICATION_KEY):
        return verification
    now = broker.clock.wall_ms()
    for topic_data in request.topic_data:
        if version >= 13:
            topic_image = broker.image.topic_by_id(topic_data.topic_id)
        else:
            topic_image = broker.image.topics.get(topic_data.name)
        if topic_image is None:
            continue
        for data in topic_data.partition_data:
            header = next((h for _, h in iter_headers(data.records or b"")), None)
            partition = topic_image.partitions.get(data.index)
            log = broker.replicas.get(topic_image.name, data.index)
            if header is None or not header.is_transactional or header.producer_id < 0:
                continue
            if log is None or partition is None or partition.leader != broker.node_id:
                continue  # the produce answers NOT_LEADER_OR_FOLLOWER
            verification.producer_id, verification.producer_epoch = header.producer_id, header.producer_epoch
            if not log.producers.has_ongoing_transaction(header.producer_id, header.producer_epoch):
                guard = log.producers.start_verification(header.producer_id, header.producer_epoch, now)
                verification.guards[(topic_image.name, data.index)] = guard
    if verification.guards:
        verification.errors = await _ask_coordinator(broker, transactional_id, verification)
    return verification


async def _ask_coordinator(broker: Broker, transactional_id: str, verification: Verification) -> dict[TopicPartition, ErrorCode]:
    """The partitions the coordinator does not know in the transaction, with why."""
    partitions = list(verification.guards)
    topics: dict[str, list[int]] = {}
    for topic, partition in partitions:
        topics.setdefault(topic, []).append(partition)
    request = build(request_type(ADD_PARTITIONS_TO_TXN, VERIFY_VERSION), {"transactions": [{
        "transactional_id": transactional_id, "producer_id": verification.producer_id,
        "producer_epoch": verification.producer_epoch, "verify_only": True,
        "topics": [{"name": name, "partitions": indexes} for name, indexes in topics.items()],
    }]})
    runtime = broker.transactions
    state = broker.image.topics.get(runtime.topic.name)
    coordinator = state.partitions.get(runtime.coordinator.partition_for(transactional_id)) if state else None
    if coordinator is None or coordinator.leader < 0:
        # No coordinator: the transaction cannot have begun.
        return dict.fromkeys(partitions, ErrorCode.coordinator_not_available)
    if coordinator.leader == broker.node_id:
        answer = await runtime.call(
            transactional_id, lambda token: runtime.coordinator.add_partitions_to_txn(VERIFY_VERSION, request, token),
            lambda error: {"throttle_time": 0, "error_code": error, "results_by_transaction": [],
                           "results_by_topic_v3_and_below": []},
        )
        response = build(response_type(ADD_PARTITIONS_TO_TXN, VERIFY_VERSION), answer)
    else:
        try:
            response = await runtime.markers.peers.request(coordinator.leader, request)
        except PeerUnavailable:
            return dict.fromkeys(partitions, ErrorCode.network_exception)
    if response.error_code != ErrorCode.none:
        # A producer must not hear of the brokers' own authorization.
        error = ErrorCode.invalid_txn_state if response.error_code == ErrorCode.cluster_authorization_failed else response.error_code
        return dict.fromkeys(partitions, error)
    errors = {}
    for transaction in response.results_by_transaction:
        for topic_result in transaction.topic_results:
            for result in topic_result.results_by_partition:
                error = result.partition_error_code
                if error == ErrorCode.producer_fenced:
                    error = ErrorCode.invalid_producer_epoch  # what producers expect from a produce
                elif error == ErrorCode.transaction_abortable:
                    error = ErrorCode.invalid_txn_state  # producers before transaction.version 2
                if error != ErrorCode.none:
                    errors[(topic_result.name, result.partition_index)] = error
    return errors
