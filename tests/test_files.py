"""replace_file: a crash or a failure leaves the old content or the new, and once it
returns the new content and its name are both on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafkapy.log import files
from kafkapy.log.files import replace_file


def test_replaces_content_from_bytes_or_chunks(tmp_path: Path):
    target = tmp_path / "checkpoint"
    replace_file(target, b"old\n")
    replace_file(target, [b"new ", b"", b"content\n"])
    assert target.read_bytes() == b"new content\n"
    assert os.listdir(tmp_path) == ["checkpoint"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "snapshot.checkpoint"
    replace_file(target, b"old")
    temp = tmp_path / "snapshot-1.checkpoint.part"

    def failing() -> Iterator[bytes]:
        yield b"half"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_file(target, failing(), temp=temp)
    assert target.read_bytes() == b"old"
    assert not temp.exists()


def test_fsyncs_the_file_before_the_rename_and_the_directory_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "quorum-state"
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(src: Path, dst: Path) -> None:
        events.append(f"replace {src} -> {dst}")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    replace_file(target, b"{}")
    temp = tmp_path / "quorum-state.tmp"
    assert events == [f"fsync {temp}", f"replace {temp} -> {target}", f"fsync {tmp_path}"]
