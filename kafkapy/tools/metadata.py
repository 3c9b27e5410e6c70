"""`kafkapy metadata dump PATH`: print the KRaft metadata log or its snapshots decoded,
like kafka-dump-log.sh --cluster-metadata-decoder. PATH is the metadata partition's
directory (its snapshots, then its segments), a `.log` segment or a `.checkpoint`
snapshot. Reads files only; no broker needed."""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from kio.schema.snapshot_footer_record.v0 import SnapshotFooterRecord
from kio.schema.snapshot_header_record.v0 import SnapshotHeaderRecord
from kio.serial import entity_reader

from ..log.manager import kafka_uuid
from ..metadata.records import UnknownMetadataRecord, decode_record
from ..wire.build import to_dict
from ..wire.records import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    CONTROL_LEADER_CHANGE,
    CONTROL_SNAPSHOT_FOOTER,
    CONTROL_SNAPSHOT_HEADER,
    BatchHeader,
    Record,
    control_type,
)
from .dump_log import dump_segment

_CONTROL_MESSAGES: dict[int, tuple[str, Any]] = {
    CONTROL_SNAPSHOT_HEADER: ("SnapshotHeader", entity_reader(SnapshotHeaderRecord)),
    CONTROL_SNAPSHOT_FOOTER: ("SnapshotFooter", entity_reader(SnapshotFooterRecord)),
}
_CONTROL_NAMES = {CONTROL_ABORT: "Abort", CONTROL_COMMIT: "Commit", CONTROL_LEADER_CHANGE: "LeaderChange"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, uuid.UUID):
        return kafka_uuid(value)
    return value


def _type_name(record: Any) -> str:
    """Kafka's MetadataRecordType name: TopicRecord -> TOPIC_RECORD."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(record).__name__).upper()


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def print_metadata_record(header: BatchHeader, r: Record) -> str:
    """A record as Kafka's cluster metadata decoder prints it: control records by name
    with their message, data records as {"type", "version", "data"}."""
    if header.is_control:
        kind = control_type(r)
        if kind in _CONTROL_MESSAGES:
            name, read = _CONTROL_MESSAGES[kind]
            message, _ = read(r.value or b"", 0)
            return f"{name}: {_compact(_json_value(to_dict(message)))}"
        return f"{_CONTROL_NAMES.get(kind, 'UnknownControlRecord')}: type {kind}"
    size = f"keySize: {len(r.key) if r.key is not None else -1} valueSize: {len(r.value) if r.value is not None else -1}"
    try:
        record = decode_record(r.value or b"")
    except (UnknownMetadataRecord, ValueError, IndexError) as e:
        return f"{size} payload: cannot decode: {e}"
    payload = {"type": _type_name(record), "version": int(type(record).__version__), "data": _json_value(to_dict(record))}
    return f"{size} payload: {_compact(payload)}"


def dump_path(path: Path) -> int:
    """Dumps a file, or a metadata directory's snapshots then segments; returns problems found."""
    if path.is_dir():
        files = sorted(path.glob("*.checkpoint")) + sorted(path.glob("*.log"))
    else:
        files = [path]
    return sum(dump_segment(f, True, sys.stdout, print_metadata_record) for f in files)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kafkapy metadata", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump", help="print the records of a metadata log directory, segment or snapshot")
    dump.add_argument("path", type=Path, help="__cluster_metadata-0 directory, .log segment or .checkpoint snapshot")
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"kafkapy metadata dump: no such file or directory: {args.path}", file=sys.stderr)
        return 2
    return 1 if dump_path(args.path) else 0
