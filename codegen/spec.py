"""Kafka's message JSON, read into a small model: the schema, its structs and fields,
and the version ranges that say which fields a version has, which are nullable, tagged
or flexible.

Kafka's JSON allows `//` comments, which `json` does not: `strip_comments` drops them
(outside string literals) before parsing.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRIMITIVES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint16", "uint32", "float64", "string", "bytes", "uuid", "records"}
)


@dataclass(frozen=True)
class Versions:
    """An inclusive range of versions; `highest` None means open-ended ("3+")."""

    lowest: int
    highest: int | None

    @classmethod
    def parse(cls, text: str | None) -> "Versions":
        if text is None or text == "none":
            return NO_VERSIONS
        if text.endswith("+"):
            return cls(int(text[:-1]), None)
        low, _, high = text.partition("-")
        return cls(int(low), int(high or low))

    def __contains__(self, version: int) -> bool:
        return self.lowest <= version and (self.highest is None or version <= self.highest)

    def each(self) -> range:
        assert self.highest is not None, "an open range has no last version"
        return range(self.lowest, self.highest + 1)


NO_VERSIONS = Versions(0, -1)


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    """As Kafka spells it: a primitive, a struct name, or either prefixed by "[]"."""
    versions: Versions
    nullable_versions: Versions
    tagged_versions: Versions
    tag: int | None
    default: Any
    """None when the JSON gives no default; the JSON null is the string "null"."""
    about: str
    struct: "Struct | None"
    """The struct this field holds (or an array of), declared inline or in commonStructs."""
    entity_type: str | None = None
    """Kafka's "entityType" (topicName, brokerId...): kio gives such fields a type of their own."""
    ignorable: bool = False

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def item_type(self) -> str:
        return self.type.removeprefix("[]")


@dataclass(frozen=True)
class Struct:
    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Schema:
    name: str
    kind: str
    """Kafka's "type": "metadata" for KRaft records, "data" for coordinator records."""
    api_key: int | None
    valid_versions: Versions
    flexible_versions: Versions
    root: Struct
    source: str
    """The JSON file, relative to Kafka's repository."""
    latest_version_unstable: bool = False
    """Kafka's "latestVersionUnstable": a broker accepts the highest version only when told to."""


def strip_comments(text: str) -> str:
    return re.sub(r'"(?:\\.|[^"\\])*"|//[^\n]*', lambda match: match.group() if match.group().startswith('"') else "", text)


def load_schema(path: Path, source: str) -> Schema:
    raw = json.loads(strip_comments(path.read_text()))
    common = {struct["name"]: struct for struct in raw.get("commonStructs", ())}
    root = _struct(raw["name"], raw["fields"], common)
    return Schema(
        name=raw["name"],
        kind=raw["type"],
        api_key=raw.get("apiKey"),
        valid_versions=Versions.parse(raw["validVersions"]),
        flexible_versions=Versions.parse(raw["flexibleVersions"]),
        root=root,
        source=source,
        latest_version_unstable=bool(raw.get("latestVersionUnstable", False)),
    )


def _struct(name: str, raw_fields: list[dict[str, Any]], common: dict[str, dict[str, Any]]) -> Struct:
    return Struct(name, tuple(_field(raw, common) for raw in raw_fields))


def _field(raw: dict[str, Any], common: dict[str, dict[str, Any]]) -> Field:
    field_type: str = raw["type"]
    item_type = field_type.removeprefix("[]")
    struct = None
    if "fields" in raw:
        struct = _struct(item_type, raw["fields"], common)
    elif item_type not in PRIMITIVES:
        struct = _struct(item_type, common[item_type]["fields"], common)
    tagged_versions = Versions.parse(raw.get("taggedVersions"))
    # A tagged field may leave out "versions": it then exists where it is tagged.
    versions = Versions.parse(raw["versions"]) if "versions" in raw else tagged_versions
    default = raw.get("default")
    return Field(
        name=raw["name"],
        type=field_type,
        versions=versions,
        nullable_versions=Versions.parse(raw.get("nullableVersions")),
        tagged_versions=tagged_versions,
        tag=int(raw["tag"]) if "tag" in raw else None,
        default="null" if "default" in raw and default is None else default,
        about=raw.get("about", ""),
        struct=struct,
        entity_type=raw.get("entityType"),
        ignorable=bool(raw.get("ignorable", False)),
    )
