"""Hypothesis strategies for requests of every API and version the broker advertises:
structurally valid entities (kio's, and the legacy ones codegen made) with hostile field
values, and frames crafted at the wire level where an entity cannot say it (a null where
the field is not nullable, a negative or huge count, a length past the end).

Needs the `hypothesis` package (the test extra)."""

from __future__ import annotations

import datetime
import io
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from functools import cache
from typing import Any

from hypothesis import strategies as st
from kio.serial._introspect import EntityField, EntityTupleField, classify_field, get_field_tag, is_optional
from kio.serial.writers import write_int16, write_int32, write_unsigned_varint
from kio.static.primitive import Records, i32Timedelta, i64Timedelta

from ..handlers.registry import APIS
from ..wire.protocol import encode_request, request_type
from ..wire.records import Record, encode_batch

ADVERTISED: list[tuple[int, int]] = [
    (key, version) for key, api in sorted(APIS.items()) for version in range(api.min_version, api.max_version + 1)]

# How long the hostile long arrays are: long enough to find a loop per element or a
# quadratic check, short enough for a test machine's memory and a test's seconds.
LONG_ARRAY = (500, 2000)
# A string at the largest length every version can carry (a non-flexible string's is an int16).
LONGEST_STRING = 32767


@dataclass(frozen=True)
class KnownNames:
    """Names the broker knows, so that requests reach past "unknown topic" into the handlers."""

    topics: Sequence[str] = ()
    topic_ids: Sequence[uuid.UUID] = ()
    groups: Sequence[str] = ()


def _hostile_ints(low: int, high: int) -> st.SearchStrategy[int]:
    edges = sorted({v for v in (low, low + 1, -2, -1, 0, 1, 2, high - 1, high) if low <= v <= high})
    return st.one_of(st.sampled_from(edges), st.integers(max(low, -3), min(high, 16)), st.integers(low, high))


def _hostile_strings(known: Sequence[str], roomy: bool) -> st.SearchStrategy[str]:
    choices = [st.sampled_from(["", ".", "..", "a" * 249, "a" * 250, "__consumer_offsets", "__transaction_state",
                                "topic\n", "bad/name", "\x00", "ünïcödé"]),
               st.text(max_size=12)]
    if roomy:
        choices.append(st.integers(1000, LONGEST_STRING).map(lambda n: "x" * n))
    if known:
        choices.insert(0, st.sampled_from(list(known)))
    return st.one_of(*choices)


def _timedeltas(kind: type[i32Timedelta] | type[i64Timedelta]) -> st.SearchStrategy[datetime.timedelta]:
    # Long waits are drawn less often than short ones: each parks a request for the bound.
    millis = st.one_of(st.sampled_from([0, 1, 10, -1, -(2**31)]), st.integers(-5, 200),
                       st.sampled_from([2**31 - 1]))
    return millis.map(lambda ms: kind.parse(datetime.timedelta(milliseconds=ms)))


@st.composite
def record_batches(draw: st.DrawFn) -> bytes:
    """A v2 batch with hostile header values: extreme offsets, timestamps, producer ids,
    sequences, attributes; sometimes cut short or with a count that lies."""
    count = draw(st.integers(0, 3))
    timestamp = draw(_hostile_ints(-(2**63), 2**63 - 1))
    base_offset = draw(_hostile_ints(-(2**63), 2**63 - 1 - 4))
    records = [Record(base_offset + i, timestamp, draw(st.one_of(st.none(), st.binary(max_size=8))),
                      draw(st.one_of(st.none(), st.binary(max_size=16)))) for i in range(count)]
    batch = encode_batch(
        records, base_offset=base_offset, base_timestamp=timestamp if count else draw(_hostile_ints(-(2**63), 2**63 - 1)),
        max_timestamp=timestamp,
        producer_id=draw(st.sampled_from([-1, 0, 1, 2**63 - 1])), producer_epoch=draw(st.sampled_from([-1, 0, 32767])),
        base_sequence=draw(st.sampled_from([-1, 0, 2**31 - 1])), transactional=draw(st.booleans()),
        control=draw(st.booleans()), log_append_time=draw(st.booleans()),
        partition_leader_epoch=draw(st.sampled_from([-1, 0, 2**31 - 1])))
    cut = draw(st.sampled_from([None, None, None, 12, 61, -1]))
    return batch if cut is None else batch[:cut]


def _primitive(kind: str, annotation: type, name: str, known: KnownNames, roomy: bool) -> st.SearchStrategy[Any]:
    if kind in ("int8", "int16", "int32", "int64", "uint16", "uint32", "uint64", "float64"):
        if kind == "float64":
            return st.floats(allow_nan=False, allow_infinity=False)
        bounds: Any = annotation  # one of kio's Interval types
        return _hostile_ints(bounds.__low__, bounds.__high__)
    if kind == "string":
        if "topic" in name or name == "name":
            return _hostile_strings(known.topics, roomy)
        return _hostile_strings(known.groups if "group" in name else (), roomy)
    if kind == "bool":
        return st.booleans()
    if kind == "uuid":
        return st.one_of(st.sampled_from([uuid.UUID(int=0), *known.topic_ids]), st.uuids())
    if kind == "bytes":
        return st.one_of(st.just(b""), st.binary(max_size=32))
    if kind == "records":
        return st.one_of(st.just(b""), st.binary(max_size=64), record_batches(),
                         st.lists(record_batches(), min_size=2, max_size=3).map(b"".join)).map(Records)
    if kind == "timedelta_i32":
        return _timedeltas(i32Timedelta)
    if kind == "timedelta_i64":
        return _timedeltas(i64Timedelta)
    raise TypeError(f"no strategy for kafka_type {kind!r} ({annotation})")


def _array(element: st.SearchStrategy[Any], small_element: st.SearchStrategy[Any] | None) -> st.SearchStrategy[tuple[Any, ...]]:
    """Mostly short arrays; with a `small_element` (one with no long strings or arrays of
    its own, so that sizes never multiply), sometimes a long one of it."""
    short = st.lists(element, max_size=3).map(tuple)
    if small_element is None:
        return short
    # One element repeated: duplicates are hostile too, and cost the generator nothing.
    long = st.tuples(small_element, st.integers(*LONG_ARRAY)).map(lambda pair: (pair[0],) * pair[1])
    return st.one_of(short, short, short, long)


def entities(cls: type, known: KnownNames = KnownNames()) -> st.SearchStrategy[Any]:
    """Instances of a kio entity with hostile values in every field."""
    return _entities(cls, known, True)


@cache
def _entities(cls: type, known: KnownNames, roomy: bool) -> st.SearchStrategy[Any]:
    """`roomy`: whether long strings and long arrays may be drawn (not inside a long array)."""
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for f in fields(cls):
        field_class = classify_field(f)
        element: st.SearchStrategy[Any]
        small: st.SearchStrategy[Any]
        if isinstance(field_class, EntityField | EntityTupleField):
            nested: type = field_class.type_
            element = _deferred(nested, known, roomy)
            small = _deferred(nested, known, False)
        else:
            element = _primitive(f.metadata["kafka_type"], field_class.type_, f.name, known, roomy)
            small = _primitive(f.metadata["kafka_type"], field_class.type_, f.name, known, False)
        strategy = _array(element, small if roomy else None) if field_class.is_array else element
        if is_optional(f):
            strategy = st.one_of(st.none(), strategy)
        kwargs[f.name] = strategy
    return st.builds(cls, **kwargs)


def _deferred(cls: type, known: KnownNames, roomy: bool) -> st.SearchStrategy[Any]:
    """A nested entity's strategy, made when first drawn (the cache is filled outside in)."""
    return st.deferred(lambda: _entities(cls, known, roomy))


def requests(known: KnownNames = KnownNames(), apis: Sequence[tuple[int, int]] = ADVERTISED) -> st.SearchStrategy[Any]:
    """A request of any advertised API and version, with hostile field values."""
    return st.sampled_from(list(apis)).flatmap(lambda kv: entities(request_type(*kv), known))


# Wire-level crafting. A length or count prefix is found without knowing the layout: the
# same request encoded with the field empty and with one element differs first inside
# that prefix, whose width the field's kind and the version's flexibility give.

@dataclass(frozen=True)
class _Prefix:
    path: tuple[tuple[str, int | None], ...]
    empty: Any
    one: Any
    width: int  # in a non-flexible version: int16 for strings, int32 for bytes and arrays


def _candidates(entity: Any, path: tuple[tuple[str, int | None], ...] = ()) -> Iterator[_Prefix]:
    for f in fields(entity):
        if get_field_tag(f) is not None:
            continue
        value = getattr(entity, f.name)
        kind = f.metadata.get("kafka_type")
        field_class = classify_field(f)
        here = (*path, (f.name, None))
        if field_class.is_array:
            if value:
                yield _Prefix(here, (), value[:1], 4)
                if isinstance(field_class, EntityTupleField):
                    for i, element in enumerate(value[:2]):
                        yield from _candidates(element, (*path, (f.name, i)))
        elif isinstance(field_class, EntityField):
            if value is not None:
                yield from _candidates(value, here)
        elif kind == "string":
            yield _Prefix(here, "", "a", 2)
        elif kind in ("bytes", "records"):
            yield _Prefix(here, b"" if kind == "bytes" else Records(b""), b"a" if kind == "bytes" else Records(b"a"), 4)


def _with(entity: Any, path: Sequence[tuple[str, int | None]], value: Any) -> Any:
    (name, index), rest = path[0], path[1:]
    if index is None:
        return replace(entity, **{name: _with(getattr(entity, name), rest, value) if rest else value})
    elements = list(getattr(entity, name))
    elements[index] = _with(elements[index], rest, value)
    return replace(entity, **{name: tuple(elements)})


def _encoded(writer: Callable[[Any, Any], None], value: int) -> bytes:
    out = io.BytesIO()
    writer(out, value)
    return out.getvalue()


def _hostile_prefixes(width: int, flexible: bool) -> list[bytes]:
    if flexible:  # an unsigned varint of length + 1, 0 meaning null
        return [_encoded(write_unsigned_varint, v) for v in (0, 2**31, 2**32 - 1, 2**35 - 1)] + [b"\xff" * 6]
    if width == 2:
        return [_encoded(write_int16, v) for v in (-1, -2, -(2**15), 2**15 - 1)]
    return [_encoded(write_int32, v) for v in (-1, -2, -(2**31), 2**31 - 1, 1_000_000)]


@st.composite
def crafted_frames(draw: st.DrawFn, known: KnownNames = KnownNames(), apis: Sequence[tuple[int, int]] = ADVERTISED) -> bytes:
    """A request frame (no size prefix) whose one length or count says null, negative,
    or far more than the frame holds."""
    api_key, version = draw(st.sampled_from(list(apis)))
    cls = request_type(api_key, version)
    entity = draw(entities(cls, known))
    candidates = list(_candidates(entity))
    if not candidates:
        return encode_request(entity, 1)[4:]
    target = draw(st.sampled_from(candidates))
    empty = encode_request(_with(entity, target.path, target.empty), 1)[4:]
    one = encode_request(_with(entity, target.path, target.one), 1)[4:]
    first_difference = next(i for i, (a, b) in enumerate(zip(empty, one, strict=False)) if a != b)
    flexible = bool(cls.__flexible__)
    width = 1 if flexible else target.width
    start = first_difference - (width - 1)
    if empty[start:start + width] != (b"\x01" if flexible else bytes(width)):
        return empty  # the difference was not where the prefix was expected: send it as it is
    prefix = draw(st.sampled_from(_hostile_prefixes(target.width, flexible)))
    return empty[:start] + prefix + empty[start + width:]
