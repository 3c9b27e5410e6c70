"""The client adapters, by name.

An adapter is imported only by the worker process that runs it, so the runner needs none
of the client libraries and one that is not installed is reported, not fatal. Adding a
client is one module with a `Client` subclass and one entry here.
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
    library: str  # the import name of the client library it drives

    def installed(self) -> bool:
        return importlib.util.find_spec(self.library) is not None

    def load(self) -> type[Client]:
        return getattr(importlib.import_module(self.module, __name__), self.class_name)


ADAPTERS = {
    adapter.name: adapter
    for adapter in (
        Adapter("confluent-kafka", ".confluent", "ConfluentKafka", "confluent_kafka"),
        Adapter("kafka-python", ".kafka_python", "KafkaPython", "kafka"),
    )
}
