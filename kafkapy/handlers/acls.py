"""ACL administration: DescribeAcls (29), CreateAcls (30), DeleteAcls (31), as Kafka's
AclApis answers them. Creating and deleting go through the active controller, whose
records every node applies; describing reads this node's image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kio.schema.errors import ErrorCode

from ..metadata.acls import Acl, AclFilter, AclOperation, create_acls, delete_acls
from .context import Node, RequestContext
from .controller import on_active_controller
from .registry import handles

_NO_AUTHORIZER = "No Authorizer is configured."
_PATTERN_LITERAL = 3  # what a v0 request, which has no pattern type, means


def _filter(f: Any) -> AclFilter:
    return AclFilter.from_codes(
        f.resource_type_filter, f.resource_name_filter, getattr(f, "pattern_type_filter", _PATTERN_LITERAL),
        f.principal_filter, f.host_filter, f.operation, f.permission_type)


def acl_fields(acl: Acl) -> dict[str, Any]:
    return {"principal": acl.principal, "host": acl.host, "operation": int(acl.operation), "permission_type": int(acl.permission)}


def describe_resources(acls: Sequence[Acl]) -> list[dict[str, Any]]:
    """ACLs grouped by resource pattern, as DescribeAclsResponse lists them."""
    by_pattern: dict[tuple[int, str, int], list[dict[str, Any]]] = {}
    for acl in acls:
        key = (int(acl.resource_type), acl.resource_name, int(acl.pattern_type))
        by_pattern.setdefault(key, []).append(acl_fields(acl))
    return [
        {"resource_type": rtype, "resource_name": name, "pattern_type": ptype, "acls": entries}
        for (rtype, name, ptype), entries in sorted(by_pattern.items())
    ]


@handles(29)
async def handle_describe_acls(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def answer(error: ErrorCode, message: str | None = None, resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"throttle_time": 0, "error_code": error, "error_message": message, "resources": resources or []}

    if not node.authorized_on_cluster(ctx, AclOperation.DESCRIBE):
        return answer(ErrorCode.cluster_authorization_failed)
    if node.authorizer is None:
        return answer(ErrorCode.security_disabled, "No Authorizer is configured on the broker")
    acl_filter = _filter(request)
    problem = acl_filter.invalid_reason()
    if problem is not None:
        return answer(ErrorCode.invalid_request, problem)
    return answer(ErrorCode.none, None, describe_resources(node.image.acls.matching(acl_filter)))


@handles(30)
async def handle_create_acls(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _create_acls(node, ctx, request))


async def _create_acls(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def every(error: ErrorCode, message: str | None) -> dict[str, Any]:
        return {"throttle_time": 0, "results": [{"error_code": error, "error_message": message} for _ in request.creations]}

    if not node.authorized_on_cluster(ctx, AclOperation.ALTER):
        return every(ErrorCode.cluster_authorization_failed, None)
    if node.authorizer is None:
        return every(ErrorCode.security_disabled, _NO_AUTHORIZER)
    new = [
        Acl.from_codes(c.resource_type, c.resource_name, getattr(c, "resource_pattern_type", _PATTERN_LITERAL),
                       c.principal, c.host, c.operation, c.permission_type)
        for c in request.creations
    ]
    results = await node.controller_service.write(lambda image: create_acls(image.acls, new))
    return {"throttle_time": 0, "results": [{"error_code": r.error, "error_message": r.message} for r in results]}


@handles(31)
async def handle_delete_acls(node: Node, ctx: RequestContext, request: Any) -> Any:
    return await on_active_controller(node, ctx, request, lambda: _delete_acls(node, ctx, request))


async def _delete_acls(node: Node, ctx: RequestContext, request: Any) -> dict[str, Any]:
    def every(error: ErrorCode, message: str | None) -> dict[str, Any]:
        return {"throttle_time": 0, "filter_results": [
            {"error_code": error, "error_message": message, "matching_acls": []} for _ in request.filters]}

    if not node.authorized_on_cluster(ctx, AclOperation.ALTER):
        return every(ErrorCode.cluster_authorization_failed, None)
    if node.authorizer is None:
        return every(ErrorCode.security_disabled, _NO_AUTHORIZER)
    filters = [_filter(f) for f in request.filters]
    results = await node.controller_service.write(lambda image: delete_acls(image.acls, filters))
    return {"throttle_time": 0, "filter_results": [
        {"error_code": r.error, "error_message": r.message, "matching_acls": [
            {"error_code": ErrorCode.none, "error_message": None, "resource_type": int(acl.resource_type),
             "resource_name": acl.resource_name, "pattern_type": int(acl.pattern_type), **acl_fields(acl)}
            for acl in r.deleted]}
        for r in results]}
