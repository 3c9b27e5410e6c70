"""Python source for the protocol messages' versions that Kafka 3.9 accepted and kio no
longer carries (KIP-896 removed them from Kafka 4.0, and kio follows 4.x), in kio's own
shape: field types as kio's generator gives them (error codes as ErrorCode, the
durations it knows as timedeltas named without "Ms", its timestamps as TZAware, an
entityType as kio's nominal type), so that a handler sees the same kind of object at
every version, and kio's serial code reads and writes them.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import kio.schema.types

from .emit import docstring, header, snake_case
from .spec import Field, Schema, Struct

# The field names kio's generator types specially: the same sets, so that a field keeps
# its name and type across the versions kio has and the versions generated here.
ERROR_CODE_NAMES = frozenset({"ErrorCode", "PartitionErrorCode"})
TIMEDELTA_NAMES = frozenset({
    "timeoutMs", "TimeoutMs", "ThrottleTimeMs", "MaxWaitMs", "SessionLifetimeMs", "TransactionTimeoutMs",
    "MaxLifetimeMs", "SessionTimeoutMs", "RebalanceTimeoutMs", "ExpiryTimePeriodMs", "RenewPeriodMs",
    "RetentionTimeMs", "HeartbeatIntervalMs", "PushIntervalMs",
})
DATETIME_NAMES = frozenset({"IssueTimestampMs", "ExpiryTimestampMs", "MaxTimestampMs", "TransactionStartTimeMs", "LogAppendTimeMs"})

_HINTS = {
    "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint16": "u16", "uint32": "u32", "uint64": "u64",
    "float64": "f64", "string": "str", "bytes": "bytes", "records": "Records", "bool": "bool", "uuid": "uuid.UUID",
    "error_code": "ErrorCode", "timedelta_i32": "i32Timedelta", "timedelta_i64": "i64Timedelta", "datetime_i64": "TZAware",
}
_NUMBERS = frozenset({"int8", "int16", "int32", "int64", "uint16", "uint32", "uint64", "float64"})
_PRIMITIVE_MODULE = {"i8", "i16", "i32", "i64", "u16", "u32", "u64", "f64", "Records", "i32Timedelta", "i64Timedelta", "TZAware"}


def accepted_versions(schema: Schema) -> range:
    """The versions a Kafka broker of the JSON's release accepts by default: all valid
    ones but an unstable latest."""
    versions = schema.valid_versions.each()
    return versions[:-1] if schema.latest_version_unstable else versions


def request_header_version(api_key: int, version: int, flexible: bool) -> int:
    # ControlledShutdown v0 is the one request whose header has no client id.
    if api_key == 7 and version == 0:
        return 0
    return 2 if flexible else 1


def response_header_version(api_key: int, flexible: bool) -> int:
    # ApiVersions answers with header v0 at every version: a client must read it before it
    # knows which versions the broker speaks.
    return 1 if flexible and api_key != 18 else 0


@dataclass
class _Module:
    """What one module's classes need imported, gathered as they are written."""

    standard: set[str] = field(default_factory=set)
    kio: dict[str, set[str]] = field(default_factory=dict)

    def need(self, module: str, name: str) -> None:
        self.kio.setdefault(module, set()).add(name)

    def need_hint(self, hint: str) -> None:
        if hint == "ErrorCode":
            self.need("kio.schema.errors", hint)
        elif hint == "uuid.UUID":
            self.standard.add("import uuid")
        elif hint in _PRIMITIVE_MODULE:
            self.need("kio.static.primitive", hint)

    def source(self) -> str:
        dataclasses = "from dataclasses import dataclass, field" if "field" in self.standard else "from dataclasses import dataclass"
        standard = sorted(line for line in self.standard if line.startswith("import ")) + [dataclasses, "from typing import ClassVar"]
        kio_lines = [f"from {module} import {', '.join(sorted(names, key=_isort_key))}" for module, names in sorted(self.kio.items())]
        return "\n".join(standard) + "\n\n" + "\n".join(kio_lines) + "\n"


def _isort_key(name: str) -> tuple[bool, list[object]]:
    """isort's order within one import: classes before functions and variables, numbers
    compared as numbers (i8 before i16)."""
    natural = [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]
    return (not name[0].isupper(), natural)


def message_module(schema: Schema, version: int) -> str:
    """The module of one version of a request or response schema."""
    flexible = version in schema.flexible_versions
    module = _Module()
    module.need("kio.static.constants", "EntityType")
    module.need("kio.static.primitive", "i16")
    if schema.kind == "request":
        header_class = "RequestHeader"
        header_module = f"kio.schema.request_header.v{request_header_version(schema.api_key or 0, version, flexible)}.header"
    else:
        header_class = "ResponseHeader"
        header_module = f"kio.schema.response_header.v{response_header_version(schema.api_key or 0, flexible)}.header"
    module.need(header_module, header_class)
    classes = [
        _message_class(schema, struct, version, flexible, header_class, module)
        for struct in _structs_innermost_first(schema.root, version)
    ]
    body = "\n\n".join(classes)
    return header(schema, f"{schema.name}, version {version}.") + "\n" + module.source() + "\n\n" + body


def version_package(schema_names: list[str]) -> str:
    """A version's `__init__`: the request and response entities, as kio's packages export them."""
    imports = [f"from .{_kind(name)} import {name}" for name in sorted(schema_names)]
    exports = "".join(f'    "{name}",\n' for name in sorted(schema_names))
    return "\n".join(imports) + "\n\n__all__ = (\n" + exports + ")\n"


def _kind(schema_name: str) -> str:
    return "request" if schema_name.endswith("Request") else "response"


def _structs_innermost_first(root: Struct, version: int) -> Iterator[Struct]:
    """Each struct the version uses, once, every struct before the ones holding it."""
    seen: set[str] = set()

    def visit(current: Struct) -> Iterator[Struct]:
        for member in current.fields:
            if version in member.versions and member.struct is not None and member.struct.name not in seen:
                seen.add(member.struct.name)
                yield from visit(member.struct)
        yield current

    yield from visit(root)


def _message_class(schema: Schema, struct: Struct, version: int, flexible: bool, header_class: str, module: _Module) -> str:
    entity_type = schema.kind if struct is schema.root else "nested"
    lines = [
        "@dataclass(frozen=True, slots=True, kw_only=True)",
        f"class {struct.name}:",
        f"    __type__: ClassVar = EntityType.{entity_type}",
        f"    __version__: ClassVar[i16] = i16({version})",
        f"    __flexible__: ClassVar[bool] = {flexible}",
        f"    __api_key__: ClassVar[i16] = i16({schema.api_key})",
        f"    __header_schema__: ClassVar[type[{header_class}]] = {header_class}",
    ]
    for member in struct.fields:
        if version in member.versions:
            lines.append(_message_field(member, version, flexible, module))
            lines.extend(docstring(member))
    return "\n".join(lines) + "\n"


def _message_field(member: Field, version: int, flexible: bool, module: _Module) -> str:
    tag = member.tag if version in member.tagged_versions else None
    if tag is not None and not flexible:
        raise ValueError(f"{member.name} is tagged in version {version}, which is not flexible")
    nullable = version in member.nullable_versions
    metadata: dict[str, object] = {}
    default: str | None
    if member.struct is not None:
        name, hint = snake_case(member.name), member.struct.name
        if member.is_array:
            default = "()" if tag is not None else None
        elif member.default == "null" or (tag is not None and member.ignorable):
            default = "None"
            nullable = True
        elif tag is not None:
            raise NotImplementedError(f"{member.name}: a tagged struct that is not ignorable")
        else:
            default = None
    else:
        kio_name, kind = _kio_field(member)
        name = snake_case(kio_name)
        custom = _custom_type(member.entity_type)
        hint = custom or _HINTS[kind]
        if custom is not None:
            module.need("kio.schema.types", custom)
        else:
            module.need_hint(hint)
        metadata["kafka_type"] = kind
        if member.is_array:
            default = "None" if member.default == "null" else "()"
        else:
            nullable = kind not in _NUMBERS and (
                (tag is not None and member.ignorable and member.default is None)
                or nullable
                or (kind == "datetime_i64" and str(member.default) == "-1")
            )
            if member.default is not None:
                default = _default(kind, member.default, nullable, custom, module)
            elif tag is not None and member.ignorable:
                default = _tagged_default(kind, module)
            else:
                default = None
    if tag is not None:
        metadata["tag"] = tag
    annotation = f"tuple[{hint}, ...]" if member.is_array else hint
    if nullable or (not member.is_array and hint == "uuid.UUID"):
        annotation += " | None"
    arguments = []
    if metadata:
        # json.dumps spells a dict of str and int as Python does, in double quotes.
        arguments.append(f"metadata={json.dumps(metadata)}")
    if default is not None:
        arguments.append(f"default={default}")
    if not arguments:
        return f"    {name}: {annotation}"
    module.standard.add("field")
    return f"    {name}: {annotation} = field({', '.join(arguments)})"


def _kio_field(member: Field) -> tuple[str, str]:
    """The field's name and kafka_type as kio's generator gives them."""
    if member.name in ERROR_CODE_NAMES:
        return member.name, "error_code"
    if member.name in TIMEDELTA_NAMES:
        kind = {"int32": "timedelta_i32", "int64": "timedelta_i64"}[member.item_type]
        return member.name.removesuffix("Ms"), kind
    if member.name in DATETIME_NAMES:
        if member.item_type != "int64":
            raise NotImplementedError(f"{member.name}: a timestamp of type {member.item_type}")
        return member.name.removesuffix("Ms"), "datetime_i64"
    if member.name.endswith("Ms"):
        raise NotImplementedError(f"{member.name} looks like a time field kio's generator does not type")
    return member.name, member.item_type


def _custom_type(entity_type: str | None) -> str | None:
    if entity_type is None:
        return None
    name = entity_type[0].upper() + entity_type[1:]
    if not hasattr(kio.schema.types, name):
        raise NotImplementedError(f"kio has no type for entityType {entity_type}")
    return name


def _default(kind: str, default: object, nullable: bool, custom: str | None, module: _Module) -> str:
    text = str(default)
    if text == "null":
        if not nullable:
            raise ValueError(f"a {kind} field defaults to null but is not nullable")
        return "None"
    wrap = (lambda value: f"{custom}({value})") if custom else (lambda value: value)
    if kind == "string":
        return wrap(repr(text))
    if kind in _NUMBERS - {"float64"}:
        number = int(text, 0)
        return wrap(str(number)) if custom else f"{_HINTS[kind]}({number})"
    if kind == "float64":
        return wrap(text)
    if kind == "bool":
        return wrap(str(text.lower() == "true"))
    if kind == "error_code":
        module.need("kio.schema.errors", "ErrorCode")
        return f"ErrorCode({int(text)})"
    if kind in ("timedelta_i32", "timedelta_i64"):
        module.standard.add("import datetime")
        return f"{_HINTS[kind]}.parse(datetime.timedelta(milliseconds={int(text)}))"
    if kind == "datetime_i64" and text == "-1":
        return "None"
    raise NotImplementedError(f"no default {text!r} for {kind}")


def _tagged_default(kind: str, module: _Module) -> str:
    """The default of an ignorable tagged field that names none: zero for numbers, none
    for an error code, None for the rest (the field is then left out)."""
    if kind in _NUMBERS:
        module.need("kio.static.primitive", _HINTS[kind])
        return f"{_HINTS[kind]}(0)"
    if kind == "bool":
        return "False"
    if kind == "error_code":
        return "ErrorCode.none"
    return "None"
