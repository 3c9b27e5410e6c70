"""One client connection: read frames, answer each in order, send file ranges with
sendfile. The only code besides the listener that touches a socket."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ..handlers import Broker, CloseConnection, dispatch
from ..security.principal import ANONYMOUS
from ..security.sasl import MAX_RECEIVE_SIZE, SaslAuthenticator, SaslListener, SaslStep
from ..wire.framing import FrameError, FrameReader
from ..wire.protocol import Chunk, FileSlice, InvalidRequest
from .connection_quotas import RequestMemory

if TYPE_CHECKING:
    from .tls import TlsSession

log = logging.getLogger(__name__)

_HAS_SENDFILE = hasattr(os, "sendfile")
_HAS_CORK = hasattr(socket, "TCP_CORK")


class MemoryPool:
    """Request memory shared by the connections, and the wait for some to be released."""

    def __init__(self, memory: RequestMemory) -> None:
        self.memory = memory
        self._room = anyio.Event()

    async def wait_for_room(self) -> None:
        while self.memory.exhausted:
            await self._room.wait()

    def release(self, n: int) -> None:
        if self.memory.release(n):
            self._room.set()
            self._room = anyio.Event()


class Connection:
    def __init__(self, broker: Broker, sock: socket.socket, max_request_size: int, pool: MemoryPool | None = None,
                 peer: str | None = None, tls: TlsSession | None = None, sasl: SaslListener | None = None,
                 listener: str = "PLAINTEXT") -> None:
        self.broker = broker
        self.listener = listener
        self.sock = sock
        self.max_request_size = max_request_size
        # Until a SASL client has authenticated, it may send small frames only (as Kafka's
        # sasl.server.max.receive.size), so that strangers cannot make the broker hold much.
        self.reader = FrameReader(max_request_size if sasl is None else min(max_request_size, MAX_RECEIVE_SIZE))
        self.peer = peer if peer is not None else _peer(sock)
        # The client's host and port, for the log: several connections come from one host.
        self.origin = f"{self.peer}:{_peer_port(sock)}"
        self.pool = pool
        self._reserved = 0  # request bytes taken from the pool and not yet released
        self._declared_seen = 0
        self.idle_scope: anyio.CancelScope | None = None  # set while waiting for a request
        # When a byte was last received or sent (time.monotonic), and whether the broker
        # itself holds the connection up (working on a request, or short of request memory):
        # what connections.max.idle.ms is measured on.
        self.last_active = time.monotonic()
        self.busy = False
        self._serving = anyio.CancelScope()
        self.expired = False
        self.tls = tls
        self.principal = ANONYMOUS
        self.authenticator = None if sasl is None else SaslAuthenticator(sasl)
        # Over TLS, bytes pass through the session; in plaintext straight through the
        # socket, at no cost per frame.
        self._recv_into = sock.recv_into if tls is None else tls.recv_into
        self._send = self._send_plain if tls is None else self._send_tls

    def expire(self) -> None:
        """Closes the connection for idleness; only between requests (not while busy)."""
        self.expired = True
        self._serving.cancel()

    async def serve(self) -> None:
        try:
            with self._serving:
                if self.tls is not None:
                    self.principal = await self.tls.handshake(self._sendall)
                await self._serve_requests()
            if self.expired:
                log.info("Closing connection from %s: idle for longer than connections.max.idle.ms", self.origin)
        except (InvalidRequest, FrameError, CloseConnection) as e:
            log.info("Closing connection from %s: %s", self.origin, e)
        except (ConnectionError, TimeoutError):
            pass
        except OSError as e:
            log.info("Connection from %s failed: %s", self.origin, e)
        except Exception:
            log.exception("Unexpected error serving %s; closing its connection", self.peer)
        finally:
            if self.pool is not None and self._reserved:
                self.pool.release(self._reserved)
            self.sock.close()

    async def _serve_requests(self) -> None:
        while not self.broker.stopping.is_set():
            frames = await self._next_frames()
            if frames is None:
                return
            for frame in frames:
                self.busy = True
                authenticator = self.authenticator
                if authenticator is None:
                    response = await dispatch(self.broker, frame, self.peer, self.principal, self.listener)
                elif not authenticator.complete:
                    response = await self._sasl_step(authenticator.received(frame, self.broker.clock.wall_ms()), frame)
                elif (step := authenticator.after_authentication(frame, self.broker.clock.wall_ms())) is not None:
                    response = await self._sasl_step(step, frame)
                else:
                    response = await dispatch(self.broker, frame, self.peer, self.principal, self.listener)
                self.busy = False
                self.last_active = time.monotonic()
                if self.pool is not None:
                    self._reserved -= len(frame)
                    self.pool.release(len(frame))
                if response is not None:
                    await self._send(response[0])
                # Reads and writes that never block never yield: let the other
                # connections and the broker's timers have their turn.
                await anyio.lowlevel.checkpoint()

    async def _sasl_step(self, step: SaslStep, frame: bytes | bytearray) -> tuple[list[Chunk], int] | None:
        """Does one step of the SASL exchange: the response to send, if any. Raises
        CloseConnection, after the failed-authentication delay and its answer, when the
        authentication fails or the session expired."""
        if step.close is not None:
            log.info("Closing SASL connection from %s: %s", self.peer, step.close.reason)
            await anyio.sleep(step.close.delay_ms / 1000)
            if step.close.response is not None:
                await self._send(step.close.response)
            raise CloseConnection(step.close.reason)
        if step.principal is not None:
            self.principal = step.principal
            self.reader.max_frame_size = self.max_request_size
        if step.dispatch:
            return await dispatch(self.broker, frame, self.peer, self.principal, self.listener)
        return None if step.send is None else (step.send, 0)

    async def _next_frames(self) -> list[bytes | bytearray] | None:
        """The next complete frames, or None at end of stream or when the broker stops
        while this connection is idle."""
        with anyio.CancelScope() as scope:
            self.idle_scope = scope if not self.reader.mid_frame else None
            try:
                while True:
                    if self.pool is not None and not self.reader.mid_frame and self.pool.memory.exhausted:
                        await self._wait_for_memory()
                    try:
                        n = self._recv_into(self.reader.recv_buffer())
                    except BlockingIOError:
                        await anyio.wait_readable(self.sock)
                        continue
                    if n == 0:
                        return None
                    self.last_active = time.monotonic()
                    frames = self.reader.received(n)
                    if self.pool is not None:
                        self._take_declared()
                    if frames:
                        return frames
                    self.idle_scope = None  # a frame has begun: let it finish
            finally:
                self.idle_scope = None
        return None

    async def _wait_for_memory(self) -> None:
        self.busy = True
        try:
            assert self.pool is not None
            await self.pool.wait_for_room()
        finally:
            self.busy = False
            self.last_active = time.monotonic()

    def _take_declared(self) -> None:
        """Takes from the pool what the frames begun since the last read declared: a large
        frame's whole size as soon as its size prefix is read, as Kafka reserves it."""
        assert self.pool is not None
        new = self.reader.declared_bytes - self._declared_seen
        if new:
            self._declared_seen += new
            self._reserved += new
            self.pool.memory.take(new)

    def stop_if_idle(self) -> None:
        if self.idle_scope is not None:
            self.idle_scope.cancel()

    async def _send_tls(self, chunks: list[Chunk]) -> None:
        assert self.tls is not None
        await self.tls.send(chunks, self._sendall)

    async def _send_plain(self, chunks: list[Chunk]) -> None:
        sock = self.sock
        # A response in pieces (bytes between file ranges) goes out corked, in full
        # segments, rather than as a small packet per piece.
        corked = len(chunks) > 1 and _HAS_CORK
        if corked:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        try:
            for chunk in chunks:
                if type(chunk) is FileSlice:
                    if _HAS_SENDFILE:
                        await self._sendfile(chunk)
                    else:
                        await self._sendall(memoryview(chunk.read()))
                else:
                    await self._sendall(memoryview(chunk))
        finally:
            for chunk in chunks:
                if type(chunk) is FileSlice:
                    chunk.release()
        if corked:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)

    # A client that stops reading leaves a send without progress: connections.max.idle.ms
    # runs from the last byte sent, as Kafka's idle expiry counts only socket activity.
    async def _sendall(self, view: memoryview) -> None:
        sock = self.sock
        while view:
            try:
                n = sock.send(view)
            except BlockingIOError:
                await anyio.wait_writable(sock)
                continue
            self.last_active = time.monotonic()
            view = view[n:]

    async def _sendfile(self, piece: FileSlice) -> None:
        sock = self.sock
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
            self.last_active = time.monotonic()
            offset += n
            remaining -= n


def _peer_port(sock: socket.socket) -> int | str:
    try:
        return int(sock.getpeername()[1])
    except OSError:
        return "?"


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return "?"
