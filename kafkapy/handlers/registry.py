"""The table of the APIs a node serves: for each API key, the versions its broker
listeners and its controller listener serve (ApiVersions advertises exactly these) and
the module of `kafkapy.handlers` whose function handles it, registered with `handles`.

A handler's module is imported at its API's first request: a client starts with
ApiVersions and Metadata, and a broker that is never asked about ACLs, transactions or
quotas never loads (nor holds in memory) their handlers and what those import."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any

from ..wire.protocol import codec_versions

# A handler answers with plain data to build the response from, a response entity (one
# forwarded from the active controller), or None when the request wants no answer.
Handler = Callable[[Any, Any, Any], Awaitable[Any]]

BROKER, CONTROLLER = "broker", "controller"
_BROKER, _CONTROLLER, _BOTH = (BROKER,), (CONTROLLER,), (BROKER, CONTROLLER)

# api key: (module, lowest version, highest version, listeners), the versions clipped
# below to those there are entities for.
_SERVED: dict[int, tuple[str, int, int, tuple[str, ...]]] = {
    0: ("produce", 0, 13, _BROKER),
    1: ("fetch", 0, 18, _BROKER),
    2: ("list_offsets", 0, 11, _BROKER),
    3: ("metadata", 0, 13, _BROKER),
    8: ("offsets", 0, 9, _BROKER),
    9: ("offsets", 0, 9, _BROKER),
    10: ("find_coordinator", 0, 6, _BROKER),
    11: ("groups", 0, 9, _BROKER),
    12: ("groups", 0, 4, _BROKER),
    13: ("groups", 0, 5, _BROKER),
    14: ("groups", 0, 5, _BROKER),
    15: ("groups", 0, 6, _BROKER),
    16: ("groups", 0, 5, _BROKER),
    17: ("sasl", 0, 1, _BROKER),
    18: ("api_versions", 0, 4, _BROKER),
    19: ("topics", 0, 7, _BOTH),
    20: ("topics", 0, 6, _BOTH),
    21: ("topics", 0, 2, _BROKER),
    22: ("txn", 0, 5, _BROKER),
    23: ("offset_for_leader_epoch", 0, 4, _BROKER),
    24: ("txn", 0, 5, _BROKER),
    25: ("txn", 0, 4, _BROKER),
    26: ("txn", 0, 4, _BROKER),
    27: ("write_txn_markers", 0, 2, _BROKER),
    28: ("offsets", 0, 4, _BROKER),
    29: ("acls", 0, 3, _BROKER),
    30: ("acls", 0, 3, _BOTH),
    31: ("acls", 0, 3, _BOTH),
    32: ("configs", 0, 4, _BROKER),
    33: ("configs", 0, 2, _BOTH),
    35: ("cluster", 0, 5, _BROKER),
    36: ("sasl", 0, 2, _BROKER),
    37: ("topics", 0, 3, _BOTH),
    42: ("groups", 0, 2, _BROKER),
    43: ("leaders", 0, 2, _BOTH),
    44: ("configs", 0, 1, _BOTH),
    45: ("reassignments", 0, 1, _BOTH),
    46: ("reassignments", 0, 0, _BOTH),
    47: ("offsets", 0, 0, _BROKER),
    50: ("scram", 0, 0, _BROKER),
    51: ("scram", 0, 0, _BOTH),
    55: ("describe_quorum", 0, 2, _BOTH),
    56: ("leaders", 2, 3, _CONTROLLER),
    58: ("controller", 0, 0, _CONTROLLER),
    60: ("cluster", 0, 2, _BROKER),
    61: ("txn", 0, 0, _BROKER),
    62: ("controller", 0, 4, _CONTROLLER),
    63: ("controller", 0, 1, _CONTROLLER),
    65: ("txn", 0, 0, _BROKER),
    66: ("txn", 0, 2, _BROKER),
    67: ("controller", 0, 0, _CONTROLLER),
    68: ("groups", 0, 1, _BROKER),
    69: ("groups", 0, 1, _BROKER),
}

_HANDLERS: dict[int, Handler] = {}
"""What the handler modules imported so far registered."""


class Api:
    __slots__ = ("_handle", "key", "max_version", "min_version", "module")

    def __init__(self, key: int, min_version: int, max_version: int, module: str) -> None:
        self.key, self.min_version, self.max_version, self.module = key, min_version, max_version, module
        self._handle: Handler | None = None

    @property
    def handle(self) -> Handler:
        handle = self._handle
        if handle is None:
            # The handler's module is imported here, at the API's first request (see above).
            importlib.import_module(f"{__package__}.{self.module}")
            handle = self._handle = _HANDLERS[self.key]
        return handle


def handles(key: int) -> Callable[[Handler], Handler]:
    """Registers a function as the handler of an API key, at its module's import; which
    versions and listeners it serves are in the table above."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[key] = handler
        return handler

    return register


def _served_on(listener: str) -> dict[int, Api]:
    table = {}
    for key, (module, min_version, max_version, listeners) in _SERVED.items():
        if listener in listeners:
            codec_min, codec_max = codec_versions(key) or (min_version, max_version)
            table[key] = Api(key, max(min_version, codec_min), min(max_version, codec_max), module)
    return table


APIS: dict[int, Api] = _served_on(BROKER)
"""What the broker listeners serve, and their ApiVersions advertise."""
CONTROLLER_APIS: dict[int, Api] = _served_on(CONTROLLER)
"""What the controller listener serves besides Raft's own APIs, as Kafka's ControllerApis."""
