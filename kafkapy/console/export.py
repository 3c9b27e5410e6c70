"""What the messages page shows, as JSON lines for a download: one object per record, each
key, value and header value as the page shows it (a JSON document as JSON, text as a
string) or, for bytes that are not text, in base64; always whole, never cut as on the page."""

from __future__ import annotations

import base64
import json
from typing import Any

from ..client import Record
from .forms import format_timestamp
from .values import detect_format


def exported_value(data: bytes | None, chosen: str = "auto") -> tuple[Any, str]:
    """The value and its encoding: "null", "json" (the document itself), "text" or "base64"."""
    if data is None:
        return None, "null"
    detected = detect_format(data)
    if detected == "hex" or chosen == "hex":
        return base64.b64encode(data).decode("ascii"), "base64"
    if detected == "json" and chosen in ("auto", "json"):
        return json.loads(data), "json"
    return data.decode("utf-8"), "text"


def record_line(partition: int, record: Record, value_format: str) -> str:
    key, key_encoding = exported_value(record.key, value_format)
    value, value_encoding = exported_value(record.value, value_format)
    headers = []
    for name, header_value in record.headers:
        shown, encoding = exported_value(header_value, "text")
        headers.append({"name": name, "value": shown, "encoding": encoding})
    return json.dumps({
        "partition": partition, "offset": record.offset, "timestamp": record.timestamp,
        "timestamp_utc": format_timestamp(record.timestamp),
        "key": key, "key_encoding": key_encoding, "value": value, "value_encoding": value_encoding,
        "headers": headers,
    }, ensure_ascii=False) + "\n"
