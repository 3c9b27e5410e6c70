"""The table from API key to handler. Each handler module registers itself with `api`;
ApiVersions advertises exactly what is registered here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..wire.protocol import kio_versions

Handler = Callable[[Any, Any, Any], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Api:
    key: int
    min_version: int
    max_version: int
    handle: Handler


APIS: dict[int, Api] = {}


def api(key: int, min_version: int, max_version: int) -> Callable[[Handler], Handler]:
    """Registers a handler for versions [min_version, max_version] of an API key."""
    kio_min, kio_max = kio_versions(key) or (min_version, max_version)
    low, high = max(min_version, kio_min), min(max_version, kio_max)

    def register(handler: Handler) -> Handler:
        APIS[key] = Api(key, low, high, handler)
        return handler

    return register
