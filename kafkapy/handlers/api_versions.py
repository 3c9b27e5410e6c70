"""ApiVersions (18): what this broker speaks, and KIP-511's client identification."""

from __future__ import annotations

import re
from typing import Any

from kio.schema.errors import ErrorCode

from .context import Broker, RequestContext
from .registry import APIS, handles

API_VERSIONS_KEY = 18
_SOFTWARE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")


def api_keys() -> list[dict[str, int]]:
    return [{"api_key": a.key, "min_version": a.min_version, "max_version": a.max_version} for _, a in sorted(APIS.items())]


def unsupported_version_response() -> dict[str, Any]:
    """The v0 answer Kafka gives to an ApiVersions version it does not know: since KIP-511
    it names the ApiVersions versions it does know, and no other API."""
    own = [a for a in api_keys() if a["api_key"] == API_VERSIONS_KEY]
    return {"error_code": ErrorCode.unsupported_version, "api_keys": own, "throttle_time": 0}


@handles(API_VERSIONS_KEY)
async def handle_api_versions(broker: Broker, ctx: RequestContext, request: Any) -> dict[str, Any]:
    error = ErrorCode.none
    if ctx.api_version >= 3 and not (
        _SOFTWARE.match(request.client_software_name or "") and _SOFTWARE.match(request.client_software_version or "")
    ):
        error = ErrorCode.invalid_request
    features = broker.image.features
    return {
        "error_code": error,
        "api_keys": api_keys(),
        "throttle_time": 0,
        "supported_features": [{"name": "metadata.version", "min_version": 1, "max_version": features.get("metadata.version", 1)}],
        "finalized_features_epoch": broker.image.offset,
        "finalized_features": [{"name": n, "max_version_level": v, "min_version_level": v} for n, v in features.items()],
        "zk_migration_ready": False,
    }
