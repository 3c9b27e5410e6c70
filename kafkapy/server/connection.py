"""One client connection: read frames, answer each in order, send file ranges with
sendfile. The only code besides the listener that touches a socket."""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ..handlers import Broker, CloseConnection, dispatch
from ..security.principal import ANONYMOUS
from ..wire.framing import FrameError, FrameReader
from ..wire.protocol import Chunk, FileSlice, InvalidRequest

if TYPE_CHECKING:
    from .tls import TlsSession

log = logging.getLogger(__name__)

_HAS_SENDFILE = hasattr(os, "sendfile")
_HAS_CORK = hasattr(socket, "TCP_CORK")


class Connection:
    def __init__(self, broker: Broker, sock: socket.socket, max_request_size: int, tls: TlsSession | None = None) -> None:
        self.broker = broker
        self.sock = sock
        self.reader = FrameReader(max_request_size)
        self.peer = _peer(sock)
        self.idle_scope: anyio.CancelScope | None = None  # set while waiting for a request
        self.tls = tls
        self.principal = ANONYMOUS
        # Over TLS, bytes pass through the session; in plaintext straight through the
        # socket, at no cost per frame.
        self._recv_into = sock.recv_into if tls is None else tls.recv_into
        self._send = self._send_plain if tls is None else tls.send

    async def serve(self) -> None:
        try:
            if self.tls is not None:
                self.principal = await self.tls.handshake()
            while not self.broker.stopping.is_set():
                frames = await self._next_frames()
                if frames is None:
                    return
                for frame in frames:
                    response = await dispatch(self.broker, frame, self.peer, self.principal)
                    if response is not None:
                        await self._send(response[0])
                    # Reads and writes that never block never yield: let the other
                    # connections and the broker's timers have their turn.
                    await anyio.lowlevel.checkpoint()
        except (InvalidRequest, FrameError, CloseConnection) as e:
            log.info("Closing connection from %s: %s", self.peer, e)
        except (ConnectionError, TimeoutError):
            pass
        except OSError as e:
            log.info("Connection from %s failed: %s", self.peer, e)
        except Exception:
            log.exception("Unexpected error serving %s; closing its connection", self.peer)
        finally:
            self.sock.close()

    async def _next_frames(self) -> list[bytes | bytearray] | None:
        """The next complete frames, or None at end of stream or when the broker stops
        while this connection is idle."""
        with anyio.CancelScope() as scope:
            self.idle_scope = scope if not self.reader.mid_frame else None
            try:
                while True:
                    try:
                        n = self._recv_into(self.reader.recv_buffer())
                    except BlockingIOError:
                        await anyio.wait_readable(self.sock)
                        continue
                    if n == 0:
                        return None
                    frames = self.reader.received(n)
                    if frames:
                        return frames
                    self.idle_scope = None  # a frame has begun: let it finish
            finally:
                self.idle_scope = None
        return None

    def stop_if_idle(self) -> None:
        if self.idle_scope is not None:
            self.idle_scope.cancel()

    async def _send_plain(self, chunks: list[Chunk]) -> None:
        sock = self.sock
        # A response in pieces (bytes between file ranges) goes out corked, in full
        # segments, rather than as a small packet per piece.
        corked = len(chunks) > 1 and _HAS_CORK
        if corked:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        for chunk in chunks:
            if type(chunk) is FileSlice:
                if _HAS_SENDFILE:
                    await _sendfile(sock, chunk)
                else:
                    await _sendall(sock, memoryview(chunk.read()))
            else:
                await _sendall(sock, memoryview(chunk))
        if corked:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)


async def _sendall(sock: socket.socket, view: memoryview) -> None:
    while view:
        try:
            n = sock.send(view)
        except BlockingIOError:
            await anyio.wait_writable(sock)
            continue
        view = view[n:]


async def _sendfile(sock: socket.socket, piece: FileSlice) -> None:
    offset, remaining = piece.position, piece.length
    while remaining:
        try:
            n = os.sendfile(sock.fileno(), piece.fd, offset, remaining)
        except BlockingIOError:
            await anyio.wait_writable(sock)
            continue
        if n == 0:
            # The file is shorter than the response said: the stream cannot be repaired.
            raise ConnectionError("segment file shrank while being sent")
        offset += n
        remaining -= n


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return "?"
