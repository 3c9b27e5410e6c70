"""One module per Kafka API family, each imported at its first request (`registry`).

`dispatch` turns one request frame into one response frame: it reads the header,
finds the handler, decodes the body with kio, and builds the handler's
version-independent answer into the response entity of the request's version.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

from ..wire.build import build, error_response
from ..wire.protocol import Chunk, InvalidRequest, api_name, decode_request, encode_response, peek_header, response_type
from . import api_versions
from .context import ANONYMOUS, Broker, CloseConnection, Node, RequestContext
from .registry import APIS, CONTROLLER_APIS

__all__ = ["APIS", "CONTROLLER_APIS", "Broker", "CloseConnection", "Node", "dispatch", "respond"]

log = logging.getLogger(__name__)


async def dispatch(broker: Broker, frame: bytes | bytearray, client_host: str,
                   principal: str = ANONYMOUS, listener: str = "PLAINTEXT") -> tuple[list[Chunk], int] | None:
    """The response to one request on a broker listener (None when the request wants none),
    from the connection's authenticated principal.

    Raises InvalidRequest or CloseConnection when the connection must be closed."""
    correlation_id, response = await respond(broker, frame, client_host, principal=principal, listener=listener)
    return None if response is None else encode_response(correlation_id, response)


async def respond(node: Node, frame: bytes | bytearray, client_host: str, *, controller_listener: bool = False,
                  principal: str = ANONYMOUS, listener: str = "PLAINTEXT") -> tuple[int, Any]:
    """(correlation id, response entity or None) for one request, on a broker listener or
    on the controller listener, each with its own table of APIs. Only a broker has broker
    listeners; the controller listener's handlers need no more than what every node has."""
    api_key, version, correlation_id = peek_header(frame)
    handler = (CONTROLLER_APIS if controller_listener else APIS).get(api_key)
    if handler is None:
        raise InvalidRequest(f"unknown api key {api_key}")
    if not handler.min_version <= version <= handler.max_version:
        if api_key == api_versions.API_VERSIONS_KEY:
            return correlation_id, build(response_type(api_key, 0), api_versions.unsupported_version_response())
        raise InvalidRequest(f"{api_name(api_key)} version {version} is not supported")
    header, request = decode_request(frame, api_key, version)
    ctx = RequestContext(api_key, version, correlation_id, header.client_id, client_host, frame, controller_listener, principal,
                         listener)
    faults = node.faults
    if delay := faults.latency_ms(api_key):
        await anyio.sleep(delay / 1000)
    if error := faults.request_error(api_key):
        response = error_response(response_type(api_key, version), error)
    else:
        answer = await handler.handle(node, ctx, request)
        if answer is None:
            return correlation_id, None
        # A forwarded request comes back as the controller's response entity, ready as it is.
        response = build(response_type(api_key, version), answer) if isinstance(answer, dict) else answer
    if faults.drop_connection(api_key):
        raise CloseConnection(f"fault injected: connection dropped after {api_name(api_key)}")
    return correlation_id, response
