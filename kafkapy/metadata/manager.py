"""Keeps the current image: replays the committed metadata log on start, commits the
controller's records through the quorum, and tells listeners of each new image."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from kio.static.primitive import i16, i32, i64, u16

from ..raft.local import LocalQuorum
from .image import MetadataImage
from .records import (
    BrokerEndpoint,
    FeatureLevelRecord,
    RegisterBrokerRecord,
    decode_record,
    encode_record,
)

Listener = Callable[[MetadataImage, MetadataImage], None]

# The metadata.version this node writes its records at (Kafka 3.9's level).
METADATA_VERSION = i16(21)


class MetadataManager:
    def __init__(self, quorum: LocalQuorum) -> None:
        self.quorum = quorum
        self.image = MetadataImage()
        self.listeners: list[Listener] = []

    def load(self) -> None:
        """Replays every committed record into the image (listeners are not told)."""
        records: list[Any] = []
        last = -1
        for offset, value in self.quorum.committed():
            records.append(decode_record(value))
            last = offset
        self.image = MetadataImage().apply(records, last)

    def commit(self, records: Sequence[Any]) -> MetadataImage:
        """Makes the records durable in the quorum, then applies them."""
        if not records:
            return self.image
        offset = self.quorum.append([encode_record(r) for r in records])
        old, self.image = self.image, self.image.apply(records, offset)
        for listener in self.listeners:
            listener(old, self.image)
        return self.image

    def register_broker(self, node_id: int, listener: str, host: str, port: int, rack: str | None) -> None:
        """Records this node's endpoint (and, on a new cluster, the metadata version) if changed."""
        current = self.image.brokers.get(node_id)
        records: list[Any] = []
        if "metadata.version" not in self.image.features:
            records.append(FeatureLevelRecord(name="metadata.version", feature_level=METADATA_VERSION))
        if current is None or (current.host, current.port, current.rack, current.fenced) != (host, port, rack, False):
            records.append(
                RegisterBrokerRecord(
                    broker_id=i32(node_id),
                    incarnation_id=uuid.uuid4(),
                    broker_epoch=i64((current.epoch + 1) if current else 0),
                    end_points=(BrokerEndpoint(name=listener, host=host, port=u16(port), security_protocol=i16(0)),),
                    features=(),
                    rack=rack,
                    fenced=False,
                )
            )
        self.commit(records)
