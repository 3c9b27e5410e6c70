"""The table from API key to handler. Each handler module registers itself with `api`;
ApiVersions advertises exactly what is registered here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..wire.protocol import codec_versions

# A handler answers with plain data to build the response from, a response entity (one
# forwarded from the active controller), or None when the request wants no answer.
Handler = Callable[[Any, Any, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Api:
    key: int
    min_version: int
    max_version: int
    handle: Handler


APIS: dict[int, Api] = {}
"""What the broker listeners serve, and their ApiVersions advertise."""
CONTROLLER_APIS: dict[int, Api] = {}
"""What the controller listener serves besides Raft's own APIs, as Kafka's ControllerApis."""

BROKER, CONTROLLER = "broker", "controller"


def api(key: int, min_version: int, max_version: int, *, listeners: tuple[str, ...] = (BROKER,)) -> Callable[[Handler], Handler]:
    """Registers a handler for versions [min_version, max_version] of an API key, on the
    broker listeners, the controller listener, or both."""
    codec_min, codec_max = codec_versions(key) or (min_version, max_version)
    low, high = max(min_version, codec_min), min(max_version, codec_max)

    def register(handler: Handler) -> Handler:
        for listener, table in ((BROKER, APIS), (CONTROLLER, CONTROLLER_APIS)):
            if listener in listeners:
                table[key] = Api(key, low, high, handler)
        return handler

    return register
