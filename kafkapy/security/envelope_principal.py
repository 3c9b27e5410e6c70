"""The principal a broker puts in an Envelope it forwards to the active controller, in
Kafka's DefaultKafkaPrincipalBuilder form: a 2-byte version, then DefaultPrincipalData.
The controller authorizes the forwarded request as the client, not as the broker."""

from __future__ import annotations

import io
import struct

from kio.schema.default_principal_data.v0.data import DefaultPrincipalData
from kio.serial import entity_reader, entity_writer

_VERSION = 0


def encode_principal(principal: str) -> bytes:
    principal_type, _, name = principal.partition(":")
    out = io.BytesIO()
    out.write(struct.pack(">h", _VERSION))
    entity_writer(DefaultPrincipalData)(out, DefaultPrincipalData(type_=principal_type, name=name, token_authenticated=False))
    return out.getvalue()


def decode_principal(data: bytes) -> str:
    """The Type:name principal; ValueError when the bytes are not a principal this version reads."""
    if len(data) < 2 or struct.unpack_from(">h", data)[0] != _VERSION:
        raise ValueError("unsupported principal serialization version")
    principal: DefaultPrincipalData = entity_reader(DefaultPrincipalData)(data, 2)[0]
    return f"{principal.type_}:{principal.name}"
