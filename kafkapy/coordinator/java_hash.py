"""Java's String.hashCode, by which Kafka's coordinators pick a key's partition of their
internal topic; its own module so that either coordinator uses it without the other."""

from __future__ import annotations


def java_string_hash(text: str) -> int:
    """Java's String.hashCode: over UTF-16 code units, in signed 32-bit arithmetic."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h
