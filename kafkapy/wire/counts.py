"""Array counts checked against the bytes that follow them, before kio decodes a request.

kio's native reader reserves room for an array's declared count before it reads a single
element: a four-byte count of 2**31 - 1 asks the allocator for 16 GiB, and where it cannot
have it (a host with less memory, a memory limit) the allocation failure aborts the whole
process. Kafka's own readers refuse a collection larger than the bytes remaining, since
every element takes at least one byte; this walk does the same, over the entity's fields
in wire order with kio's readers, and tells the caller which count lied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, fields
from functools import cache
from typing import Any

from kio._kio_native import (
    get_field_reader,
    get_reader,
    read_compact_array_length,
    read_int8,
    read_int32,
    read_legacy_array_length,
    read_unsigned_varint,
)
from kio.serial._introspect import EntityField, EntityTupleField, classify_field, get_field_tag, is_optional

Buffer = bytes | bytearray | memoryview
_BYTES_TYPES = ("bytes", "records")
Walk = Callable[[Buffer, int, int], int]


class CountError(ValueError):
    """An array count the request cannot have: null where the field is not nullable (kio
    would hand the handler a None for a tuple), or more elements than bytes left."""


def check_counts(entity_type: type, buf: Buffer, pos: int) -> None:
    """Raises CountError when an array in the `entity_type` at `pos` is null but not
    nullable, or declares more elements than there are bytes after it. Malformed input of any other kind is left to
    kio's reader, which reports it: the walk stops where it cannot go on."""
    try:
        _entity_walk(entity_type)(buf, pos, len(buf))
    except CountError:
        raise
    except Exception:  # what kio's reader will refuse with its own message
        return


@cache
def _entity_walk(entity_type: type) -> Walk:
    flexible = bool(getattr(entity_type, "__flexible__", False))
    untagged = [_field_walk(entity_type, f, flexible, tagged=False) for f in fields(entity_type) if get_field_tag(f) is None]
    tagged = {int(tag): _field_walk(entity_type, f, flexible, tagged=True)
              for f in fields(entity_type) if (tag := get_field_tag(f)) is not None}

    def walk(buf: Buffer, pos: int, end: int) -> int:
        for step in untagged:
            pos = step(buf, pos, end)
        if flexible:
            pos = _tagged_fields(tagged, buf, pos, end)
        return pos

    return walk


def _tagged_fields(tagged: dict[int, Walk], buf: Buffer, pos: int, end: int) -> int:
    count, size = read_unsigned_varint(buf, pos)
    pos += size
    _check(count, pos, end, "tagged fields")
    for _ in range(count):
        tag, size = read_unsigned_varint(buf, pos)
        pos += size
        length, size = read_unsigned_varint(buf, pos)
        pos += size
        if length > end - pos:
            raise CountError(f"a tagged field of {length} bytes, with {end - pos} left")
        if tag in tagged:
            tagged[tag](buf, pos, pos + length)
        pos += length
    return pos


def _field_walk(entity_type: type, f: Field[Any], flexible: bool, tagged: bool) -> Walk:
    field_class = classify_field(f)
    element: Walk
    if isinstance(field_class, EntityField | EntityTupleField):
        element = _entity_walk(field_class.type_)
    elif field_class.is_array:
        element = _reader_walk(get_reader(f.metadata["kafka_type"], flexible, False))
    elif f.metadata.get("kafka_type") in _BYTES_TYPES:
        return _bytes_walk(flexible)
    else:
        return _reader_walk(get_field_reader(entity_type, f, False, tagged))
    if field_class.is_array:
        return _array_walk(element, flexible, f.name, is_optional(f))
    if is_optional(f):
        return _nullable_walk(element)
    return element


def _bytes_walk(flexible: bool) -> Walk:
    """Steps over a bytes or records field by its length alone: reading it would copy a
    produce request's whole batch for nothing."""
    def walk(buf: Buffer, pos: int, end: int) -> int:
        if flexible:
            stored, size = read_unsigned_varint(buf, pos)
            length = stored - 1
        else:
            length, size = read_int32(buf, pos)
        return pos + size + max(length, 0)

    return walk


def _reader_walk(reader: Callable[[Buffer, int], tuple[Any, int]]) -> Walk:
    def walk(buf: Buffer, pos: int, end: int) -> int:
        return pos + reader(buf, pos)[1]

    return walk


def _nullable_walk(element: Walk) -> Walk:
    def walk(buf: Buffer, pos: int, end: int) -> int:
        marker, size = read_int8(buf, pos)
        return pos + size if marker < 0 else element(buf, pos + size, end)

    return walk


def _array_walk(element: Walk, flexible: bool, name: str, nullable: bool) -> Walk:
    read_length = read_compact_array_length if flexible else read_legacy_array_length

    def walk(buf: Buffer, pos: int, end: int) -> int:
        count, size = read_length(buf, pos)
        pos += size
        if count is None or count < 0:
            if not nullable:
                raise CountError(f"{name}: null, and the field is not nullable")
            return pos
        _check(count, pos, end, name)
        for _ in range(count):
            pos = element(buf, pos, end)
        return pos

    return walk


def _check(count: int, pos: int, end: int, name: str) -> None:
    if count > end - pos:
        raise CountError(f"{name}: {count} elements declared, {end - pos} bytes left")
