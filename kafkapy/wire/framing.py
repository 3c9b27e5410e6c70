"""Kafka's length-prefixed framing, sans-IO.

The shell asks `recv_buffer()` where to receive into, reports how many bytes arrived
with `received(n)`, and gets back the complete frames. Small frames are cut out of a
shared chunk; a large frame gets its own buffer that the socket fills directly, so its
bytes are copied once, by the kernel. That buffer grows as the frame's bytes arrive
(doubling, up to the declared size): a size prefix alone makes the reader hold only
what was sent, not what was announced.
"""

from __future__ import annotations

import socket
import struct

_SIZE = struct.Struct(">i")
_CHUNK = 64 * 1024
# Zeros a growing frame buffer is extended with; a slice of one buffer allocates nothing.
_ZEROS = memoryview(bytes(1 << 20))


def recv_frame(sock: socket.socket) -> bytes:
    """One whole frame (without its size prefix) from a blocking socket: the client side
    of the framing, for tools and tests."""
    (size,) = _SIZE.unpack(_recv_exactly(sock, 4))
    return _recv_exactly(sock, size)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError(0, "the broker closed the connection")
        data += chunk
    return bytes(data)


class FrameError(Exception):
    """A frame whose size prefix is negative or larger than allowed."""


class FrameReader:
    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._chunk = bytearray(_CHUNK)
        self._view = memoryview(self._chunk)
        self._start = 0  # first unconsumed byte in the chunk
        self._end = 0  # end of received bytes in the chunk
        self._big: bytearray | None = None  # a frame too large for the chunk, as far as it has grown
        self._big_size = 0  # the size that frame declared
        self._big_filled = 0
        # Sizes of the frames begun so far (a large one counts once its size prefix is read),
        # for a shell that accounts request memory.
        self.declared_bytes = 0

    def recv_buffer(self) -> memoryview:
        """Where the next bytes go. The caller releases it before calling again."""
        if self._big is not None:
            if self._big_filled == len(self._big):
                self._grow_big()
            return memoryview(self._big)[self._big_filled :]
        if self._end == len(self._chunk):
            self._compact()
        return self._view[self._end :]

    def received(self, n: int) -> list[bytes | bytearray]:
        frames: list[bytes | bytearray] = []
        if self._big is not None:
            self._big_filled += n
            if self._big_filled < self._big_size:
                return frames
            frames.append(self._big)
            self._big = None
            return frames
        self._end += n
        while self._end - self._start >= 4:
            (size,) = _SIZE.unpack_from(self._chunk, self._start)
            if size < 0 or size > self.max_frame_size:
                raise FrameError(f"frame size {size} outside [0, {self.max_frame_size}]")
            body = self._start + 4
            available = self._end - body
            if available >= size:
                frames.append(bytes(self._view[body : body + size]))
                self.declared_bytes += size
                self._start = body + size
                continue
            if size > len(self._chunk) // 2:
                # Hand the socket a buffer of the frame's own for the rest.
                self._big = bytearray(self._view[body : self._end])
                self._big_size = size
                self.declared_bytes += size
                self._big_filled = available
                self._start = self._end = 0
            break
        if self._start == self._end:
            self._start = self._end = 0
        return frames

    def feed(self, data: bytes) -> list[bytes | bytearray]:
        """The frames completed by bytes that arrived by other means than `recv_into` (a stream)."""
        frames: list[bytes | bytearray] = []
        view = memoryview(data)
        while view:
            with self.recv_buffer() as buffer:
                n = min(len(buffer), len(view))
                buffer[:n] = view[:n]
            frames += self.received(n)
            view = view[n:]
        return frames

    def _grow_big(self) -> None:
        big = self._big
        assert big is not None
        target = min(self._big_size, max(2 * len(big), _CHUNK))
        while len(big) < target:
            big += _ZEROS[: target - len(big)]

    def _compact(self) -> None:
        remaining = self._end - self._start
        self._chunk[:remaining] = self._view[self._start : self._end]
        self._start, self._end = 0, remaining

    @property
    def mid_frame(self) -> bool:
        """True when bytes of an incomplete frame are buffered."""
        return self._big is not None or self._end > self._start
