"""A bare Kafka protocol connection over a plain socket, for sending what no client
library would: requests are kio entities or raw bytes, responses are kio entities."""

from __future__ import annotations

import socket
import struct
from typing import Any

from clients import TIMEOUT_S
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest

from kafkapy.wire.protocol import decode_response, encode_request

_SIZE = struct.Struct(">i")


class RawConnection:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.correlation_id = 0

    def __enter__(self) -> "RawConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, entity: Any) -> Any:
        self.correlation_id += 1
        self.send(encode_request(entity, self.correlation_id))
        return self.response(entity.__api_key__, entity.__version__, self.correlation_id)

    def response(self, api_key: int, version: int, correlation_id: int) -> Any:
        (size,) = _SIZE.unpack(self._read(4))
        answered, body = decode_response(self._read(size), api_key, version)
        assert answered == correlation_id, f"response to correlation id {answered}, expected {correlation_id}"
        return body

    def _read(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return bytes(data)

    def closed_by_broker(self) -> bool:
        """Whether the broker closes the connection, without answering, within the timeout."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def assert_served(connection: RawConnection) -> None:
    """An ApiVersions and a Metadata round trip both succeed on the connection."""
    versions = connection.request(ApiVersionsRequest(client_software_name="compat-tests", client_software_version="1"))
    assert versions.error_code == ErrorCode.none
    metadata = connection.request(MetadataRequest(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False))
    assert len(metadata.brokers) == 1


def frame_with_header(frame: bytes, api_key: int | None = None, version: int | None = None) -> bytes:
    """A copy of a request frame claiming another API key or version."""
    patched = bytearray(frame)
    if api_key is not None:
        struct.pack_into(">h", patched, 4, api_key)
    if version is not None:
        struct.pack_into(">h", patched, 6, version)
    return bytes(patched)


def length_prefixed(payload: bytes) -> bytes:
    """A frame: payload preceded by its length, as every Kafka request is."""
    return _SIZE.pack(len(payload)) + payload
