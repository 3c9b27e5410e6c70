"""Builds a kio entity of any version from plain, version-independent data.

Handlers describe a response once, as dicts holding every field any version has;
`build` keeps the fields the chosen version defines, converts Kafka's primitive forms
(ints for error codes, milliseconds for durations and timestamps) into kio's types,
and recurses into nested structs. A field the version requires but the data lacks is
a bug, reported at once.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, is_dataclass
from functools import cache
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from kio.schema.errors import ErrorCode

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_ZERO_UUID = uuid.UUID(int=0)


def ms(value: datetime.timedelta | int | None) -> int:
    """Milliseconds of a duration field as kio decodes it."""
    if value is None:
        return -1
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


def timestamp_ms(value: datetime.datetime | int | None) -> int:
    if value is None:
        return -1
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    return int(value)


def _convert_error(v: Any) -> Any:
    return v if isinstance(v, ErrorCode) else ErrorCode(v)


def _convert_timedelta(v: Any) -> Any:
    return v if isinstance(v, datetime.timedelta) else datetime.timedelta(milliseconds=v)


def _convert_datetime(v: Any) -> Any:
    if v is None or isinstance(v, datetime.datetime):
        return v
    return None if v < 0 else _EPOCH + datetime.timedelta(milliseconds=v)


def _convert_uuid(v: Any) -> Any:
    return _ZERO_UUID if v is None else v


# The longest string every version can carry: a non-flexible string's length is an int16.
_LONGEST_STRING = 32767
_CUT = "..."


def _cut_message(v: Any) -> Any:
    """An error message within what the wire carries: one that echoes a client's very long
    name (a topic name of 32767 characters, say) is cut rather than make the response
    impossible to encode."""
    if v is None or len(v) <= _LONGEST_STRING // 4:
        return v
    encoded = v.encode()
    if len(encoded) <= _LONGEST_STRING:
        return v
    return encoded[: _LONGEST_STRING - len(_CUT)].decode(errors="ignore") + _CUT


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "error_code": _convert_error,
    "timedelta_i32": _convert_timedelta,
    "timedelta_i64": _convert_timedelta,
    "datetime_i64": _convert_datetime,
    "uuid": _convert_uuid,
}


def _nested_type(annotation: Any) -> tuple[type | None, bool]:
    """(entity class, is array) of a field's annotation, or (None, _) for primitives."""
    origin = get_origin(annotation)
    if origin in (UnionType, Union):
        inner = [a for a in get_args(annotation) if a is not NoneType]
        return _nested_type(inner[0])
    if origin is tuple:
        inner_type = get_args(annotation)[0]
        return (inner_type if isinstance(inner_type, type) and is_dataclass(inner_type) else None), True
    return (annotation if isinstance(annotation, type) and is_dataclass(annotation) else None), False


@cache
def _plan(cls: type) -> list[tuple[str, Callable[[Any], Any] | None, type | None, bool, bool]]:
    plan = []
    for f in fields(cls):
        nested, is_array = _nested_type(f.type)
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        convert = _cut_message if f.name == "error_message" else _CONVERTERS.get(f.metadata.get("kafka_type", ""))
        plan.append((f.name, convert, nested, is_array, has_default))
    return plan


def build(cls: type, data: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for name, convert, nested, is_array, has_default in _plan(cls):
        if name not in data:
            if has_default:
                continue
            raise KeyError(f"{cls.__qualname__} v{getattr(cls, '__version__', '?')} needs field {name!r}")
        value = data[name]
        if nested is not None and value is not None:
            value = tuple(build(nested, item) for item in value) if is_array else build(nested, value)
        elif is_array and value is not None:
            value = tuple(convert(v) for v in value) if convert else tuple(value)
        elif convert is not None:
            value = convert(value)
        kwargs[name] = value
    return cls(**kwargs)


def to_dict(entity: Any) -> dict[str, Any]:
    """The fields of a kio entity as a dict, nested entities included (for tests and tools)."""
    out: dict[str, Any] = {}
    for f in fields(entity):
        value = getattr(entity, f.name)
        if is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple) and value and is_dataclass(value[0]):
            value = [to_dict(v) for v in value]
        out[f.name] = value
    return out


def error_response(cls: type, error: ErrorCode) -> Any:
    """A response entity carrying `error` and nothing else: every required field is
    empty, zero or -1, as Kafka's generic error responses are."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.default is not MISSING or f.default_factory is not MISSING:
            continue
        kind = f.metadata.get("kafka_type", "")
        nested, is_array = _nested_type(f.type)
        if is_array:
            kwargs[f.name] = ()
        elif nested is not None:
            kwargs[f.name] = error_response(nested, error)
        elif kind == "error_code":
            kwargs[f.name] = error
        else:
            kwargs[f.name] = _EMPTY_VALUES.get(kind, -1)
    return cls(**kwargs)


_EMPTY_VALUES: dict[str, Any] = {
    "string": "", "bytes": b"", "records": b"", "bool": False, "uuid": _ZERO_UUID,
    "timedelta_i32": datetime.timedelta(0), "timedelta_i64": datetime.timedelta(0), "datetime_i64": None,
}
