"""A clean's swap of segment files, and its recovery after a crash midway."""

from __future__ import annotations

from pathlib import Path

from .files import names_ending
from .segment import Segment

# The stages of a cleaned segment's files before they take a live segment's name.
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"


def _offset_of(path: Path) -> int | None:
    """The base offset a segment file's name starts with, or None for other files."""
    prefix = path.name[:20]
    return int(prefix) if prefix.isdigit() and path.name[20:21] == "." else None


def finish_interrupted_swaps(directory: Path, now_ms: int) -> None:
    """Recovers from a crash during a clean, as Kafka's LogLoader: `.cleaned` files are an
    unfinished clean and go, and with them any `.swap` file at or above the lowest of
    them (a set of swaps that never got whole). Each remaining `.swap` log is finished
    work: the segment files within the offsets it holds are deleted, then every `.swap`
    file takes its live name. Kafka deletes over one span from the lowest swap to the
    highest; each swap's own span is used here, which never takes a segment that lies
    between two swaps."""
    cleaned = [directory / name for name in names_ending(directory, CLEANED_SUFFIX)]
    lowest_cleaned = min((o for p in cleaned if (o := _offset_of(p)) is not None), default=None)
    for path in cleaned:
        path.unlink()
    swaps = []
    for path in [directory / name for name in names_ending(directory, SWAP_SUFFIX)]:
        offset = _offset_of(path)
        if offset is None or (lowest_cleaned is not None and offset >= lowest_cleaned):
            path.unlink()
        else:
            swaps.append(path)
    for path in swaps:
        if not path.name.endswith(".log" + SWAP_SUFFIX):
            continue
        base = _offset_of(path)
        assert base is not None
        swapped = Segment.open(directory, base, now_ms, SWAP_SUFFIX)
        end = base
        for _, header in swapped.batches():
            end = header.next_offset
        swapped.close()
        for other in directory.iterdir():
            offset = _offset_of(other)
            if offset is not None and base <= offset < end and not other.name.endswith(SWAP_SUFFIX):
                other.unlink()
    for path in swaps:
        path.rename(path.with_name(path.name[: -len(SWAP_SUFFIX)]))
