"""The client adapters, by name.

An adapter is imported only by the worker process that runs it, so the runner needs none
of the client libraries and one that is not installed is reported, not fatal. Adding a
client is one module with a `Client` subclass and one entry here. A client of another
language is driven through a helper program (see bridge.py); its adapter module says
whether that program can run here.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from .base import Client, Unsupported

__all__ = ["ADAPTERS", "Adapter", "Client", "Unsupported"]


@dataclass(frozen=True)
class Adapter:
    name: str
    module: str  # the adapter module, relative to this package
    class_name: str
    library: str | None  # the import name of the Python library it drives; None for another language's
    # Whether it reads back every record whole (headers included), so that scenarios check
    # with it what the client under test produced.
    reads_everything: bool = True

    def unavailable(self) -> str | None:
        """Why the client cannot run on this machine, or None when it can."""
        if self.library is not None:
            found = importlib.util.find_spec(self.library) is not None
            return None if found else f"{self.name} is not installed (import {self.library})"
        return self.load().unavailable()

    def installed(self) -> bool:
        return self.unavailable() is None

    def load(self) -> type[Client]:
        return getattr(importlib.import_module(self.module, __name__), self.class_name)


ADAPTERS = {
    adapter.name: adapter
    for adapter in (
        Adapter("confluent-kafka", ".confluent", "ConfluentKafka", "confluent_kafka"),
        Adapter("kafka-python", ".kafka_python", "KafkaPython", "kafka"),
        Adapter("aiokafka", ".aiokafka", "AioKafka", "aiokafka"),
        # kafkajs groups a record's headers by name, so it reads interleaved names reordered.
        Adapter("kafkajs", ".kafkajs", "KafkaJs", None, reads_everything=False),
        # kafka-go 0.2 speaks message format v1, which has no headers.
        Adapter("kafka-go", ".kafka_go", "KafkaGo", None, reads_everything=False),
    )
}
