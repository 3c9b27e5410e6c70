"""How the console shows a record's bytes: as text, as JSON (pretty) or as hex, picked from
what the bytes are unless the reader chose, and the filter applied while reading."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

FORMATS = ("auto", "text", "json", "hex")
# What one value shows at most: the page stays light with values of megabytes.
SHOWN_BYTES = 64 * 1024
HEX_BYTES_PER_LINE = 16
# Control characters other than tab, newline and carriage return mark bytes that are not text.
_TEXT_CONTROLS = {chr(c) for c in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}


@dataclass(frozen=True)
class ShownValue:
    format: str
    """How it is shown: "null", "text", "json" or "hex"."""
    text: str
    size: int
    """The whole value's size in bytes (what is shown may be cut at SHOWN_BYTES)."""
    note: str = ""


def detect_format(data: bytes | None) -> str:
    """"json" for a JSON object or array, "text" for other UTF-8 text, "hex" for the rest."""
    if data is None:
        return "null"
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return "hex"
    if any(c in _TEXT_CONTROLS for c in decoded):
        return "hex"
    if decoded.strip()[:1] in ("{", "["):
        try:
            json.loads(decoded)
        except ValueError:
            return "text"
        return "json"
    return "text"


def show_value(data: bytes | None, chosen: str = "auto") -> ShownValue:
    """The value in the chosen format ("auto": the detected one). Bytes that are not JSON
    asked to show as JSON show as text, with a note saying so."""
    if data is None:
        return ShownValue("null", "null", 0)
    shown_format = detect_format(data) if chosen == "auto" else chosen
    note = ""
    if shown_format == "json":
        try:
            pretty = json.dumps(json.loads(data), indent=2, ensure_ascii=False)
        except ValueError:
            shown_format, note = "text", "not valid JSON: shown as text"
        else:
            return _cut(ShownValue("json", pretty, len(data)))
    if shown_format == "hex":
        return _cut(ShownValue("hex", hex_dump(data[:SHOWN_BYTES]), len(data), note))
    return _cut(ShownValue("text", data[:SHOWN_BYTES].decode("utf-8", errors="backslashreplace"), len(data), note))


def _cut(shown: ShownValue) -> ShownValue:
    if shown.size <= SHOWN_BYTES and len(shown.text) <= 4 * SHOWN_BYTES:
        return shown
    note = f"showing the first {SHOWN_BYTES // 1024} KiB of {shown.size} bytes"
    text = shown.text if shown.format == "hex" else shown.text[:SHOWN_BYTES]
    return ShownValue(shown.format, text, shown.size, "; ".join(n for n in (shown.note, note) if n))


def hex_dump(data: bytes) -> str:
    """Bytes as lines of 16 hex pairs, each line led by its offset."""
    return "\n".join(
        f"{start:08x}  {data[start:start + HEX_BYTES_PER_LINE].hex(' ')}"
        for start in range(0, len(data), HEX_BYTES_PER_LINE)
    )


FILTER_FIELDS = ("any", "key", "value", "headers")


def record_matches(needle: str, field: str, key: bytes | None, value: bytes | None,
                   headers: Sequence[tuple[str, bytes | None]]) -> bool:
    """Whether `needle` occurs, ignoring case, in the record's key, value or a header's name
    or value (`field` says which; "any" for all of them). An empty needle matches all."""
    if not needle:
        return True
    wanted = needle.casefold()

    def has(data: bytes | str | None) -> bool:
        if data is None:
            return False
        text = data if isinstance(data, str) else data.decode("utf-8", errors="backslashreplace")
        return wanted in text.casefold()

    in_headers = field in ("any", "headers") and any(has(name) or has(v) for name, v in headers)
    return in_headers or (field in ("any", "key") and has(key)) or (field in ("any", "value") and has(value))
