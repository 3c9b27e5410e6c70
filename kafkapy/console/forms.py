"""Reading what the console's forms and query strings send: numbers, KEY=VALUE lines,
header lines and times, each refused with a message that names the field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime


class FormError(ValueError):
    """A field the user filled in that cannot be used; the message names it."""


def integer(fields: Mapping[str, str], name: str, label: str, default: int | None = None, minimum: int | None = None) -> int:
    text = fields.get(name, "").strip()
    if not text:
        if default is None:
            raise FormError(f"{label}: a number is needed")
        return default
    try:
        value = int(text)
    except ValueError:
        raise FormError(f"{label}: {text!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise FormError(f"{label}: {value} is less than {minimum}")
    return value


def optional_integer(fields: Mapping[str, str], name: str, label: str) -> int | None:
    return integer(fields, name, label) if fields.get(name, "").strip() else None


def partition_list(text: str, label: str) -> list[int]:
    """Partitions written as "0, 2, 5" (empty: none named)."""
    partitions = []
    for part in text.replace(",", " ").split():
        try:
            partitions.append(int(part))
        except ValueError:
            raise FormError(f"{label}: {part!r} is not a partition number") from None
        if partitions[-1] < 0:
            raise FormError(f"{label}: {part} is not a partition number")
    return partitions


def config_lines(text: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines ignored) as configs."""
    configs = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise FormError(f"Configs, line {number}: {line.strip()!r} is not KEY=VALUE")
        configs[name.strip()] = value.strip()
    return configs


def config_changes(fields: Mapping[str, str], current: Mapping[str, str | None]) -> tuple[dict[str, str], list[str]]:
    """What a topic's config form asks for: the configs to set (those whose `set.NAME`
    field differs from the current value) and those to reset to their default (`reset.NAME`)."""
    reset = sorted(key.removeprefix("reset.") for key in fields if key.startswith("reset."))
    changed = {}
    for key, value in fields.items():
        name = key.removeprefix("set.")
        if key.startswith("set.") and name not in reset and value != (current.get(name) or ""):
            changed[name] = value
    return changed, reset


def header_lines(text: str) -> list[tuple[str, bytes | None]]:
    """NAME: VALUE lines as record headers (NAME alone: a header with a null value); a
    name may repeat, as Kafka allows."""
    headers: list[tuple[str, bytes | None]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not name.strip():
            raise FormError(f"Headers, line {number}: {line.strip()!r} has no header name before the colon")
        headers.append((name.strip(), value.strip().encode() if sep else None))
    return headers


def timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch, given as such or as an ISO 8601 time (UTC unless it names its zone)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FormError(f"Timestamp: {text!r} is neither milliseconds since the epoch nor an ISO 8601 time "
                        f"such as 2024-05-01T12:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def format_timestamp(ms: int) -> str:
    """A record's timestamp as UTC ISO 8601 with milliseconds; Kafka's -1 (none) as "-"."""
    if ms < 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_size(size: int) -> str:
    """A size in bytes as people read it: 1023 B, 1.5 KiB, 12.0 MiB."""
    if size < 1024:
        return f"{size} B"
    amount = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"
