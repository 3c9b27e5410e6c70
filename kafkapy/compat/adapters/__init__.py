"""The client adapters, by name.

An adapter is imported only by the worker process that runs it, so the runner needs none
of the client libraries and one that is not installed is reported, not fatal. Adding a
client is one module with a `Client` subclass and one entry here. A client of another
language is driven through a helper program (see bridge.py); its adapter module says
whether that program can run here.

A profile is the same library pinned to an older protocol level (its adapter given the
options that pin it): a client of the matrix of its own, named `library@level`, so that
the versions Kafka 3.9 accepted and 4.x removed are proven end to end. The versions each
profile sends are those its library sends to a broker of that release without asking
ApiVersions. librdkafka sends ApiVersions whenever broker.version.fallback is 0.10 or
later, api.version.request=false or not, so its only profile that pins is 0.9.0.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from ..security import PLAINTEXT, ClientSecurity
from .base import Client, Unsupported

__all__ = ["ADAPTERS", "Adapter", "Client", "Unsupported"]


@dataclass(frozen=True)
class Adapter:
    name: str
    module: str  # the adapter module, relative to this package
    class_name: str
    library: str | None  # the import name of the Python library it drives; None for another language's
    # Keyword arguments of the Client that pin its protocol level (a profile); none: the newest.
    options: tuple[tuple[str, Any], ...] = ()
    # Whether it reads back every record whole (headers included), so that scenarios check
    # with it what the client under test produced.
    reads_everything: bool = True
    # Whether it carries a secured cluster's settings (`kafkapy compat --security`).
    speaks_security: bool = True

    @property
    def pinned(self) -> bool:
        return bool(self.options)

    def unavailable(self, security: ClientSecurity = PLAINTEXT) -> str | None:
        """Why the client cannot run on this machine, or with these security settings, or
        None when it can."""
        if security is not PLAINTEXT and not self.speaks_security:
            return f"the {self.name} adapter does not carry security settings ({security.protocol})"
        if self.library is not None:
            found = importlib.util.find_spec(self.library) is not None
            return None if found else f"{self.name} is not installed (import {self.library})"
        return self.load().unavailable()

    def installed(self) -> bool:
        return self.unavailable() is None

    def load(self) -> type[Client]:
        return getattr(importlib.import_module(self.module, __name__), self.class_name)

    def connect(self, bootstrap: str, security: ClientSecurity = PLAINTEXT) -> Client:
        client = self.load()(bootstrap, security, **dict(self.options))
        client.name = self.name
        return client


ADAPTERS = {
    adapter.name: adapter
    for adapter in (
        Adapter("confluent-kafka", ".confluent", "ConfluentKafka", "confluent_kafka"),
        Adapter("kafka-python", ".kafka_python", "KafkaPython", "kafka"),
        Adapter("kafka-python@2.0", ".kafka_python", "KafkaPython", "kafka", (("api_version", (2, 0)),)),
        Adapter("kafka-python@1.0", ".kafka_python", "KafkaPython", "kafka", (("api_version", (1, 0)),)),
        Adapter("kafka-python@0.10", ".kafka_python", "KafkaPython", "kafka", (("api_version", (0, 10, 0)),)),
        Adapter("confluent-kafka@0.9", ".confluent", "ConfluentKafka", "confluent_kafka",
                (("broker_version_fallback", "0.9.0"),)),
        Adapter("aiokafka", ".aiokafka", "AioKafka", "aiokafka", speaks_security=False),
        # kafkajs groups a record's headers by name, so it reads interleaved names reordered.
        Adapter("kafkajs", ".kafkajs", "KafkaJs", None, reads_everything=False, speaks_security=False),
        # kafka-go 0.2 speaks message format v1, which has no headers.
        Adapter("kafka-go", ".kafka_go", "KafkaGo", None, reads_everything=False, speaks_security=False),
    )
}
