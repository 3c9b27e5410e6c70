"""The file states a power failure could leave, given a trace (see trace.py).

The rules, POSIX's guarantees as ext4 in data=ordered mode keeps them, taken at their
weakest so that a state we build is one a real disk may leave:

- A file's data operations (writes and truncations) reach the disk in the order they
  were made: after a crash the file holds the effect of some prefix of them. fsync (or
  fdatasync) of the file makes every data operation before it durable, and nothing else:
  not the file's name.
- The last operation of that prefix may be torn: a write may have reached the disk only
  in part (a prefix of its bytes). ext4's ordered mode never shows stale blocks, so the
  part that did not is simply absent: the file ends earlier, there is no garbage.
- A directory's operations (a name created, a file or directory renamed into it, a name
  removed) likewise reach the disk as a prefix, in order; fsync of the directory makes
  every one before it durable. So a new file, or a rename, survives a crash for sure
  only once its directory was fsynced after it, and is otherwise there or not, as long
  as the operations of that directory before it are there too. A rename belongs to the
  directory it moves the name into (kafkapy renames only within a directory).
- Each file and each directory chooses its prefix independently of the others.

A crash state is a crash point (how many operations of the trace were made) and, for
each file and directory, how many of its operations after its last fsync made it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .trace import ROOT, Link, Op, Sync, Truncate, Unlink, Write

Group = tuple[str, int]  # ("file" or "dir", inode)


def _group_of(op: Op) -> Group | None:
    if isinstance(op, Write | Truncate):
        return ("file", op.inode)
    if isinstance(op, Link | Unlink):
        return ("dir", op.directory)
    return None


@dataclass(frozen=True)
class Pending:
    """One file's or directory's operations at a crash point: the indexes (in the trace)
    of those already durable and of those after its last fsync."""
    group: Group
    durable: tuple[int, ...]
    volatile: tuple[int, ...]


@dataclass(frozen=True)
class CrashState:
    crash_point: int
    kept: tuple[tuple[Group, int], ...]
    """For each group with volatile operations, how many of them made it."""
    torn: tuple[int, int] | None = None
    """(trace index of a write, bytes of it that made it), if the last kept one was torn."""

    def describe(self, ops: Sequence[Op]) -> str:
        lines = [f"crash after operation {self.crash_point} of {len(ops)}"]
        for pending in pending_at(ops, self.crash_point):
            kept = dict(self.kept).get(pending.group, 0)
            for n, i in enumerate(pending.volatile):
                fate = "kept" if n < kept else "lost"
                if self.torn is not None and self.torn[0] == i:
                    fate = f"torn after {self.torn[1]} bytes"
                lines.append(f"  unsynced #{i} {_summary(ops[i])}: {fate}")
        return "\n".join(lines)


def _summary(op: Op) -> str:
    if isinstance(op, Write):
        return f"write inode {op.inode} [{op.offset}, {op.offset + len(op.data)})"
    return repr(op)


def pending_at(ops: Sequence[Op], crash_point: int) -> list[Pending]:
    """Every file's and directory's operations among the first crash_point, split at its last fsync."""
    made: dict[Group, list[int]] = {}
    durable: dict[Group, int] = {}
    for i, op in enumerate(ops[:crash_point]):
        if isinstance(op, Sync):
            for kind in ("file", "dir"):
                if (kind, op.inode) in made:
                    durable[(kind, op.inode)] = len(made[(kind, op.inode)])
            continue
        group = _group_of(op)
        assert group is not None
        made.setdefault(group, []).append(i)
    return [Pending(group, tuple(indexes[: durable.get(group, 0)]), tuple(indexes[durable.get(group, 0):]))
            for group, indexes in made.items()]


def least_and_most(ops: Sequence[Op], crash_point: int) -> tuple[CrashState, CrashState]:
    """Only what was fsynced; and everything (the state a kill -9 leaves)."""
    pending = [p for p in pending_at(ops, crash_point) if p.volatile]
    return (CrashState(crash_point, tuple((p.group, 0) for p in pending)),
            CrashState(crash_point, tuple((p.group, len(p.volatile)) for p in pending)))


def random_state(ops: Sequence[Op], crash_point: int, rng: random.Random) -> CrashState:
    """Each file and directory keeps a random prefix of its unsynced operations; now and
    then one file's last kept write is torn."""
    kept: list[tuple[Group, int]] = []
    writes: list[int] = []
    for p in pending_at(ops, crash_point):
        if not p.volatile:
            continue
        count = rng.choice((0, len(p.volatile), rng.randint(0, len(p.volatile))))
        kept.append((p.group, count))
        if count and isinstance(ops[p.volatile[count - 1]], Write):
            writes.append(p.volatile[count - 1])
    torn = None
    if writes and rng.random() < 0.3:
        index = rng.choice(writes)
        size = len(ops[index].data)  # type: ignore[union-attr]
        if size > 1:
            torn = (index, rng.randint(1, size - 1))
    return CrashState(crash_point, tuple(kept), torn)


def sample_states(ops: Sequence[Op], count: int, rng: random.Random, points: Sequence[int] | None = None) -> Iterator[CrashState]:
    """`count` states: crash points drawn from `points` (by default every point of the
    trace); at each, the least and the most that could survive first, then random ones."""
    points = list(points if points is not None else range(len(ops) + 1))
    made = 0
    for point in rng.sample(points, min(len(points), count)):
        least, most = least_and_most(ops, point)
        for state in (least, most, random_state(ops, point, rng)):
            if made == count:
                return
            yield state
            made += 1


def every_state_kind(ops: Sequence[Op], rng: random.Random, randoms_per_point: int = 1) -> Iterator[CrashState]:
    """At every crash point: the least, the most and `randoms_per_point` random states."""
    for point in range(len(ops) + 1):
        yield from least_and_most(ops, point)
        for _ in range(randoms_per_point):
            yield random_state(ops, point, rng)


def materialise(ops: Sequence[Op], state: CrashState, directory: Path) -> None:
    """Writes the files and directories of the state under `directory` (which exists, empty)."""
    kept = dict(state.kept)
    survivors: set[int] = set()
    for p in pending_at(ops, state.crash_point):
        survivors.update(p.durable)
        survivors.update(p.volatile[: kept.get(p.group, 0)])
    entries: dict[int, dict[str, int]] = {ROOT: {}}
    contents: dict[int, bytearray] = {}
    for i in sorted(survivors):
        op = ops[i]
        if isinstance(op, Write):
            data = op.data[: state.torn[1]] if state.torn is not None and state.torn[0] == i else op.data
            content = contents.setdefault(op.inode, bytearray())
            if len(content) < op.offset:
                content.extend(bytes(op.offset - len(content)))
            content[op.offset: op.offset + len(data)] = data
        elif isinstance(op, Truncate):
            content = contents.setdefault(op.inode, bytearray())
            del content[op.size:]
            content.extend(bytes(op.size - len(content)))
        elif isinstance(op, Link):
            if op.source is not None and entries.get(op.source[0], {}).get(op.source[1]) == op.inode:
                del entries[op.source[0]][op.source[1]]
            entries.setdefault(op.directory, {})[op.name] = op.inode
            if op.is_dir:
                entries.setdefault(op.inode, {})
        elif isinstance(op, Unlink):
            entries.get(op.directory, {}).pop(op.name, None)
    _write_tree(ROOT, directory, entries, contents)


def _write_tree(inode: int, path: Path, entries: dict[int, dict[str, int]], contents: dict[int, bytearray]) -> None:
    for name, child in entries.get(inode, {}).items():
        if child in entries:
            (path / name).mkdir()
            _write_tree(child, path / name, entries, contents)
        else:
            fd = os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, contents.get(child, b""))
            finally:
                os.close(fd)
