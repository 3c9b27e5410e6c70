"""The control channel: faults, restarts and the manual clock over HTTP/JSON, on
127.0.0.1 only, so a test in any language can drive the broker.

    GET    /                  {"bootstrap": "127.0.0.1:9092", "faults": 0}
    GET    /faults            {"faults": [...]}, each with how often it fired
    POST   /faults            a fault as JSON, e.g. {"kind": "error", "api_key": 0,
                              "error": "NOT_LEADER_OR_FOLLOWER", "count": 2}  -> 201 {"fault": ...}
    DELETE /faults            removes every fault;  DELETE /faults/ID removes one
    POST   /restart           restarts the broker, keeping its data and port
    POST   /clock/advance     {"ms": 60000} moves a manual clock (kafkapy.clock=manual)

Every request carries `Authorization: Bearer <token>`: the token configured as
`kafkapy.control.token`, or one made at start and printed with the channel's address.
Being on 127.0.0.1 is not enough: any web page a developer opens can send requests
there, so the Host header must name this address (no DNS rebinding) and a request
from a page (an Origin header) is refused. HTTP is parsed by h11; a malformed request
or a peer that stalls gets its one connection closed.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import h11
from anyio.abc import SocketAttribute

from ..handlers.faults import FaultSpecError

if TYPE_CHECKING:
    from .supervisor import Supervisor

log = logging.getLogger(__name__)

_MAX_BODY = 64 * 1024
_MAX_HEAD = 16 * 1024
_READ_TIMEOUT_S = 10.0  # to receive a whole request, so a stalled peer cannot hold a task
_LOCAL_HOSTS = ("127.0.0.1", "localhost")


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class ControlChannel:
    def __init__(self, supervisor: Supervisor, port: int, token: str | None = None) -> None:
        self.supervisor = supervisor
        self.port = port
        self.token_configured = bool(token)
        self.token = token or secrets.token_urlsafe(32)

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(SocketAttribute.local_port)
        # Printed for whoever started the process (a test in another language reads it
        # from the output), as a notebook server prints its token; a configured one is known.
        token = "as configured" if self.token_configured else self.token
        log.info("Control channel on http://127.0.0.1:%d token %s", self.port, token)
        task_status.started()
        await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
            try:
                with anyio.fail_after(_READ_TIMEOUT_S):
                    request, body = await _read_request(stream, connection)
                self._check_access(request)
                status, payload = await self._route(request.method.decode(), request.target.decode(), _json_object(body))
                headers: tuple[tuple[str, str], ...] = ()
            except HttpError as e:
                status, payload, headers = e.status, {"error": str(e)}, e.headers
            except h11.RemoteProtocolError as e:
                status, payload, headers = e.error_status_hint, {"error": f"malformed request: {e}"}, ()
            except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                return
            if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                return
            data = json.dumps(payload).encode()
            response = h11.Response(status_code=status, headers=[
                ("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Connection", "close"),
                *headers,
            ])
            try:
                await stream.send(connection.send(response) + connection.send(h11.Data(data=data))
                                  + connection.send(h11.EndOfMessage()))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

    def _check_access(self, request: h11.Request) -> None:
        headers = {name.decode(): value.decode("latin-1") for name, value in request.headers}
        allowed = {f"{host}:{self.port}" for host in _LOCAL_HOSTS}
        if headers.get("host") not in allowed:
            raise HttpError(403, f"Host must be one of {sorted(allowed)}")
        origin = headers.get("origin")
        if origin is not None and origin not in {f"http://{host}" for host in allowed}:
            raise HttpError(403, f"requests from {origin} are refused")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.token.encode()):
            raise HttpError(401, "a bearer token is required (printed at start with the channel's address)",
                            (("WWW-Authenticate", 'Bearer realm="kafkapy control"'),))

    async def _route(self, method: str, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        supervisor = self.supervisor
        faults = supervisor.faults
        path = target.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        match method, parts:
            case "GET", []:
                return 200, {"bootstrap": f"127.0.0.1:{supervisor.port}", "faults": len(faults.faults)}
            case "GET", ["faults"]:
                return 200, {"faults": [f.as_dict() for f in faults.faults]}
            case "POST", ["faults"]:
                spec = dict(body)
                kind = spec.pop("kind", None)
                try:
                    fault = faults.add(kind, **spec)
                except (FaultSpecError, TypeError) as e:
                    raise HttpError(400, str(e)) from None
                return 201, {"fault": fault.as_dict()}
            case "DELETE", ["faults"]:
                faults.clear()
                return 200, {}
            case "DELETE", ["faults", fault_id] if fault_id.isdigit():
                if not faults.remove(int(fault_id)):
                    raise HttpError(404, f"no fault {fault_id}")
                return 200, {}
            case "POST", ["restart"]:
                await supervisor.restart()
                return 200, {"bootstrap": f"127.0.0.1:{supervisor.port}"}
            case "POST", ["clock", "advance"]:
                try:
                    supervisor.advance_clock(int(body["ms"]))
                except (KeyError, ValueError, TypeError) as e:
                    raise HttpError(400, f"advance needs {{\"ms\": N}} and a manual clock: {e}") from None
                return 200, {"wall_ms": supervisor.clock.wall_ms(), "monotonic_ms": supervisor.clock.monotonic_ms()}
        raise HttpError(404, f"no route {method} {path}")


async def _read_request(stream: anyio.abc.SocketStream, connection: h11.Connection) -> tuple[h11.Request, bytes]:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive()
            except anyio.EndOfStream:
                data = b""
            connection.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
            length = dict(event.headers).get(b"content-length")
            if length is not None and int(length) > _MAX_BODY:
                raise HttpError(413, f"the body may hold at most {_MAX_BODY} bytes")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_BODY:
                raise HttpError(413, f"the body may hold at most {_MAX_BODY} bytes")
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, bytes(body)
        else:  # the peer closed before a whole request arrived
            raise anyio.EndOfStream


def _json_object(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HttpError(400, f"body is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise HttpError(400, "body must be a JSON object")
    return value
