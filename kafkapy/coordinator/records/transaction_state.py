"""The records of `__transaction_state`, as Kafka's transaction coordinator writes them
(schemas: Kafka's transaction-coordinator/src/main/resources/common/message/*.json;
framing: kafka.coordinator.transaction.TransactionLog).

The key has a single version, 0. TransactionLogValue is version-free, holding the fields
of both versions; it is written through a private kio struct per version.
"""

from dataclasses import dataclass, field
from typing import ClassVar

from kio.static.constants import EntityType
from kio.static.primitive import i8, i16, i32, i64

from .framing import ValueSchema, decode_key, encode_key


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionLogKey:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    transactional_id: str = field(metadata={"kafka_type": "string"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTopicPartitions:
    topic: str
    partition_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionLogValue:
    producer_id: int
    previous_producer_id: int = -1
    """Version 1 only: the producer id of the last committed transaction."""
    next_producer_id: int = -1
    """Version 1 only: the newest producer id handed out for this transactional id."""
    producer_epoch: int
    transaction_timeout_ms: int
    transaction_status: int
    """Kafka's TransactionState id."""
    transaction_partitions: tuple[TransactionTopicPartitions, ...] | None
    """None while the transaction is Empty (Kafka writes null then)."""
    transaction_last_update_timestamp_ms: int
    transaction_start_timestamp_ms: int
    client_transaction_version: int = 0
    """Version 1 only: the transaction.version level the client uses."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _TransactionTopicPartitionsV0:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    topic: str = field(metadata={"kafka_type": "string"})
    partition_ids: tuple[i32, ...] = field(metadata={"kafka_type": "int32"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _TransactionTopicPartitionsV1:
    __type__: ClassVar = EntityType.nested
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = True
    topic: str = field(metadata={"kafka_type": "string"})
    partition_ids: tuple[i32, ...] = field(metadata={"kafka_type": "int32"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _TransactionLogValueV0:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(0)
    __flexible__: ClassVar[bool] = False
    producer_id: i64 = field(metadata={"kafka_type": "int64"})
    producer_epoch: i16 = field(metadata={"kafka_type": "int16"})
    transaction_timeout_ms: i32 = field(metadata={"kafka_type": "int32"})
    transaction_status: i8 = field(metadata={"kafka_type": "int8"})
    transaction_partitions: tuple[_TransactionTopicPartitionsV0, ...] | None
    transaction_last_update_timestamp_ms: i64 = field(metadata={"kafka_type": "int64"})
    transaction_start_timestamp_ms: i64 = field(metadata={"kafka_type": "int64"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _TransactionLogValueV1:
    __type__: ClassVar = EntityType.data
    __version__: ClassVar[i16] = i16(1)
    __flexible__: ClassVar[bool] = True
    producer_id: i64 = field(metadata={"kafka_type": "int64"})
    previous_producer_id: i64 = field(metadata={"kafka_type": "int64", "tag": 0}, default=i64(-1))
    next_producer_id: i64 = field(metadata={"kafka_type": "int64", "tag": 1}, default=i64(-1))
    producer_epoch: i16 = field(metadata={"kafka_type": "int16"})
    transaction_timeout_ms: i32 = field(metadata={"kafka_type": "int32"})
    transaction_status: i8 = field(metadata={"kafka_type": "int8"})
    transaction_partitions: tuple[_TransactionTopicPartitionsV1, ...] | None
    transaction_last_update_timestamp_ms: i64 = field(metadata={"kafka_type": "int64"})
    transaction_start_timestamp_ms: i64 = field(metadata={"kafka_type": "int64"})
    client_transaction_version: i16 = field(metadata={"kafka_type": "int16", "tag": 2}, default=i16(0))


def _transaction_log_version(value: TransactionLogValue) -> int:
    # TransactionVersion.transactionLogValueVersion: 0 while the cluster's
    # transaction.version is 0, as it is by default; the fields only version 1 holds keep
    # their defaults then, so 1 is written only for a value that needs it.
    only_in_v1 = (value.previous_producer_id, value.next_producer_id, value.client_transaction_version)
    return 0 if only_in_v1 == (-1, -1, 0) else 1


_TRANSACTION_LOG_VALUE = ValueSchema(
    TransactionLogValue, {0: _TransactionLogValueV0, 1: _TransactionLogValueV1}, _transaction_log_version
)


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
