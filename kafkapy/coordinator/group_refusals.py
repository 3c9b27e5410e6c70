"""The group APIs' answers that need no group state: a request refused as a whole.

Apart from the group coordinator so that the handlers answer with them without
importing it; the coordinator is imported when its first group needs it."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

AUTHORIZED_OPERATIONS_OMITTED = -(2**31)


def consumer_group_heartbeat_response(
    error: ErrorCode, *, error_message: str | None = None, member_id: str | None = None, member_epoch: int = 0,
    heartbeat_interval: int = 0,
) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": error, "error_message": error_message, "member_id": member_id,
            "member_epoch": member_epoch, "heartbeat_interval": heartbeat_interval, "assignment": None}


def consumer_group_describe_error(group_id: str, error: ErrorCode, message: str | None) -> dict[str, Any]:
    return {"error_code": error, "error_message": message, "group_id": group_id, "group_state": "", "group_epoch": 0,
            "assignment_epoch": 0, "assignor_name": "", "members": [], "authorized_operations": AUTHORIZED_OPERATIONS_OMITTED}


def offset_commit_errors(topics: Any, error: ErrorCode) -> list[dict[str, Any]]:
    """The response topics of an OffsetCommit or TxnOffsetCommit refused as a whole."""
    return [
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": error} for p in t.partitions]}
        for t in topics
    ]
