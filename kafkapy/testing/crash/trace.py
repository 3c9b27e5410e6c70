"""Records every change a process makes under one directory, in the order it makes them.

The seam is the one the storage code already has: every durable change kafkapy makes
goes through a handful of `os` functions (`os.open` with O_CREAT or O_TRUNC, `os.write`,
`os.pwrite`, `os.pwritev`, `os.ftruncate`, `os.fsync`, `os.fdatasync`, `os.rename`,
`os.replace`, `os.unlink`, `os.mkdir`, `os.rmdir`; pathlib and shutil.rmtree call these
too). While a `Recorder` is active those functions are wrapped: the real call is made,
and if it touched a file under the recorded root, the operation is appended to the
trace. Anything outside the root passes straight through. The recorder keeps its own
model of the tree (directories and files as inodes, so renames and open descriptors
follow the file, not the name) and resolves each call against it; the trace names
inodes, not paths. Calls are serialised by a lock so that the trace is the order the
kernel saw them in, worker threads included.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = 0  # the recorded directory's inode


@dataclass(frozen=True, slots=True)
class Write:
    inode: int
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Truncate:
    inode: int
    size: int


@dataclass(frozen=True, slots=True)
class Sync:
    """fsync or fdatasync of a file or of a directory."""
    inode: int


@dataclass(frozen=True, slots=True)
class Link:
    """A name made in a directory: a file created, a directory made, or the target of a
    rename (`source` then names the directory and name it left)."""
    directory: int
    name: str
    inode: int
    is_dir: bool
    source: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class Unlink:
    """A name removed from a directory (a file unlinked or a directory removed)."""
    directory: int
    name: str


Op = Write | Truncate | Sync | Link | Unlink


@dataclass
class _Node:
    is_dir: bool
    entries: dict[str, int] = field(default_factory=dict)


class Recorder:
    """`with Recorder(root) as recorder:` ... `recorder.ops` is the trace so far; `mark()`
    is its length, for tying an event seen outside (an acknowledgement) to a point in it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self.ops: list[Op] = []
        self._nodes: dict[int, _Node] = {ROOT: _Node(True)}
        self._next_inode = ROOT + 1
        self._fds: dict[int, int] = {}  # descriptor -> inode
        self._positions: dict[int, int] = {}  # descriptor -> file position, for os.write
        self._appending: set[int] = set()
        self._sizes: dict[int, int] = {}
        self._lock = threading.RLock()
        self._saved: dict[str, Callable[..., Any]] = {}

    def mark(self) -> int:
        with self._lock:
            return len(self.ops)

    def __enter__(self) -> Recorder:
        wrappers: dict[str, Callable[..., Any]] = {
            "open": self._open, "close": self._close, "write": self._write, "pwrite": self._pwrite,
            "pwritev": self._pwritev, "ftruncate": self._ftruncate, "fsync": self._fsync,
            "fdatasync": self._fsync, "rename": self._rename, "replace": self._rename,
            "unlink": self._unlink, "remove": self._unlink, "mkdir": self._mkdir, "rmdir": self._rmdir,
        }
        for name, wrapper in wrappers.items():
            self._saved[name] = getattr(os, name)
            setattr(os, name, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(os, name, original)
        self._saved.clear()

    # Resolving names against the model

    def _locate(self, path: Any, dir_fd: int | None) -> tuple[int, str] | None:
        """(directory inode, name) of a path under the root; None for one outside it."""
        if dir_fd is not None and not os.path.isabs(path):
            directory = self._fds.get(dir_fd)
            return None if directory is None else (directory, os.fsdecode(path))
        full = Path(os.path.abspath(os.fsdecode(path)))
        parent = Path(os.path.realpath(full.parent))
        if parent != self.root and self.root not in parent.parents:
            return None if full != self.root else (-1, "")
        directory = ROOT
        for part in parent.relative_to(self.root).parts:
            found = self._nodes[directory].entries.get(part)
            if found is None:
                return None  # made before recording began: not ours
            directory = found
        return directory, full.name

    def _lookup(self, located: tuple[int, str]) -> int | None:
        directory, name = located
        if directory == -1:
            return ROOT
        return self._nodes[directory].entries.get(name)

    def _new_inode(self, is_dir: bool) -> int:
        inode = self._next_inode
        self._next_inode += 1
        self._nodes[inode] = _Node(is_dir)
        return inode

    # The wrapped calls

    def _open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        with self._lock:
            fd: int = self._saved["open"](path, flags, mode, dir_fd=dir_fd)
            located = self._locate(path, dir_fd)
            if located is None:
                return fd
            inode = self._lookup(located)
            if inode is None:
                inode = self._new_inode(False)
                self._nodes[located[0]].entries[located[1]] = inode
                self.ops.append(Link(located[0], located[1], inode, False))
                self._sizes[inode] = 0
            elif flags & os.O_TRUNC and not self._nodes[inode].is_dir:
                self.ops.append(Truncate(inode, 0))
                self._sizes[inode] = 0
            self._fds[fd] = inode
            self._positions[fd] = 0
            if flags & os.O_APPEND:
                self._appending.add(fd)
            return fd

    def _close(self, fd: int) -> None:
        with self._lock:
            self._saved["close"](fd)
            self._fds.pop(fd, None)
            self._positions.pop(fd, None)
            self._appending.discard(fd)

    def _record_write(self, fd: int, offset: int, data: bytes) -> None:
        inode = self._fds.get(fd)
        if inode is None or not data:
            return
        self.ops.append(Write(inode, offset, data))
        self._sizes[inode] = max(self._sizes.get(inode, 0), offset + len(data))

    def _write(self, fd: int, data: Any) -> int:
        with self._lock:
            written: int = self._saved["write"](fd, data)
            if fd in self._fds:
                inode = self._fds[fd]
                position = self._sizes.get(inode, 0) if fd in self._appending else self._positions[fd]
                self._record_write(fd, position, bytes(memoryview(data)[:written]))
                self._positions[fd] = position + written
            return written

    def _pwrite(self, fd: int, data: Any, offset: int) -> int:
        with self._lock:
            written: int = self._saved["pwrite"](fd, data, offset)
            self._record_write(fd, offset, bytes(memoryview(data)[:written]))
            return written

    def _pwritev(self, fd: int, buffers: Any, offset: int, *flags: int) -> int:
        with self._lock:
            buffers = list(buffers)
            written: int = self._saved["pwritev"](fd, buffers, offset, *flags)
            if fd in self._fds:
                self._record_write(fd, offset, b"".join(bytes(b) for b in buffers)[:written])
            return written

    def _ftruncate(self, fd: int, length: int) -> None:
        with self._lock:
            self._saved["ftruncate"](fd, length)
            inode = self._fds.get(fd)
            if inode is not None:
                self.ops.append(Truncate(inode, length))
                self._sizes[inode] = length

    def _fsync(self, fd: int) -> None:
        with self._lock:
            inode = self._fds.get(fd)
            original = self._saved["fsync"]
            original(fd)
            if inode is not None:
                self.ops.append(Sync(inode))

    def _rename(self, src: Any, dst: Any, *, src_dir_fd: int | None = None, dst_dir_fd: int | None = None) -> None:
        with self._lock:
            self._saved["rename"](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
            source, target = self._locate(src, src_dir_fd), self._locate(dst, dst_dir_fd)
            if source is None or target is None:
                if (source is None) != (target is None):
                    raise AssertionError(f"a rename across the recorded root's edge: {src} -> {dst}")
                return
            inode = self._nodes[source[0]].entries.pop(source[1])
            self._nodes[target[0]].entries[target[1]] = inode
            self.ops.append(Link(target[0], target[1], inode, self._nodes[inode].is_dir, source))

    def _remove_name(self, operation: str, path: Any, dir_fd: int | None) -> None:
        with self._lock:
            self._saved[operation](path, dir_fd=dir_fd)
            located = self._locate(path, dir_fd)
            if located is not None and located[0] != -1:
                self._nodes[located[0]].entries.pop(located[1], None)
                self.ops.append(Unlink(*located))

    def _unlink(self, path: Any, *, dir_fd: int | None = None) -> None:
        self._remove_name("unlink", path, dir_fd)

    def _rmdir(self, path: Any, *, dir_fd: int | None = None) -> None:
        self._remove_name("rmdir", path, dir_fd)

    def _mkdir(self, path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        with self._lock:
            self._saved["mkdir"](path, mode, dir_fd=dir_fd)
            located = self._locate(path, dir_fd)
            if located is not None and located[0] != -1:
                inode = self._new_inode(True)
                self._nodes[located[0]].entries[located[1]] = inode
                self.ops.append(Link(located[0], located[1], inode, True))

