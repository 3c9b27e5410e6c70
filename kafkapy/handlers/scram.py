"""SCRAM credential administration: DescribeUserScramCredentials (50) and
AlterUserScramCredentials (51), as Kafka answers them. Altering goes through the active
controller, whose records every node applies; describing reads this node's image."""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ..metadata.acls import AclOperation
from ..metadata.scram import ScramDeletion, ScramUpsertion, alter_scram_credentials, describe_scram_credentials
from ..security.scram import derive_keys
from .context import Node, RequestContext
from .controller import error_answer, on_active_controller
from .registry import handles


@handles(50)
async def handle_describe_user_scram_credentials(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not node.authorized_on_cluster(ctx, AclOperation.DESCRIBE):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None, "results": []}
    users = None if request.users is None else [u.name for u in request.users]
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "results": [
        {"user": d.user, "error_code": d.error, "error_message": d.message,
         "credential_infos": [{"mechanism": code, "iterations": iterations} for code, iterations in d.credentials]}
        for d in describe_scram_credentials(node.image.scram_credentials, users)]}


@handles(51)
async def handle_alter_user_scram_credentials(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _alter(node, ctx, request))


async def _alter(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    if not node.authorized_on_cluster(ctx, AclOperation.ALTER):
        return error_answer(ctx, request, ErrorCode.cluster_authorization_failed)
    deletions = [ScramDeletion(d.name, d.mechanism) for d in request.deletions]
    upsertions = [ScramUpsertion(u.name, u.mechanism, u.iterations, u.salt, u.salted_password) for u in request.upsertions]
    results = await node.controller_service.write(
        lambda image: alter_scram_credentials(image.scram_credentials, deletions, upsertions, derive_keys))
    return {"throttle_time": 0, "results": [
        {"user": r.user, "error_code": r.error, "error_message": r.message} for r in results]}

