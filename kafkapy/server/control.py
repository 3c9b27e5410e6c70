"""The control channel: faults, restarts and the manual clock over HTTP/JSON, on
127.0.0.1 only, so a test in any language can drive the broker.

    GET    /                  {"bootstrap": "127.0.0.1:9092", "faults": 0}
    GET    /faults            {"faults": [...]}, each with how often it fired
    POST   /faults            a fault as JSON, e.g. {"kind": "error", "api_key": 0,
                              "error": "NOT_LEADER_OR_FOLLOWER", "count": 2}  -> 201 {"fault": ...}
    DELETE /faults            removes every fault;  DELETE /faults/ID removes one
    POST   /restart           restarts the broker, keeping its data and port
    POST   /clock/advance     {"ms": 60000} moves a manual clock (kafkapy.clock=manual)
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from ..handlers.faults import FaultSpecError

if TYPE_CHECKING:
    from .supervisor import Supervisor

log = logging.getLogger(__name__)

_MAX_REQUEST = 64 * 1024
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlChannel:
    def __init__(self, supervisor: Supervisor, port: int) -> None:
        self.supervisor = supervisor
        self.port = port

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(SocketAttribute.local_port)
        log.info("Control channel on http://127.0.0.1:%d", self.port)
        task_status.started()
        await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                method, path, body = await _read_request(stream)
                status, payload = await self._route(method, path, body)
            except HttpError as e:
                status, payload = e.status, {"error": str(e)}
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return
            data = json.dumps(payload).encode()
            head = f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
            await stream.send(head.encode() + data)

    async def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        supervisor = self.supervisor
        faults = supervisor.faults
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


async def _read_request(stream: anyio.abc.SocketStream) -> tuple[str, str, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > _MAX_REQUEST:
            raise HttpError(400, "request too large")
        data += await stream.receive()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, path, _ = lines[0].split(" ", 2)
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0") or 0)
    if length > _MAX_REQUEST:
        raise HttpError(400, "request too large")
    while len(rest) < length:
        rest += await stream.receive()
    if not rest:
        return method, path.split("?", 1)[0], {}
    try:
        body = json.loads(rest[:length])
    except json.JSONDecodeError as e:
        raise HttpError(400, f"body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise HttpError(400, "body must be a JSON object")
    return method, path.split("?", 1)[0], body
