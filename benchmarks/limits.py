"""This machine's ceilings, so each throughput can be read as a fraction of them: one
TCP stream over loopback, and sequential writes to the filesystem the brokers write to."""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import time
from pathlib import Path

_CHUNK = 1 << 20


def _send_until_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        data = memoryview(bytes(_CHUNK))
        try:
            while True:
                sock.sendall(data)
        except OSError:  # the receiver has closed: the measurement is over
            pass


def loopback_mb_s(seconds: float = 2.0) -> float:
    """One TCP stream over 127.0.0.1, 1 MiB sends and receives, sender and receiver in
    processes of their own as a client and a broker are."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        sender = multiprocessing.get_context("fork").Process(target=_send_until_closed, args=(server.getsockname()[1],))
        sender.start()
        conn, _ = server.accept()
        with conn:
            buffer = memoryview(bytearray(_CHUNK))
            received = 0
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds:
                received += conn.recv_into(buffer)
        sender.join()
    return received / elapsed / 1e6


def disk_write_mb_s(directory: Path, size_mb: int = 1024) -> dict[str, float]:
    """Sequential 1 MiB writes of `size_mb` MiB to a new file, then fsync: `buffered` is
    the rate into the page cache (what a broker that leaves flushing to the OS sees while
    memory lasts), `durable` the rate including the fsync (what the device sustains)."""
    path = directory / f"disk-limit-{os.getpid()}.tmp"
    data = os.urandom(_CHUNK)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(size_mb):
            os.write(fd, data)
        written = time.perf_counter()
        os.fsync(fd)
        synced = time.perf_counter()
    finally:
        os.close(fd)
        path.unlink()
    total = size_mb * _CHUNK / 1e6
    return {"buffered_mb_s": total / (written - started), "durable_mb_s": total / (synced - started)}


def _filesystem_of(directory: Path) -> str:
    """The type of the filesystem holding directory, as /proc/mounts names it."""
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount_point, fs_type, *_ = line.split()
        if str(directory.resolve()).startswith(mount_point) and len(mount_point) > len(best):
            best, kind = mount_point, fs_type
    return kind


def measure(directory: Path, repeats: int, disk_size_mb: int) -> dict[str, object]:
    loopback = [loopback_mb_s() for _ in range(repeats)]
    disk = [disk_write_mb_s(directory, disk_size_mb) for _ in range(repeats)]
    return {
        "loopback_mb_s": statistics.median(loopback), "loopback_samples": loopback,
        "disk_durable_mb_s": statistics.median(d["durable_mb_s"] for d in disk),
        "disk_buffered_mb_s": statistics.median(d["buffered_mb_s"] for d in disk),
        "disk_samples": disk, "disk_file_mb": disk_size_mb * _CHUNK / 1e6,
        # The filesystem measured, not the (temporary) directory: reports name no path of the machine.
        "filesystem": _filesystem_of(directory),
    }
