"""Kafka's framing of coordinator records (CoordinatorRecordSerde, TransactionLog): a
big-endian int16 version, then the struct encoded at that version. A key's version
names the record type; a value's version is the version of its schema; a null value
is a tombstone (handled by the callers, which see the key first).
"""

import io
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from kio.serial import entity_reader, entity_writer
from kio.serial.writers import Writer

from ...schema.versions import convert, schema_class

_VERSION = struct.Struct(">h")


class UnknownRecordType(ValueError):
    """A key version that names no record type known here. Kafka's loaders skip such
    records with a warning: a newer broker may have left them."""


class UnknownRecordVersion(ValueError):
    """A value version that its record type does not have."""


def encode_key(record_type: int, key: Any) -> bytes:
    return _frame(record_type, entity_writer(type(key)), key)


def decode_key(data: bytes, key_types: Mapping[int, type]) -> Any:
    record_type = _read_version(data)
    key_type = key_types.get(record_type)
    if key_type is None:
        raise UnknownRecordType(f"unknown coordinator record type {record_type}")
    return _read_struct(key_type, data)


@dataclass(frozen=True)
class ValueSchema:
    """A record type's value: the generated type callers build and decoding returns (the
    version-free class of a schema with several versions, else its only version's), and
    the version Kafka writes a given value at. Each version's class is imported the first
    time a value is read or written at that version."""

    value_type: type
    default_version: Callable[[Any], int]
    write: Writer | None = None
    """Replaces kio's writer of the struct, where kio's is not Kafka's."""

    @classmethod
    def single_version(cls, value_type: type, write: Writer | None = None) -> Self:
        """A value with only version 0, whose struct is the value type itself."""
        return cls(value_type, lambda _: 0, write)

    def encode(self, value: Any, version: int | None) -> bytes:
        if version is None:
            version = self.default_version(value)
        struct_type = self._struct_type(version)
        return _frame(version, self.write or entity_writer(struct_type), convert(value, struct_type))

    def decode(self, data: bytes) -> Any:
        struct_type = self._struct_type(_read_version(data))
        return convert(_read_struct(struct_type, data), self.value_type)

    def _struct_type(self, version: int) -> type:
        # The generated package of the schema holds the value type's module.
        struct_type = schema_class(self.value_type.__module__.rpartition(".")[0], version)
        if struct_type is None:
            raise UnknownRecordVersion(f"{self.value_type.__name__} has no version {version}")
        return struct_type


def _frame(version: int, write: Writer, value: Any) -> bytes:
    buffer = io.BytesIO()
    buffer.write(_VERSION.pack(version))
    write(buffer, value)
    return buffer.getvalue()


def _read_version(data: bytes) -> int:
    if len(data) < _VERSION.size:
        raise ValueError(f"a coordinator record of {len(data)} bytes cannot hold its version")
    return _VERSION.unpack_from(data)[0]


def _read_struct(struct_type: type, data: bytes) -> Any:
    return entity_reader(struct_type)(data, _VERSION.size)[0]
