"""The records of `__transaction_state`, as Kafka's transaction coordinator writes them
(schemas: generated from Kafka's transaction-coordinator/src/main/resources/common/
message/*.json into kafkapy.schema.transaction_coordinator; framing:
kafka.coordinator.transaction.TransactionLog).

The key has a single version, 0. TransactionLogValue is the generated version-free
class, holding the fields of both versions.
"""

from ...schema.transaction_coordinator.transaction_log_key.v0 import TransactionLogKey
from ...schema.transaction_coordinator.transaction_log_value.all_versions import PartitionsSchema, TransactionLogValue
from .framing import ValueSchema, decode_key, encode_key

# Kafka's JSON names the struct of a transaction's partitions after nothing it holds.
TransactionTopicPartitions = PartitionsSchema

__all__ = [
    "TransactionLogKey", "TransactionLogValue", "TransactionTopicPartitions", "decode_transaction_log_key",
    "decode_transaction_log_value", "encode_transaction_log_key", "encode_transaction_log_value",
]


def _transaction_log_version(value: TransactionLogValue) -> int:
    # TransactionVersion.transactionLogValueVersion: 0 while the cluster's
    # transaction.version is 0, as it is by default; the fields only version 1 holds keep
    # their defaults then, so 1 is written only for a value that needs it.
    only_in_v1 = (value.previous_producer_id, value.next_producer_id, value.client_transaction_version)
    return 0 if only_in_v1 == (-1, -1, 0) else 1


_TRANSACTION_LOG_VALUE = ValueSchema(TransactionLogValue, _transaction_log_version)


def encode_transaction_log_key(key: TransactionLogKey) -> bytes:
    return encode_key(key.__version__, key)


def decode_transaction_log_key(data: bytes) -> TransactionLogKey:
    """Raises UnknownRecordType for a key version other than 0 (Kafka skips those)."""
    return decode_key(data, {TransactionLogKey.__version__: TransactionLogKey})


def encode_transaction_log_value(value: TransactionLogValue, version: int | None = None) -> bytes:
    """`value` at `version`, by default 0 unless it sets a field only version 1 holds."""
    return _TRANSACTION_LOG_VALUE.encode(value, version)


def decode_transaction_log_value(data: bytes | None) -> TransactionLogValue | None:
    """None for a tombstone. Raises UnknownRecordVersion for a version other than 0 or 1."""
    if data is None:
        return None
    return _TRANSACTION_LOG_VALUE.decode(data)
