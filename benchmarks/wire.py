"""The two raw Kafka requests the harness sends itself, without a client library in the
way: Metadata (the readiness probe and the Metadata latency figure) and ApiVersions
(the handshake each idle connection makes, as a client would)."""

from __future__ import annotations

import socket
import struct

METADATA_KEY, METADATA_VERSION = 3, 4  # v4: the oldest version Kafka 4 still accepts
API_VERSIONS_KEY, API_VERSIONS_VERSION = 18, 0
_CLIENT_ID = b"kafkapy-bench"


def _frame(api_key: int, version: int, correlation_id: int, body: bytes) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, len(_CLIENT_ID)) + _CLIENT_ID
    return struct.pack(">i", len(header) + len(body)) + header + body


def metadata_request(correlation_id: int) -> bytes:
    """Metadata v4 for all topics (a null topic array), never creating one."""
    return _frame(METADATA_KEY, METADATA_VERSION, correlation_id, struct.pack(">ib", -1, 0))


def api_versions_request(correlation_id: int) -> bytes:
    return _frame(API_VERSIONS_KEY, API_VERSIONS_VERSION, correlation_id, b"")


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view, received = memoryview(buffer), 0
    while received < size:
        n = sock.recv_into(view[received:])
        if n == 0:
            raise ConnectionError("connection closed by the broker")
        received += n
    return bytes(buffer)


def round_trip(sock: socket.socket, request: bytes, correlation_id: int) -> bytes:
    """Sends one request and returns the response body (after the correlation id)."""
    sock.sendall(request)
    (size,) = struct.unpack(">i", _read_exactly(sock, 4))
    response = _read_exactly(sock, size)
    (answered,) = struct.unpack_from(">i", response)
    if answered != correlation_id:
        raise ConnectionError(f"response to correlation id {answered}, expected {correlation_id}")
    return response[4:]


def connect(host: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def metadata_answers(host: str, port: int, timeout: float) -> bool:
    """Whether a broker at host:port answers a Metadata request right now."""
    try:
        with connect(host, port, timeout) as sock:
            round_trip(sock, metadata_request(1), 1)
        return True
    except OSError:
        return False
