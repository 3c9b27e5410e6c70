"""replace_file: a crash or a failure leaves the old content or the new, and once it
returns the new content and its name are both on disk. read_checkpoint_file: a checkpoint
is read whole or refused, naming the line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafkapy.log import files
from kafkapy.log.files import CheckpointError, read_checkpoint_file, replace_file


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


def pair(fields: list[str]) -> tuple[int, int]:
    epoch, offset = fields
    return int(epoch), int(offset)


def test_reads_a_checkpoint_and_a_missing_one_as_empty(tmp_path: Path):
    path = tmp_path / "leader-epoch-checkpoint"
    assert read_checkpoint_file(path, pair) == []
    path.write_bytes(b"0\n2\n0 0\n3 17\n")
    assert read_checkpoint_file(path, pair) == [(0, 0), (3, 17)]


@pytest.mark.parametrize(("content", "problem"), [
    (b"", "line 1: unrecognised version '', expected 0"),
    (b"1\n0\n", "line 1: unrecognised version '1', expected 0"),
    (b"0\n", "line 2: expected the number of entries, found ''"),
    (b"0\ntwo\n", "line 2: expected the number of entries, found 'two'"),
    (b"0\n2\n0 0\n", "line 4: expected 2 entries, found 1"),
    (b"0\n1\n0 0\n3 17\n", "line 5: expected 1 entries, found 2"),
    (b"0\n1\n0 1", "line 3: truncated: the line has no end"),
    (b"0\n1\n0 x\n", "line 3: malformed entry '0 x'"),
    (b"0\n1\n0 1 2\n", "line 3: malformed entry '0 1 2'"),
    (b"0\n1\n\xff 1\n", "line 3: not text"),
])
def test_a_malformed_or_truncated_checkpoint_names_the_line(tmp_path: Path, content: bytes, problem: str):
    path = tmp_path / "leader-epoch-checkpoint"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as refused:
        read_checkpoint_file(path, pair)
    assert str(refused.value) == f"{path}, {problem}"
