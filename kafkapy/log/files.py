"""Replacing a small file so that a crash leaves the old content or the new, never a torn
or empty file: written to a temporary file, fsynced, renamed over the target, and the
directory fsynced so that the rename itself survives. Every checkpoint, meta.properties,
the quorum state and each snapshot is written through replace_file. Blocking: callers on
the event loop hand it to a worker thread where they already did."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_CHECKPOINT_VERSION = "0"


class StorageError(Exception):
    """What is on disk cannot be trusted or contradicts itself: the broker refuses to
    start rather than guess, with a message naming the file and what to do."""


class CheckpointError(StorageError):
    """A checkpoint file that is malformed or truncated, and where."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}, line {line}: {problem}")
        self.path = path


def read_checkpoint_file(path: Path, parse: Callable[[list[str]], T]) -> list[T]:
    """The entries of a file in Kafka's checkpoint layout (a version, 0; a count; then that
    many lines of space-separated fields, each ended by a newline), each made by `parse`
    from its fields; none when there is no file. A file that is malformed or cut short
    raises CheckpointError naming the line."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as e:
        raise CheckpointError(path, text_line(e.object, e.start), "not text") from None
    lines = text.split("\n")
    if lines.pop() != "":
        raise CheckpointError(path, len(lines) + 1, "truncated: the line has no end")
    if not lines or lines[0] != _CHECKPOINT_VERSION:
        raise CheckpointError(path, 1, f"unrecognised version {lines[0] if lines else ''!r}, expected {_CHECKPOINT_VERSION}")
    if len(lines) < 2 or not lines[1].isdigit():
        raise CheckpointError(path, 2, f"expected the number of entries, found {lines[1] if len(lines) > 1 else ''!r}")
    expected = int(lines[1])
    if len(lines) - 2 != expected:
        raise CheckpointError(path, len(lines) + 1, f"expected {expected} entries, found {len(lines) - 2}")
    entries = []
    for number, line in enumerate(lines[2:], start=3):
        try:
            entries.append(parse(line.split(" ")))
        except ValueError:
            raise CheckpointError(path, number, f"malformed entry {line!r}") from None
    return entries


def names_ending(directory: Path, *suffixes: str) -> list[str]:
    """The names of the files in `directory` that end with one of `suffixes`: one listing,
    several times cheaper than pathlib's glob, which a start pays for every partition."""
    return [name for name in os.listdir(directory) if name.endswith(suffixes)]


def text_line(data: bytes, position: int) -> int:
    return data.count(b"\n", 0, position) + 1


def replace_file(path: Path, content: bytes | bytearray | Iterable[bytes], temp: Path | None = None) -> None:
    """Makes `content` the file at `path` atomically and durably; `temp` is where it is
    written first (by default beside it, `<name>.tmp`), removed if writing fails."""
    temp = temp or path.with_name(path.name + ".tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for chunk in [content] if isinstance(content, bytes | bytearray) else content:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
