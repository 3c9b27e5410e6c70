"""The generated schemas seen across versions: the class of a version, imported when it
is first asked for (start-up imports only the versions kafkapy writes), and a record
moved from one version's class to another's by field name."""

import importlib
from dataclasses import fields, is_dataclass
from functools import cache
from typing import Any, get_args, get_origin


@cache
def schema_class(package: str, version: int) -> type | None:
    """The class of `version` of the generated schema `package` (a full module name, such
    as kafkapy.schema.metadata.partition_record); None if the schema has no such version."""
    schema = importlib.import_module(package)
    if not schema.LOWEST_VERSION <= version <= schema.HIGHEST_VERSION:
        return None
    class_: type = getattr(importlib.import_module(f"{package}.v{version}"), schema.SCHEMA_NAME)
    return class_


def convert(source: Any, target: type) -> Any:
    """`source` as an instance of the dataclass `target`, copying fields by name: fields
    `target` lacks are dropped (as Kafka drops a field the written version lacks), fields
    `source` lacks keep `target`'s default; structs, and arrays of them, are converted too."""
    if type(source) is target:
        return source
    values = {}
    for name, struct, is_array in _field_plan(target):
        if not hasattr(source, name):
            continue
        value = getattr(source, name)
        if struct is not None and value is not None:
            value = tuple(convert(item, struct) for item in value) if is_array else convert(value, struct)
        values[name] = value
    return target(**values)


@cache
def _field_plan(target: type) -> tuple[tuple[str, type | None, bool], ...]:
    """Each field of `target`: its name, the struct it holds if any, whether an array of it."""
    return tuple((field.name, *_struct_of(field.type)) for field in fields(target))


def _struct_of(annotation: Any) -> tuple[type | None, bool]:
    """(S, is an array) for an annotation S, `tuple[S, ...]`, either `| None`, where S is a
    struct; (None, False) for anything else."""
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is tuple and isinstance(item := get_args(candidate)[0], type) and is_dataclass(item):
            return item, True
        if isinstance(candidate, type) and is_dataclass(candidate):
            return candidate, False
    return None, False
