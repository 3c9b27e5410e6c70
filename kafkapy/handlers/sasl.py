"""SaslHandshake (17) and SaslAuthenticate (36) where no SASL exchange is under way: on a
listener without SASL, or after the connection authenticated. The exchange itself is the
connection's (security.sasl); here, as Kafka's KafkaApis, the answer is ILLEGAL_SASL_STATE.
Registered so that ApiVersions advertises both, as Kafka's does on every listener."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..security.sasl import SASL_AUTHENTICATE_KEY, SASL_HANDSHAKE_KEY
from .context import Broker, RequestContext
from .registry import handles


@handles(SASL_HANDSHAKE_KEY)
async def handle_sasl_handshake(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    return {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": []}


@handles(SASL_AUTHENTICATE_KEY)
async def handle_sasl_authenticate(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    return {"error_code": ErrorCode.illegal_sasl_state, "auth_bytes": b"", "session_lifetime": 0,
            "error_message": "SaslAuthenticate request received after successful authentication"}
