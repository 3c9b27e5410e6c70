"""Replacing a small file so that a crash leaves the old content or the new, never a torn
or empty file: written to a temporary file, fsynced, renamed over the target, and the
directory fsynced so that the rename itself survives. Every checkpoint, meta.properties,
the quorum state and each snapshot is written through replace_file. Blocking: callers on
the event loop hand it to a worker thread where they already did."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class StorageError(Exception):
    """What is on disk cannot be trusted or contradicts itself: the broker refuses to
    start rather than guess, with a message naming the file and what to do."""


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
