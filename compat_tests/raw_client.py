"""Helpers for sending, over a bare connection, what no client library would."""

from __future__ import annotations

import struct

from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest

from kafkapy.compat.raw import RawConnection

_SIZE = struct.Struct(">i")


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
