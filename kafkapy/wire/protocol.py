"""Request and response codec: kio's generated entities, looked up by (api key, version),
and for the versions Kafka 3.9 accepted that kio lacks, the entities codegen made in
kio's shape from Kafka 3.9's JSON (`kafkapy.schema.legacy`).

Requests are decoded with kio's native reader. Responses are encoded with kio's
writer into a list of chunks, where a `FileSlice` standing in a records field becomes
its own chunk, so the server can send those bytes straight from the file.
"""

from __future__ import annotations

import importlib
import os
import struct
from functools import cache
from typing import IO, Any, Protocol, cast

from kio.index import UnknownAPIKey, UnknownEntity, load_request_schema, load_response_schema
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import BufferUnderflow

from ..schema.legacy import VERSIONS as LEGACY_VERSIONS
from .counts import check_counts

_API_HEADER = struct.Struct(">hhi")
_SIZE = struct.Struct(">i")


class InvalidRequest(Exception):
    """A request the broker cannot read: the connection it came on is closed."""


def api_name(api_key: int) -> str:
    return api_key_map.get(api_key, f"api_{api_key}")


def kio_versions(api_key: int) -> tuple[int, int] | None:
    """The version range kio has entities for, or None for an API it does not know."""
    name = api_key_map.get(api_key)
    if name is None:
        return None
    versions = schema_name_map[name]
    return min(versions), max(versions)


def codec_versions(api_key: int) -> tuple[int, int] | None:
    """The version range there are entities for: kio's, widened by the versions Kafka 3.9
    accepted below it; None for an API kio does not know."""
    known = kio_versions(api_key)
    if known is None or api_key not in LEGACY_VERSIONS:
        return known
    return min(known[0], *LEGACY_VERSIONS[api_key][3]), known[1]


@cache
def request_type(api_key: int, version: int) -> Any:
    try:
        return load_request_schema(api_key, version)
    except (UnknownAPIKey, UnknownEntity):
        return _legacy_type(api_key, version, "request")


@cache
def response_type(api_key: int, version: int) -> Any:
    try:
        return load_response_schema(api_key, version)
    except UnknownEntity:
        response = _legacy_type(api_key, version, "response")
        if response is None:
            raise
        return response


def _legacy_type(api_key: int, version: int, kind: str) -> Any:
    """The generated class of a version kio lacks ("request" or "response"), or None."""
    entry = LEGACY_VERSIONS.get(api_key)
    if entry is None or version not in entry[3]:
        return None
    package, request_class, response_class, _ = entry
    module = importlib.import_module(f"kafkapy.schema.legacy.{package}.v{version}")
    return getattr(module, request_class if kind == "request" else response_class)


def peek_header(frame: bytes | bytearray) -> tuple[int, int, int]:
    """(api key, api version, correlation id): the part of every request header that
    is the same in all header versions."""
    if len(frame) < _API_HEADER.size:
        raise InvalidRequest("request shorter than a request header")
    return _API_HEADER.unpack_from(frame, 0)


def decode_request(frame: bytes | bytearray, api_key: int, version: int) -> tuple[Any, Any]:
    """Decodes header and body of a request whose (api key, version) kio knows."""
    body_type = request_type(api_key, version)
    if body_type is None:
        raise InvalidRequest(f"unknown request: api key {api_key} version {version}")
    # kio's native reader refuses writable buffers, and a large frame arrives as a bytearray.
    view = memoryview(frame).toreadonly()
    try:
        header, header_size = entity_reader(body_type.__header_schema__)(view, 0)
        check_counts(body_type, view, header_size)
        body, _ = entity_reader(body_type)(view, header_size)
    except (BufferUnderflow, ValueError, TypeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"cannot decode {api_name(api_key)} v{version}: {e}") from e
    except Exception as e:  # the native reader raises its own types for malformed input
        raise InvalidRequest(f"cannot decode {api_name(api_key)} v{version}: {e!r}") from e
    return header, body


def encode_request(entity: Any, correlation_id: int, client_id: str | None = "kafkapy") -> bytes:
    """A whole request frame, length prefix included (used by tests and console tools)."""
    header_type = entity.__header_schema__
    fields = {"request_api_key": entity.__api_key__, "request_api_version": entity.__version__,
              "correlation_id": correlation_id, "client_id": client_id}
    out = _Chunks()
    out.put(header_type(**fields))
    out.put(entity)
    chunks = out.finish()
    body = b"".join(chunks)
    return _SIZE.pack(len(body)) + body


class FileHolder(Protocol):
    """Whoever keeps a file open for a FileSlice: told when the slice is no longer needed."""

    def release(self) -> None: ...


class FileSlice(bytes):
    """Stands for `length` bytes of an open file inside an encoded response.

    It passes through kio's writer as a records value: the writer asks its length for
    the size prefix and hands it to `_Chunks.write`, which keeps it as its own chunk.
    `holder` keeps the descriptor open (and its number this file's) until `release()`,
    which whoever sends or drops the slice calls once.
    """

    fd: int
    position: int
    length: int
    holder: FileHolder | None

    def __new__(cls, fd: int, position: int, length: int, holder: FileHolder | None = None) -> FileSlice:
        obj = super().__new__(cls)
        obj.fd, obj.position, obj.length, obj.holder = fd, position, length, holder
        return obj

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        return os.pread(self.fd, self.length, self.position)

    def release(self) -> None:
        holder, self.holder = self.holder, None
        if holder is not None:
            holder.release()


Chunk = bytes | bytearray | FileSlice


class _Chunks:
    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        if type(data) is FileSlice:
            if self._buf:
                self.chunks.append(self._buf)
                self._buf = bytearray()
            self.chunks.append(data)
        else:
            self._buf += data

    def put(self, entity: Any) -> None:
        """Encodes a kio entity here: kio's writers want an IO[bytes], and only call write()."""
        entity_writer(type(entity))(cast(IO[bytes], self), entity)

    def finish(self) -> list[Chunk]:
        if self._buf:
            self.chunks.append(self._buf)
        return self.chunks


def encode_response(correlation_id: int, response: Any) -> tuple[list[Chunk], int]:
    """A whole response frame as chunks (length prefix first), and its total size."""
    out = _Chunks()
    out.write(b"\0\0\0\0")  # size prefix, filled in below
    header_type = response.__header_schema__
    out.put(header_type(correlation_id=correlation_id))
    out.put(response)
    chunks = out.finish()
    size = sum(len(c) for c in chunks)
    first = chunks[0]
    assert isinstance(first, bytearray)
    _SIZE.pack_into(first, 0, size - 4)
    return chunks, size


def decode_response(frame: bytes, api_key: int, version: int) -> tuple[int, Any]:
    """(correlation id, response entity) of a response frame without its size prefix."""
    body_type = response_type(api_key, version)
    header, size = entity_reader(body_type.__header_schema__)(frame, 0)
    body, _ = entity_reader(body_type)(frame, size)
    return header.correlation_id, body
